"""Per-probe rate limiting: a token bucket per key, counted in measurements or in bytes.

The collector keeps two per probe: one counts measurements, the other the decompressed
bytes of its batches, so few items of maximal size cannot cost more than many small ones.

Pure apart from the dictionary of buckets: the caller passes the time, so tests step a
clock instead of sleeping. Each replica limits on its own; a probe spreading uploads over
replicas gets at most the rate times the number of replicas, which bounds it all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_PRUNE_EVERY: Final = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` tokens per second up to ``burst``; a rate of 0 disables limiting."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[str, _Bucket] = {}
        self._calls = 0

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        return bucket

    def wait_for(self, key: str, amount: int, now: float) -> float:
        """Seconds until ``amount`` tokens are there (0: they are, and are now taken)."""
        if self.rate <= 0:
            return 0.0
        self._maybe_prune(now)
        bucket = self._bucket(key, now)
        needed = float(min(amount, self.burst))
        if bucket.tokens >= needed:
            bucket.tokens -= needed
            return 0.0
        return (needed - bucket.tokens) / self.rate

    def wait_for_any(self, key: str, now: float) -> float:
        """Seconds until at least one token is there; takes nothing."""
        if self.rate <= 0:
            return 0.0
        tokens = self._bucket(key, now).tokens
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def _maybe_prune(self, now: float) -> None:
        """Forget full buckets now and then, so idle probes cost no memory."""
        self._calls += 1
        if self._calls % _PRUNE_EVERY:
            return
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
