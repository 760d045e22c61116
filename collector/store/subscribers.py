"""Webhook subscribers: where alerts go, in which format, filtered how, signed with what.

Secrets are kept as issued (the collector must sign with them); the API shows a secret
once, when it is created or rotated. After a rotation the previous secret keeps signing
beside the new one for ``secret_overlap_seconds`` so receivers can switch without a gap.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.model import Change
from alerts.webhooks import new_secret
from collector.store import schema
from collector.store.db import as_utc
from collector.store.rows import by_id, delete_by_id, insert_row

_s: Final = schema.subscribers
FORMATS: Final = ("json", "slack", "telegram")


@dataclass(frozen=True)
class Subscriber:
    id: str
    url: str
    format: str
    chat_id: str | None
    secret: str
    previous_secret: str | None
    previous_expires_at: dt.datetime | None
    countries: tuple[str, ...]
    services: tuple[str, ...]
    min_confidence: float
    send_resolutions: bool
    enabled: bool
    disabled_reason: str | None
    unconfirmed: bool = False  # opted in to incidents too few independent voices confirm

    def secrets(self, now: dt.datetime) -> tuple[str, ...]:
        """Secrets that sign a message sent now: the current one, and the previous one
        until its overlap ends."""
        expires = self.previous_expires_at
        if self.previous_secret and expires is not None and as_utc(expires) > now:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def wants(self, change: Change) -> bool:
        incident = change.incident
        if not self.enabled:
            return False
        if not incident.confirmed and not self.unconfirmed:
            return False
        if change.kind == "incident.resolved" and not self.send_resolutions:
            return False
        if self.countries and incident.cc not in self.countries:
            return False
        if self.services and (incident.service or "") not in self.services:
            return False
        return float(incident.confidence) >= self.min_confidence

    def view(self) -> dict[str, Any]:
        """Everything but the secrets."""
        return {
            "id": self.id,
            "url": self.url,
            "format": self.format,
            "chat_id": self.chat_id,
            "countries": list(self.countries),
            "services": list(self.services),
            "min_confidence": self.min_confidence,
            "send_resolutions": self.send_resolutions,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "unconfirmed": self.unconfirmed,
        }


def from_row(row: RowMapping) -> Subscriber:
    return Subscriber(
        id=row["id"],
        url=row["url"],
        format=row["format"],
        chat_id=row["chat_id"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_expires_at=row["previous_expires_at"],
        countries=tuple(json.loads(row["countries"])),
        services=tuple(json.loads(row["services"])),
        min_confidence=float(row["min_confidence"]),
        send_resolutions=bool(row["send_resolutions"]),
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        unconfirmed=bool(row["unconfirmed"]),
    )


@dataclass(frozen=True)
class NewSubscriber:
    url: str
    format: str = "json"
    chat_id: str | None = None
    countries: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    min_confidence: float = 0.0
    send_resolutions: bool = True
    unconfirmed: bool = False


async def add(connection: AsyncConnection, wanted: NewSubscriber, now: dt.datetime) -> Subscriber:
    subscriber_id = str(uuid.uuid4())
    row = {
        "id": subscriber_id,
        "url": wanted.url,
        "format": wanted.format,
        "chat_id": wanted.chat_id,
        "secret": new_secret(),
        "previous_secret": None,
        "previous_expires_at": None,
        "countries": json.dumps(sorted(wanted.countries)),
        "services": json.dumps(sorted(wanted.services)),
        "min_confidence": wanted.min_confidence,
        "send_resolutions": wanted.send_resolutions,
        "unconfirmed": wanted.unconfirmed,
        "enabled": True,
        "disabled_reason": None,
        "created_at": now,
    }
    return from_row(await insert_row(connection, _s, row))


async def all_subscribers(
    connection: AsyncConnection, *, enabled_only: bool = False
) -> list[Subscriber]:
    query = select(_s).order_by(_s.c.created_at, _s.c.id)
    if enabled_only:
        query = query.where(_s.c.enabled.is_(True))
    return [from_row(r) for r in (await connection.execute(query)).mappings()]


async def one(connection: AsyncConnection, subscriber_id: str) -> Subscriber | None:
    row = await by_id(connection, _s, subscriber_id)
    return None if row is None else from_row(row)


async def change(connection: AsyncConnection, subscriber_id: str, values: dict[str, Any]) -> bool:
    for key in ("countries", "services"):
        if key in values:
            values[key] = json.dumps(sorted(values[key]))
    result = await connection.execute(update(_s).where(_s.c.id == subscriber_id).values(**values))
    return bool(result.rowcount)


async def remove(connection: AsyncConnection, subscriber_id: str) -> bool:
    return await delete_by_id(connection, _s, subscriber_id)


async def rotate(
    connection: AsyncConnection, subscriber_id: str, now: dt.datetime, overlap: dt.timedelta
) -> str | None:
    """A new secret; the old one keeps signing until ``now + overlap``."""
    current = await one(connection, subscriber_id)
    if current is None:
        return None
    secret = new_secret()
    await change(
        connection,
        subscriber_id,
        {"secret": secret, "previous_secret": current.secret, "previous_expires_at": now + overlap},
    )
    return secret


async def disable(connection: AsyncConnection, subscriber_id: str, reason: str) -> None:
    await change(connection, subscriber_id, {"enabled": False, "disabled_reason": reason[:512]})
