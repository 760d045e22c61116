"""Running the system's network tools: every call checked, every failure carrying its evidence."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from typing import Final

DEFAULT_TIMEOUT: Final = 30.0


class CommandError(RuntimeError):
    """A command that failed: the command line, its exit status and what it wrote to stderr."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(f"`{shlex.join(self.argv)}` {status}: {stderr.strip() or '(no stderr)'}")


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise CommandError if it fails and ``check`` is set."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise CommandError(argv, None, stderr) from exc
    except OSError as exc:
        raise CommandError(argv, None, str(exc)) from exc
    if check and done.returncode != 0:
        raise CommandError(argv, done.returncode, done.stderr)
    return done


def in_netns(namespace: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside a named network namespace."""
    return ["ip", "netns", "exec", namespace, *argv]


def run_in(
    namespace: str, argv: Sequence[str], *, check: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return run(in_netns(namespace, argv), check=check, timeout=timeout)
