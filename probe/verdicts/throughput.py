"""Rates from bounded downloads, and whether a slow one looks like a policer.

Pure arithmetic over ``ThroughputObservation`` samples. A policer (tc, a DPI box) converges
to a constant rate; congestion and loss make a rate that wanders. So besides the rate, a
transfer says whether it reached a *plateau*: after its first quarter (slow start, a burst
allowance), the rate between consecutive samples stays near one value.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Final

from probe.model import ThroughputObservation

PLATEAU_SPREAD: Final = 0.3  # coefficient of variation of the per-interval rates
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
    bytes, stay near one value. (Windows, not single samples: a TLS record of 16 KiB arrives
    whole, so at 128 kbit/s bytes come in steps a second apart.)"""
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
    mean = statistics.fmean(rates)
    return mean > 0 and statistics.pstdev(rates) / mean <= PLATEAU_SPREAD


def median_rate(observations: Sequence[ThroughputObservation]) -> float | None:
    rates = [r for o in observations if (r := rate(o)) is not None]
    return statistics.median(rates) if rates else None


def kbit(bytes_per_second: float) -> str:
    return f"{bytes_per_second * 8 / 1000:.0f} kbit/s"
