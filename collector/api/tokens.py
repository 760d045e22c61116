"""Researcher tokens (admin): issued with a label and an expiry, shown once, revocable.

A researcher token reads what the public cannot: the persistent probe id and exact times
of each measurement. It grants nothing else; it is not an admin token.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

import msgspec
from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.access import require_admin
from collector.api.bodies import json_response, read_json
from collector.api.errors import APIError
from collector.auth import check_admin, new_token, token_hash, utc_now
from collector.state import STATE
from collector.store import schema

DEFAULT_EXPIRY: Final = dt.timedelta(days=90)
Label = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_.@-]{1,64}$")]


class ResearcherTokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    label: Label | None = None
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=60, le=366 * 86400)] | None = None


async def create(request: web.Request) -> web.Response:
    await require_admin(request)
    wanted = await read_json(request, ResearcherTokenRequest, empty=ResearcherTokenRequest())
    token, now = new_token("researcher"), utc_now()
    label = wanted.label or f"researcher-{token_hash(token)[:8]}"
    seconds = wanted.expires_in_seconds
    expires = now + (dt.timedelta(seconds=seconds) if seconds else DEFAULT_EXPIRY)
    r = schema.researcher_tokens

    async def work(connection: AsyncConnection) -> bool:
        await check_admin(connection, request.headers.get("Authorization"))
        values = {"token_hash": token_hash(token), "label": label, "created_at": now}
        statement = request.app[STATE].db.insert(r).values(**values, expires_at=expires)
        result = await connection.execute(statement.on_conflict_do_nothing())
        return bool(result.rowcount)

    if not await request.app[STATE].db.transaction(work):
        raise APIError(409, "conflict", "a researcher token with this label exists", label=label)
    return json_response({"token": token, "label": label, "expires_at": expires}, status=201)


async def revoke(request: web.Request) -> web.Response:
    await require_admin(request)
    label = request.match_info["label"]
    r = schema.researcher_tokens

    async def work(connection: AsyncConnection) -> bool:
        result = await connection.execute(delete(r).where(r.c.label == label))
        return bool(result.rowcount)

    if not await request.app[STATE].db.transaction(work):
        raise APIError(404, "not_found", "no such researcher token", label=label[:64])
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/researcher-tokens", create),
        web.delete("/api/v1/researcher-tokens/{label}", revoke),
    ]
