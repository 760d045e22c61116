"""Event sources API (admin token for everything: a private calendar's URL is a secret)."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from aiohttp import web

from collector.alerting.sources import SourceInputError, new_source, refuse_private_name
from collector.api.access import as_admin, require_admin
from collector.api.bodies import json_response, read_json
from collector.api.collection import AdminCollection
from collector.api.errors import unprocessable
from collector.api.filters import check_keys
from collector.auth import utc_now
from collector.state import STATE
from collector.store import sources as sourcestore
from collector.store.sources import NewSource


class SourceIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    format: str | None = None
    cc: str | None = None
    kind: str | None = None
    keywords: dict[Annotated[str, msgspec.Meta(max_length=64)], str] = {}
    interval_seconds: int = 3600
    enabled: bool = True


async def _wanted(request: web.Request) -> NewSource:
    await require_admin(request)
    body = await read_json(request, SourceIn)
    config = request.app[STATE].config
    try:
        wanted = new_source(
            body.url,
            fmt=body.format,
            cc=body.cc,
            kind=body.kind,
            keywords=body.keywords.items(),
            interval_seconds=body.interval_seconds,
            config=config,
            enabled=body.enabled,
        )
        await refuse_private_name(wanted.url, config)
    except SourceInputError as exc:
        # well-formed JSON the source cannot be used with (a private address, a kind we do
        # not know): unprocessable, as the document says
        raise unprocessable(str(exc)) from exc
    return wanted


SOURCES: Final = AdminCollection(
    "/api/v1/event-sources", "source_id", "event source", sourcestore.one, sourcestore.remove
)


async def create(request: web.Request) -> web.Response:
    wanted = await _wanted(request)
    now = utc_now()
    made = await as_admin(request, lambda c: sourcestore.add(c, wanted, now))
    return json_response(made.view(), status=201)


async def replace(request: web.Request) -> web.Response:
    wanted = await _wanted(request)
    now = utc_now()
    changed = await SOURCES.one(request, lambda c, i: sourcestore.change(c, i, wanted, now))
    return json_response(changed.view())


async def listing(request: web.Request) -> web.Response:
    check_keys(request.query, frozenset())
    found = await as_admin(request, sourcestore.listing)
    return json_response({"sources": [s.view() for s in found]})


async def poll_now(request: web.Request) -> web.Response:
    """Make the source due; a poller takes it on its next tick."""
    now = utc_now()
    await SOURCES.one(request, lambda c, i: sourcestore.poll_now(c, i, now))
    return json_response({"id": SOURCES.ident(request), "next_poll_at": now}, status=202)


def routes() -> list[web.RouteDef]:
    return SOURCES.routes(
        listing=listing,
        create=create,
        change=("PUT", replace),
        action=("poll", poll_now),
    )
