"""Probes: enrolment, registration, check-in, revocation and the control flag.

A probe's network (ASN and country) is looked up from the address its request came from,
in the operator's IP-to-ASN table; the address is used for that lookup and then dropped.
It is never stored, logged or returned. Tokens are stored as SHA-256 hashes only.

Registration and check-in return a signed network attestation (collector.enrolment.
attestation) for what that lookup found. Each probe remembers its enrolment group: the
enrolment token it used, or for open enrolment the hour it registered in, so probes one
person enrolled in bulk count as one voice until they have history; an operator can vet
a probe (``PATCH /api/v1/probes/{id}`` with ``{"vetted": true}``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.watch import Window
from collector.api.access import require_admin
from collector.api.bodies import json_response, read_json
from collector.api.errors import APIError
from collector.auth import (
    AuthError,
    bearer_token,
    check_admin,
    new_token,
    token_hash,
    utc_now,
)
from collector.enrolment import attestation, proxies, watch
from collector.enrolment.iptoasn import Network
from collector.state import STATE, State
from collector.store import schema
from collector.store.db import as_utc_or_none, driver_of

PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=10**9)]


@dataclass(frozen=True)
class ProbeRecord:
    id: str
    control: bool
    cc: str | None
    asn: int | None
    vetted: bool = False
    enrolment: str | None = None


class EnrolmentRequest(msgspec.Struct, forbid_unknown_fields=True):
    uses: PositiveInt | None = None
    expires_in_seconds: PositiveInt | None = None
    control: bool = False


class ProbeUpdate(msgspec.Struct, forbid_unknown_fields=True):
    control: bool | None = None
    vetted: bool | None = None


class Registration(msgspec.Struct, forbid_unknown_fields=True):
    """A probe asks for nothing when registering; the body may be ``{}`` or empty."""


_p = schema.probes
_COLUMNS = (_p.c.id, _p.c.control, _p.c.cc, _p.c.asn, _p.c.revoked_at, _p.c.vetted, _p.c.enrolment)
# PostgreSQL: straight through asyncpg, which keeps it prepared; every ingest batch asks.
_PG_AUTHENTICATE = f"SELECT {', '.join(c.name for c in _COLUMNS)} FROM probes WHERE token_hash = $1"


async def authenticate(connection: AsyncConnection, header: str | None) -> ProbeRecord:
    hashed = token_hash(bearer_token(header, "probe"))
    row: Any
    if connection.dialect.name == "postgresql":
        row = await (await driver_of(connection)).fetchrow(_PG_AUTHENTICATE, hashed)
    else:
        row = (await connection.execute(select(*_COLUMNS).where(_p.c.token_hash == hashed))).first()
    if row is None:
        raise AuthError(401, "unknown probe token")
    probe_id, control, cc, asn, revoked_at, vetted, enrolment = tuple(row)
    if revoked_at is not None:
        raise AuthError(403, f"probe {probe_id} has been revoked")
    return ProbeRecord(probe_id, bool(control), cc, asn, bool(vetted), enrolment)


def network_of(state: State, request: web.Request) -> Network | None:
    """The requester's network; the address itself goes no further than this function."""
    if state.asn_table is None:
        return None
    h = request.headers
    address = proxies.client_address(
        request.remote, h.get("Forwarded"), h.get("X-Forwarded-For"), state.trusted_proxies
    )
    return None if address is None else state.asn_table.lookup(address)


async def touch(
    connection: AsyncConnection, probe_id: str, now: dt.datetime, network: Network | None = None
) -> None:
    values: dict[str, Any] = {"last_seen_at": now}
    if network is not None:
        values |= {"cc": network.cc, "asn": network.asn}
    await connection.execute(
        update(schema.probes).where(schema.probes.c.id == probe_id).values(**values)
    )


def open_group(now: dt.datetime) -> str:
    """Probes that enrolled openly in one hour are one group: nobody vouched for them."""
    return f"open:{now:%Y%m%d%H}"


def token_group(token: str) -> str:
    return f"token:{token_hash(token)[:16]}"


