"""Webhook delivery: claim due outbox rows, POST them, and record what happened.

What to do after an attempt (retry when, give up, disable the subscriber) is decided by
``alerts.webhooks.next_attempt``; this module only moves bytes and rows. Signed JSON gets
Standard Webhooks headers (``webhook-id`` is the outbox row's id on every attempt, so
receivers can drop repeats); Slack and Telegram bodies go to their URLs as rendered.

Delivery is at least once: a replica killed between the POST and its record, or one whose
lease ran out mid-POST, leaves the row to be sent again. The result is recorded only
while the claim still holds (`outbox` checks the lease), and the timeout is shorter than
the lease (checked in the configuration), so two replicas never race on one row; but a
receiver must still drop a repeated ``webhook-id``, as Standard Webhooks says.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import aiohttp
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.webhooks import next_attempt, sign
from collector.alerting import outbox
from collector.alerting.outbox import Claimed
from collector.store import subscribers as subscriberstore
from collector.store.db import Database
from collector.store.subscribers import Subscriber
from probe.daemon.backoff import parse_retry_after

log: Final = logging.getLogger(__name__)
Outcome = Literal["delivered", "retried", "dead", "disabled", "lost_claim"]
CLAIM_LIMIT: Final = 50


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: an HTTP status, or None when no response arrived."""

    status: int | None
    retry_after: float | None
    error: str | None


def headers_for(subscriber: Subscriber, message: Claimed, now: dt.datetime) -> dict[str, str]:
    headers = {"Content-Type": message.content_type, "User-Agent": "censorwatch-collector"}
    if subscriber.format != "json":
        return headers
    secrets = " ".join(subscriber.secrets(now))
    return headers | sign(secrets, message.id, int(now.timestamp()), message.payload)


async def post(
    session: aiohttp.ClientSession,
    subscriber: Subscriber,
    message: Claimed,
    seconds: float,
    now: dt.datetime,
) -> Attempt:
    try:
        async with session.post(
            subscriber.url,
            data=message.payload,
            headers=headers_for(subscriber, message, now),
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,
        ) as response:
            await response.read()
            wait = parse_retry_after(response.headers.get("Retry-After"), now)
            error = None if response.status < 300 else f"HTTP {response.status}"
            return Attempt(response.status, wait, error)
    except TimeoutError:
        return Attempt(None, None, f"timed out after {seconds:g} s")
    except aiohttp.ClientError as exc:
        return Attempt(None, None, f"{type(exc).__name__}: {exc}"[:512])


async def record(
    db: Database, subscriber: Subscriber, message: Claimed, attempt: Attempt, rng: random.Random
) -> Outcome:
    decision = next_attempt(
        message.attempts + 1, retry_after=attempt.retry_after, status=attempt.status, rng=rng
    )
    now = dt.datetime.now(dt.UTC)

    async def work(connection: AsyncConnection) -> Outcome:
        if decision.action == "done":
            ours = await outbox.delivered(connection, message, now)
            return "delivered" if ours else "lost_claim"
        error = attempt.error or "failed"
        if decision.action == "retry":
            later = now + dt.timedelta(seconds=float(decision.delay))
            ours = await outbox.failed(connection, message, error=error, next_attempt_at=later)
            return "retried" if ours else "lost_claim"
        if not await outbox.failed(connection, message, error=error, next_attempt_at=None):
            return "lost_claim"
        if decision.action == "disable":
            reason = f"{error} from {subscriber.url} at {now.isoformat()}"
            await subscriberstore.disable(connection, subscriber.id, reason)
            await outbox.bury_subscriber(connection, subscriber.id, f"subscriber disabled: {error}")
            return "disabled"
        return "dead"

    return await db.transaction(work)


async def _claim(db: Database, lease: dt.timedelta) -> list[tuple[Claimed, Subscriber]]:
    async def work(connection: AsyncConnection) -> list[tuple[Claimed, Subscriber]]:
        now = dt.datetime.now(dt.UTC)
        claimed = await outbox.claim(connection, db, now, lease, CLAIM_LIMIT)
        found = []
        for message in claimed:
            subscriber = await subscriberstore.one(connection, message.subscriber_id)
            if subscriber is None or not subscriber.enabled:
                why = "subscriber removed" if subscriber is None else "subscriber disabled"
                await outbox.failed(connection, message, error=why, next_attempt_at=None)
                continue
            found.append((message, subscriber))
        return found

    return await db.transaction(work)


@dataclass
class Deliverer:
    db: Database
    timeout: float
    lease: dt.timedelta
    on_outcome: Callable[[Outcome], None] = lambda _: None
    rng: random.Random = field(default_factory=random.Random)

    async def send_one(
        self, session: aiohttp.ClientSession, message: Claimed, subscriber: Subscriber
    ) -> None:
        attempt = await post(session, subscriber, message, self.timeout, dt.datetime.now(dt.UTC))
        outcome = await record(self.db, subscriber, message, attempt, self.rng)
        log.info("webhook %s to subscriber %s: %s", message.id, subscriber.id, outcome)
        self.on_outcome(outcome)

    async def round(self, session: aiohttp.ClientSession) -> int:
        """Send every due notification once; how many were due."""
        claimed = await _claim(self.db, self.lease)
        await asyncio.gather(*(self.send_one(session, m, s) for m, s in claimed))
        return len(claimed)

    async def forever(self, interval: float) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                started = time.monotonic()
                try:
                    if await self.round(session) == CLAIM_LIMIT:
                        continue  # more are due: no pause
                except Exception:
                    log.exception("delivery round failed")
                await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))
