"""Incidents, correlation and deliveries API.

Incidents and correlation are public, like measurements; deliveries (which subscriber got
what) need the admin token.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

from aiohttp import web

from alerts.correlation import Subject
from alerts.model import Incident
from collector.alerting import outbox
from collector.alerting.context import Context, Windows, context_for, statistics
from collector.api.access import as_admin
from collector.api.bodies import json_response
from collector.api.errors import APIError, bad_request
from collector.api.filters import check_keys, optional_time, parse_limit
from collector.auth import utc_now
from collector.state import STATE
from collector.store import events as eventstore
from collector.store import incidents as incidentstore

MAX_INCIDENTS: Final = 500
_CORRELATION_PARAMS: Final = {
    "service": re.compile(r"^[a-z0-9_-]{1,64}$"),
    "cc": re.compile(r"^[A-Za-z]{2}$"),
    "kind": re.compile(r"^[a-z][a-z0-9_-]{0,31}$"),
}


def incident_view(incident: Incident, context: Context) -> dict[str, Any]:
    body = dataclasses.asdict(incident)
    body["status"] = incident.status
    body["events"] = [
        {**eventstore.view(context.events[lk.event_id]), "delay_seconds": lk.delay_seconds}
        for lk in context.links
        if lk.event_id in context.events
    ]
    body["correlation"] = None if context.stats is None else dataclasses.asdict(context.stats)
    return body


async def list_incidents(request: web.Request) -> web.Response:
    params = request.query
    check_keys(params, frozenset({"service", "cc", "kind", "status", "since", "limit"}))
    status = params.get("status") or None
    if status not in (None, "open", "unconfirmed", "resolved"):
        raise bad_request("status: expected open, unconfirmed or resolved")
    if params.get("kind") not in (None, "", "blocking", "shutdown"):
        raise bad_request("kind: expected blocking or shutdown")
    limit = parse_limit(params, 100, MAX_INCIDENTS)
    query = incidentstore.filtered(
        service=params.get("service") or None,
        cc=params.get("cc", "").upper() or None,
        kind=params.get("kind") or None,
        open_only=status in ("open", "unconfirmed"),
        since=optional_time(params, "since"),
    )
    state = request.app[STATE]
    windows, now = Windows.of(state.config), utc_now()
    async with state.db.reading() as connection:
        found = [
            i for i in await incidentstore.load(connection, query)
            if status is None or i.status == status
        ][:limit]  # fmt: skip
        views = [incident_view(i, await context_for(connection, i, windows, now)) for i in found]
    return json_response({"incidents": views})


async def show_incident(request: web.Request) -> web.Response:
    incident_id = request.match_info["incident_id"]
    state = request.app[STATE]
    async with state.db.reading() as connection:
        incident = await incidentstore.one(connection, incident_id)
        if incident is None:
            raise APIError(404, "not_found", "no such incident", incident_id=incident_id[:64])
        context = await context_for(connection, incident, Windows.of(state.config), utc_now())
    return json_response(incident_view(incident, context))


async def correlation(request: web.Request) -> web.Response:
    params = request.query
    check_keys(params, frozenset({"service", "cc", "kind", "series"}))
    missing = [k for k in ("service", "cc", "kind") if not params.get(k)]
    if missing:
        raise bad_request(f"{missing[0]} is required", required=["service", "cc", "kind"])
    for name, pattern in _CORRELATION_PARAMS.items():
        if not pattern.match(params[name]):
            raise bad_request(f"{name}: {params[name][:64]!r} is not {pattern.pattern}")
    state = request.app[STATE]
    async with state.db.reading() as connection:
        [stats] = await statistics(
            connection,
            [Subject(params["kind"], params.get("series") or None)],
            service=params["service"],
            cc=params["cc"].upper(),
            windows=Windows.of(state.config),
            now=utc_now(),
        )
    return json_response(dataclasses.asdict(stats))


async def deliveries(request: web.Request) -> web.Response:
    params = request.query
    check_keys(params, frozenset({"status", "limit"}))
    status = params.get("status")
    if status is not None and status not in outbox.STATUSES:
        raise bad_request(f"status: expected one of {', '.join(outbox.STATUSES)}")
    limit = parse_limit(params, 100, 1000)
    found = await as_admin(request, lambda c: outbox.listing(c, status, limit))
    return json_response({"deliveries": found})


async def retry_delivery(request: web.Request) -> web.Response:
    message_id = request.match_info["delivery_id"]
    now = utc_now()
    if not await as_admin(request, lambda c: outbox.retry(c, message_id, now)):
        raise APIError(404, "not_found", "no such dead letter", delivery_id=message_id[:64])
    return json_response({"id": message_id, "status": "pending"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/incidents", list_incidents),
        web.get("/api/v1/incidents/{incident_id}", show_incident),
        web.get("/api/v1/correlation", correlation),
        web.get("/api/v1/deliveries", deliveries),
        web.post("/api/v1/deliveries/{delivery_id}/retry", retry_delivery),
    ]
