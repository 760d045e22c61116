"""The alert routes: events, event sources, watch windows, subscribers, incidents, correlation
and deliveries."""

from __future__ import annotations

from aiohttp import web

from collector.api import events as events_api
from collector.api import incidents as incidents_api
from collector.api import sources as sources_api
from collector.api import subscribers as subscribers_api
from collector.api import watch as watch_api


def routes() -> list[web.RouteDef]:
    return [
        *events_api.routes(),
        *sources_api.routes(),
        *watch_api.routes(),
        *subscribers_api.routes(),
        *incidents_api.routes(),
    ]
