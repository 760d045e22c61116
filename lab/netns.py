"""Doing socket work inside a named network namespace from this process.

``setns(2)`` switches only the calling thread, so a short-lived thread enters the namespace,
runs a function there and ends; sockets it creates stay in that namespace for good. This is
much faster than ``ip netns exec python …`` for readiness checks and tests. The mount
namespace is not switched: ``/etc/resolv.conf`` is the host's, so name the resolver
explicitly.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

T = TypeVar("T")

NETNS_DIR: Final = Path("/run/netns")
_CLONE_NEWNET: Final = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    pass


def enter(namespace: str) -> None:
    """Move the calling thread into ``namespace`` (only ever call this in a throwaway thread)."""
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NamespaceError(errno, f"setns({namespace}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def call_in(namespace: str, function: Callable[[], T]) -> T:
    """Run ``function`` in a thread inside ``namespace``; return its result or raise its error."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            enter(namespace)
            outcome.append(function())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
