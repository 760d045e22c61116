"""The alert routes: events, subscribers, incidents, correlation and deliveries."""

from __future__ import annotations

from aiohttp import web

from collector import events_api, incidents_api, subscribers_api


def routes() -> list[web.RouteDef]:
    return [*events_api.routes(), *subscribers_api.routes(), *incidents_api.routes()]