async def _use_enrolment_token(connection: AsyncConnection, header: str | None) -> tuple[bool, str]:
    """Spend one use of an enrolment token; returns (enrols control probes, its group)."""
    token = bearer_token(header, "enrolment")
    e = schema.enrolment_tokens
    now = utc_now()
    statement = (
        update(e)
        .where(e.c.token_hash == token_hash(token))
        .where((e.c.uses_left.is_(None)) | (e.c.uses_left > 0))
        .where((e.c.expires_at.is_(None)) | (e.c.expires_at > now))
        .values(uses_left=e.c.uses_left - 1)
        .returning(e.c.control)
    )
    row = (await connection.execute(statement)).first()
    if row is None:
        raise AuthError(401, "unknown, used up or expired enrolment token")
    return bool(row.control), token_group(token)


async def _check_enrolment_token(connection: AsyncConnection, header: str | None) -> None:
    """Refuse an unusable enrolment token before the body is read (spending it comes later)."""
    e = schema.enrolment_tokens
    query = (
        select(e.c.token_hash)
        .where(e.c.token_hash == token_hash(bearer_token(header, "enrolment")))
        .where((e.c.uses_left.is_(None)) | (e.c.uses_left > 0))
        .where((e.c.expires_at.is_(None)) | (e.c.expires_at > utc_now()))
    )
    if (await connection.execute(query)).first() is None:
        raise AuthError(401, "unknown, used up or expired enrolment token")


async def register(request: web.Request) -> web.Response:
    state = request.app[STATE]
    header = request.headers.get("Authorization")
    if header is not None or not state.config.open_enrolment:
        async with state.db.reading() as connection:
            await _check_enrolment_token(connection, header)
    await read_json(request, Registration, empty=Registration())
    network = network_of(state, request)
    token = new_token("probe")
    probe_id = str(uuid.uuid4())

    async def work(connection: AsyncConnection) -> tuple[bool, str | None]:
        now = utc_now()
        if header is None and state.config.open_enrolment:
            control, group = False, open_group(now)
        else:
            control, group = await _use_enrolment_token(connection, header)
        await connection.execute(
            schema.probes.insert().values(
                id=probe_id,
                token_hash=token_hash(token),
                control=control,
                cc=network.cc if network else None,
                asn=network.asn if network else None,
                created_at=now,
                enrolment=group,
            )
        )
        return control, await _attest(state, connection, probe_id, network, now)

    control, attested = await state.db.transaction(work)
    body = {
        "probe_id": probe_id,
        "token": token,
        "control": control,
        **_network_view(network),
        "attestation": attested,
    }
    return json_response(body, status=201)


def _network_view(network: Network | None) -> dict[str, Any]:
    return {"cc": network.cc if network else None, "asn": network.asn if network else None}


async def _attest(
    state: State,
    connection: AsyncConnection,
    probe_id: str,
    network: Network | None,
    now: dt.datetime,
) -> str | None:
    """A signed attestation of the network the collector itself found, if it found one."""
    if network is None:
        return None
    key = await attestation.ensure_key(state.db, connection, now)
    return attestation.issue(probe_id, network.cc, network.asn, now, key)


async def check_in(request: web.Request) -> web.Response:
    state = request.app[STATE]
    network = network_of(state, request)

    async def work(connection: AsyncConnection) -> tuple[ProbeRecord, str | None, list[Window]]:
        now = utc_now()
        probe = await authenticate(connection, request.headers.get("Authorization"))
        await touch(connection, probe.id, now, network)
        cc = network.cc if network is not None else None
        found = (
            await watch.windows(connection, state.config, state.targets.text, cc, now) if cc else []
        )
        return probe, await _attest(state, connection, probe.id, network, now), found

    probe, attested, windows = await state.db.transaction(work)
    config = state.config
    body = {
        "probe_id": probe.id,
        "control": probe.control,
        **_network_view(network),
        "attestation": attested,
        "schedule": {
            "interval_seconds": config.schedule_interval_seconds,
            "jitter_seconds": config.schedule_jitter_seconds,
        },
        "targets": {
            "format": "toml",
            "sha256": state.targets.sha256,
            "text": state.targets.text,
        },
        "watch": watch.wire(windows, config),
        "check_in_seconds": config.watch_check_in_seconds,
    }
    return json_response(body)


