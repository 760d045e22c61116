"""Uploads the spool in batches and settles each item by what the collector said.

Only an ``accepted`` or ``duplicate`` result removes a measurement; a ``rejected`` one moves to
the quarantine with its reason (sending it again would get the same answer). Anything else —
no answer, a 5xx, a 429 — leaves the batch in the spool and asks for a pause from the pure
``Backoff`` plan, never shorter than ``Retry-After``. A batch the collector refuses as a whole
(400, 413) is split until the one item at fault is found and quarantined.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from probe.daemon.backoff import Backoff
from probe.daemon.client import BatchResult, CollectorClient, Refused, Unreachable
from probe.daemon.spool import ACCEPTED, DUPLICATE, Pending, Spool

log = logging.getLogger("censorwatch.probe.upload")

_WHOLE_BATCH_REFUSALS = frozenset({400, 413, 415, 422})


@dataclass(frozen=True)
class Settlement:
    """What to do with each id of a batch, decided from the collector's answer (pure)."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # id -> accepted | duplicate
    rejected: dict[str, str] = field(default_factory=dict)  # id -> reason
    unanswered: tuple[str, ...] = ()


def settle(batch: Sequence[Pending], result: BatchResult) -> Settlement:
    acknowledged: dict[str, str] = {}
    rejected: dict[str, str] = {}
    for item in result.results:
        if not 0 <= item.index < len(batch):
            continue
        ident = batch[item.index].id
        if item.id is not None and item.id != ident:
            continue  # an answer about something else: keep ours and send it again
        if item.result in (ACCEPTED, DUPLICATE):
            acknowledged[ident] = item.result
        elif item.result == "rejected":
            rejected[ident] = item.reason or "rejected without a reason"
    answered = acknowledged.keys() | rejected.keys()
    return Settlement(acknowledged, rejected, tuple(p.id for p in batch if p.id not in answered))


@dataclass
class Outcome:
    """One upload attempt: how many items were settled, and how long to wait if it failed."""

    settled: int = 0
    wait: float | None = None
    error: str | None = None


@dataclass
class Uploader:
    spool: Spool
    client: CollectorClient
    token: str
    batch_size: int = 500
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    last_upload: float | None = None
    last_error: str | None = None

    async def step(self) -> Outcome:
        """Upload one batch; raises ``TokenRevoked`` (the caller stops)."""
        batch = self.spool.batch(self.batch_size)
        if not batch:
            return Outcome()
        try:
            settled = await self._send(batch)
        except Unreachable as exc:
            return self._failed(str(exc), None)
        except Refused as exc:
            return self._failed(str(exc), exc.retry_after)
        self.failures = 0
        self.last_upload = time.time()
        self.last_error = None
        return Outcome(settled)

    async def _send(self, batch: Sequence[Pending]) -> int:
        try:
            result = await self.client.upload(self.token, [p.body for p in batch])
        except Refused as exc:
            if exc.status not in _WHOLE_BATCH_REFUSALS:
                raise
            if len(batch) == 1:
                self.spool.quarantine({batch[0].id: str(exc)})
                log.warning("measurement %s quarantined: %s", batch[0].id, exc)
                return 1
            half = len(batch) // 2
            return await self._send(batch[:half]) + await self._send(batch[half:])
        settlement = settle(batch, result)
        self.spool.acknowledge(settlement.acknowledged)
        if settlement.rejected:
            self.spool.quarantine(settlement.rejected)
            for ident, reason in settlement.rejected.items():
                log.warning("measurement %s rejected by the collector: %s", ident, reason)
        return len(settlement.acknowledged) + len(settlement.rejected)

    def _failed(self, error: str, retry_after: float | None) -> Outcome:
        self.failures += 1
        self.last_error = error
        wait = self.backoff.delay(self.failures, self.rng.random(), retry_after)
        log.info("upload failed (%s); next attempt in %.1f s", error, wait)
        return Outcome(0, wait, error)
