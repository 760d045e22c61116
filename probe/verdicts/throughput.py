"""Rates from bounded downloads, and whether a slow one looks like a policer.

Pure arithmetic over ``ThroughputObservation`` samples. A policer (tc, a DPI box) converges
to a constant rate; congestion and loss make a rate that wanders. So besides the rate, a
transfer says whether it reached a *plateau*: after its first quarter (slow start, a burst
allowance), the rate over short windows keeps coming back to one value. Not every window:
what a policer drops, TCP recovers after a pause, and a window over such a pause is slow.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Final

from probe.model import ThroughputObservation

PLATEAU_SPREAD: Final = 0.3  # how far from the median window rate a window is still "near"
PLATEAU_SHARE: Final = 2 / 3  # of the windows, at least this many near the median
PLATEAU_INTERVALS: Final = 4
WINDOW: Final = 0.75


def rate(observation: ThroughputObservation) -> float | None:
    """Bytes per second over the whole transfer (connect and handshake included: that only
    makes a fast transfer look slower, never a slow one faster); None if nothing came."""
    elapsed = observation.t - observation.t0
    if observation.failure is not None and observation.bytes == 0:
        return None
    if observation.bytes == 0 or elapsed <= 0:
        return None
    return observation.bytes / elapsed


def plateau(observation: ThroughputObservation) -> bool:
    """The rates over windows of at least ``WINDOW`` seconds, after the first quarter of the
    bytes, are mostly near their median: a policer's rate between recovery pauses. A rate
    that wanders (congestion) is near its median only now and then."""
    quarter = observation.bytes / 4
    steady = [(t, b) for t, b in observation.samples if b >= quarter]
    while len(steady) > 1 and steady[-1][1] == steady[-2][1]:
        steady.pop()  # the time limit's last look, after the last bytes
    rates = []
    start = steady[0] if steady else None
    for t, b in steady[1:]:
        assert start is not None
        if t - start[0] >= WINDOW:
            rates.append((b - start[1]) / (t - start[0]))
            start = (t, b)
    if len(rates) < PLATEAU_INTERVALS:
        return False
    middle = statistics.median(rates)
    near = sum(abs(r - middle) <= PLATEAU_SPREAD * middle for r in rates)
    return middle > 0 and near >= PLATEAU_SHARE * len(rates)


def median_rate(observations: Sequence[ThroughputObservation]) -> float | None:
    rates = [r for o in observations if (r := rate(o)) is not None]
    return statistics.median(rates) if rates else None


def kbit(bytes_per_second: float) -> str:
    return f"{bytes_per_second * 8 / 1000:.0f} kbit/s"
