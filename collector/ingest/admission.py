"""How many ingest batches are decoded and stored at once, and how long one waits its turn.

When every spool drains at once (a shutdown ends), hundreds of probes upload together. Let
in at once, each batch would hold a database connection while the others queued for the
pool, and check-ins and status pages would queue behind them. A few batches at a time keep
the database and the cores busy all the same; the rest wait here holding no connection,
and a batch that would wait too long is answered 429 with ``Retry-After`` (the probe keeps
it in its spool and backs off) rather than left to time out, which would waste the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from collector.api.errors import APIError

RETRY_AFTER: Final = 10


def retry_later(code: str, message: str, retry: int, probe_id: str) -> APIError:
    """429 with ``Retry-After``: the probe keeps the batch in its spool and comes back."""
    headers = {"Retry-After": str(retry)}
    return APIError(429, code, message, headers=headers, probe_id=probe_id, retry_after=retry)


class Admission:
    """``concurrency`` batches at once (``ingest_batches_in_flight``), each waiting at most
    ``patience`` seconds for its turn (``ingest_wait_seconds``)."""

    def __init__(self, concurrency: int, patience: float) -> None:
        self.patience = patience
        self._slots = asyncio.Semaphore(concurrency)

    @asynccontextmanager
    async def turn(self, probe_id: str) -> AsyncIterator[None]:
        """Wait for a slot; raises APIError 429 after ``patience`` seconds."""
        try:
            async with asyncio.timeout(self.patience):
                await self._slots.acquire()
        except TimeoutError:
            message = f"the collector is catching up with other probes; retry in {RETRY_AFTER} s"
            raise retry_later("busy", message, RETRY_AFTER, probe_id) from None
        try:
            yield
        finally:
            self._slots.release()
