"""When an ingest batch marks its probe seen: at most once per probe per interval.

``last_seen_at`` answers "is this probe active?" over hours (``active_probe_seconds``), so a
minute's delay changes no answer, while writing it with every batch made every batch of a
probe queue on that probe's row. Each replica remembers when it last wrote a probe's time;
the write itself also skips a row another replica updated within the interval.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

INTERVAL: Final = dt.timedelta(minutes=1)
_CAPACITY: Final = 100_000  # probes remembered before the stale ones are forgotten


class LastSeen:
    """Which probes are due to have ``last_seen_at`` written; pure, one per replica."""

    def __init__(self, interval: dt.timedelta = INTERVAL, capacity: int = _CAPACITY) -> None:
        self.interval = interval
        self._capacity = capacity
        self._written: dict[str, dt.datetime] = {}

    def due(self, probe_id: str, now: dt.datetime) -> bool:
        """Whether to write ``now`` for the probe; a True answer counts as written."""
        last = self._written.get(probe_id)
        if last is not None and dt.timedelta(0) <= now - last < self.interval:
            return False
        if len(self._written) >= self._capacity:
            self._forget(now)
        self._written[probe_id] = now
        return True

    def __len__(self) -> int:
        return len(self._written)

    def _forget(self, now: dt.datetime) -> None:
        recent = {p: t for p, t in self._written.items() if now - t < self.interval}
        # Bounded whatever the clock does: at worst some probes are written again early.
        self._written = recent if len(recent) < self._capacity else {}