async def create_enrolment_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    async with state.db.reading() as connection:
        await check_admin(connection, request.headers.get("Authorization"))
    wanted = await read_json(request, EnrolmentRequest, empty=EnrolmentRequest())
    token = new_token("enrolment")
    now = utc_now()
    # Finite by default: a leaked token enrols one probe within a week, not an army forever.
    uses = wanted.uses or state.config.enrolment_default_uses
    seconds = wanted.expires_in_seconds or state.config.enrolment_default_expiry_seconds
    expires = now + dt.timedelta(seconds=seconds)
    async with state.db.writing() as connection:
        await connection.execute(
            schema.enrolment_tokens.insert().values(
                token_hash=token_hash(token),
                created_at=now,
                expires_at=expires,
                uses_left=uses,
                control=wanted.control,
            )
        )
    body = {"token": token, "uses": uses, "expires_at": expires, "control": wanted.control}
    return json_response(body, status=201)


def _probe_id(request: web.Request) -> str:
    probe_id = request.match_info["probe_id"]
    try:
        return str(uuid.UUID(probe_id))
    except ValueError as exc:
        raise APIError(404, "not_found", "no such probe", probe_id=probe_id[:64]) from exc


async def _update_probe(request: web.Request, values: dict[str, Any]) -> web.Response:
    state = request.app[STATE]
    probe_id = _probe_id(request)
    p = schema.probes

    async def work(connection: AsyncConnection) -> Any:
        await check_admin(connection, request.headers.get("Authorization"))
        statement = update(p).where(p.c.id == probe_id).values(**values).returning(*p.c)
        return (await connection.execute(statement)).first()

    row = await state.db.transaction(work)
    if row is None:
        raise APIError(404, "not_found", "no such probe", probe_id=probe_id)
    return json_response(public_view(row._mapping, state, utc_now()))


async def set_control(request: web.Request) -> web.Response:
    """Change a probe's control flag and/or whether an operator vetted it."""
    await require_admin(request)
    change = await read_json(request, ProbeUpdate)
    values = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not None}
    if not values:
        raise APIError(422, "unprocessable", "expected control and/or vetted")
    return await _update_probe(request, values)


async def revoke(request: web.Request) -> web.Response:
    return await _update_probe(request, {"revoked_at": utc_now()})


def public_view(row: Any, state: State, now: dt.datetime) -> dict[str, Any]:
    """What anyone may know about a probe: no token hash, and times only to the day."""
    last_seen = as_utc_or_none(row["last_seen_at"])
    window = dt.timedelta(seconds=state.config.active_probe_seconds)
    active = row["revoked_at"] is None and last_seen is not None and now - last_seen <= window
    created = as_utc_or_none(row["created_at"])
    return {
        "id": row["id"],
        "cc": row["cc"],
        "asn": row["asn"],
        "control": bool(row["control"]),
        "vetted": bool(row["vetted"]),
        "active": active,
        "revoked": row["revoked_at"] is not None,
        "registered": created.date().isoformat() if created else None,
    }


async def list_probes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    p = schema.probes
    async with state.db.reading() as connection:
        rows = (await connection.execute(select(p).order_by(p.c.created_at, p.c.id))).all()
    now = utc_now()
    return json_response({"probes": [public_view(r._mapping, state, now) for r in rows]})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/enrolment-tokens", create_enrolment_token),
        web.post("/api/v1/probes", register),
        web.get("/api/v1/probes", list_probes),
        web.post("/api/v1/probes/check-in", check_in),
        web.patch("/api/v1/probes/{probe_id:[0-9A-Fa-f-]{36}}", set_control),
        web.post("/api/v1/probes/{probe_id:[0-9A-Fa-f-]{36}}/revoke", revoke),
    ]
