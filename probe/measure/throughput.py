"""A bounded download over an established channel: cumulative bytes sampled over time.

The transfer stops at ``Limits.bytes`` or ``Limits.seconds``, whichever comes first, so a
probe never costs a volunteer more than half a megabyte per endpoint. Sampling follows
OONI's dd-007 idea (bytes received at intervals) with fixed spacing, which is enough to see
a policer's plateau. Bytes are counted as the network delivers them, TLS framing included,
not as records decrypt: a policer meters packets, and a record is readable only once whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from probe.measure import http

SAMPLE_EVERY: Final = 0.25
MAX_SAMPLES: Final = 200


@dataclass(frozen=True)
class Limits:
    bytes: int = 512 * 1024
    seconds: float = 10.0


class Stream(Protocol):
    async def send(self, payload: bytes) -> None: ...

    async def discard(self) -> int:
        """Wait for the next bytes from the network and drop them: how many (0: the end)."""
        ...


@dataclass(frozen=True)
class Transfer:
    received: int
    samples: list[tuple[float, int]]
    complete: bool  # the server closed the stream before a limit was reached


async def download(
    channel: Stream, host: str, path: str, limits: Limits, now: Callable[[], float]
) -> Transfer:
    """GET ``path`` and count every byte that arrives; ``now`` is the observation clock."""
    await channel.send(http.request_bytes(host, path))
    started = now()
    received = 0
    samples: list[tuple[float, int]] = []
    last = started
    complete = False
    try:
        async with asyncio.timeout(limits.seconds):
            while received < limits.bytes:
                arrived = await channel.discard()
                if not arrived:
                    complete = True
                    break
                received += arrived
                moment = now()
                if moment - last >= SAMPLE_EVERY and len(samples) < MAX_SAMPLES - 1:
                    samples.append((round(moment, 6), received))
                    last = moment
    except TimeoutError:
        pass  # the time limit: what arrived is the measurement
    samples.append((round(now(), 6), received))
    return Transfer(received, samples, complete)


def drain_time(transfer: Transfer, elapsed: float, limits: Limits) -> float:
    """How long the next transfer should wait for this one's tail, beyond the usual pause.

    A transfer cut at its time limit found a path slower than itself, and a shaper's queue
    may still hold what the server sent last; the next one waits as long again (a queue
    holds less than what arrived meanwhile), or it would measure that tail. A transfer that
    ended by itself, or at the byte limit on a fast path, leaves nothing behind."""
    if transfer.complete or transfer.received >= limits.bytes:
        return 0.0
    return min(max(elapsed, 0.0), limits.seconds)
