"""Network attestations: the collector's own word on a probe's network, signed and dated.

At check-in the collector looks the requester's address up in its IP-to-ASN table and
returns ``base64url(claims).base64url(HMAC-SHA256(claims))`` with the probe id, country,
ASN and a validity window. The probe attaches it to every measurement it takes meanwhile,
so measurements spooled offline and uploaded later, from another network, still carry the
network they were taken on; a measurement's country and ASN come from here (or from the
collector's last lookup for that probe), never from the measurement's own claim.

The key is a random 32 bytes in ``collector_keys``, created once and shared by every
replica. Parsing and checking are pure; only ``signing_key`` touches the database, and
``KeyHolder`` keeps the key once found (it never changes), so ingest asks once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database

LIFETIME: Final = dt.timedelta(hours=6)  # the probe checks in hourly by default
GRACE: Final = dt.timedelta(minutes=15)  # measurements started this long after expiry count
SKEW: Final = dt.timedelta(minutes=5)  # ... and this long before issue (probe clocks)
_KEY_NAME: Final = "attestation-hmac"


class InvalidAttestation(ValueError):
    """An attestation that does not verify; ``reason`` is short, fixed text for a flag."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _Claims(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    probe: str
    cc: str
    asn: int
    iat: int
    exp: int


@dataclass(frozen=True)
class Attestation:
    probe_id: str
    cc: str
    asn: int
    issued: dt.datetime
    expires: dt.datetime

    def covers(self, moment: dt.datetime) -> bool:
        """Whether a measurement started at ``moment`` was taken while this held."""
        return self.issued - SKEW <= moment <= self.expires + GRACE


def issue(probe_id: str, cc: str, asn: int, now: dt.datetime, key: bytes) -> str:
    issued = int(now.timestamp())
    claims = _Claims(1, probe_id, cc, asn, issued, issued + int(LIFETIME.total_seconds()))
    body = msgspec.json.encode(claims)
    return f"{_b64(body)}.{_b64(_mac(key, body))}"


def verify(text: str, probe_id: str, key: bytes) -> Attestation:
    """The attestation in ``text`` if it is ours and this probe's; else InvalidAttestation."""
    body_part, dot, mac_part = text.partition(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except ValueError as exc:
        raise InvalidAttestation("attestation_malformed") from exc
    if not dot or not hmac.compare_digest(mac, _mac(key, body)):
        raise InvalidAttestation("attestation_forged")
    try:
        claims = msgspec.json.decode(body, type=_Claims)
    except msgspec.DecodeError as exc:
        raise InvalidAttestation("attestation_malformed") from exc
    if claims.probe != probe_id:
        raise InvalidAttestation("attestation_other_probe")
    return Attestation(claims.probe, claims.cc, claims.asn, _time(claims.iat), _time(claims.exp))


async def signing_key(connection: AsyncConnection) -> bytes | None:
    found = await connection.scalar(
        select(schema.collector_keys.c.value).where(schema.collector_keys.c.name == _KEY_NAME)
    )
    return None if found is None else bytes.fromhex(found)


class KeyHolder:
    """The signing key once a replica has seen it; until then the database is asked."""

    def __init__(self) -> None:
        self._key: bytes | None = None

    async def get(self, connection: AsyncConnection) -> bytes | None:
        if self._key is None:
            self._key = await signing_key(connection)
        return self._key


async def ensure_key(db: Database, connection: AsyncConnection, now: dt.datetime) -> bytes:
    """The key, created by whichever replica asks first (the others then read that one)."""
    statement = (
        db.insert(schema.collector_keys)
        .values(name=_KEY_NAME, value=secrets.token_hex(32), created_at=now)
        .on_conflict_do_nothing()
    )
    await connection.execute(statement)
    key = await signing_key(connection)
    assert key is not None
    return key


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if len(text) > 1024:
        raise ValueError("too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _time(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
