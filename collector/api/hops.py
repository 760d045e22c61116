"""``GET /api/v1/censor-hops``: where each network's censoring hops sit.

Per ASN of a country, the hops from the subscriber at which probes located the device that
ended a blocked service's flow, with the network the router there belongs to ("2 hops from
the subscriber, inside AS9198"). Public, like the aggregates: no probe, no address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from collector.api.bodies import json_response
from collector.api.errors import bad_request
from collector.api.filters import check_keys, optional_time
from collector.auth import utc_now
from collector.state import STATE
from collector.store import hops as hopstore
from collector.store.hops import HopCount

KEYS: Final = frozenset({"cc", "service", "since"})
DEFAULT_SPAN: Final = dt.timedelta(days=7)
_SERVICE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def describe(hop: int, router_asn: int | None) -> str:
    """The sentence a person reads: "2 hops from the subscriber, inside AS9198"."""
    distance = f"{hop} hop{'' if hop == 1 else 's'} from the subscriber"
    return f"{distance}, inside AS{router_asn}" if router_asn is not None else distance


def networks(counts: Sequence[HopCount]) -> list[dict[str, Any]]:
    """Counts grouped per probe network, then per (hop, router network)."""
    found: dict[int, dict[tuple[int, int | None], dict[str, Any]]] = {}
    for count in counts:
        cell = found.setdefault(count.asn, {}).setdefault(
            (count.hop, count.router_asn),
            {
                "hop": count.hop,
                "router_asn": count.router_asn,
                "summary": describe(count.hop, count.router_asn),
                "services": [],
                "measurements": 0,
                "last_seen": _hour(count.last_seen),
            },
        )
        cell["services"].append(count.service)
        cell["measurements"] += count.measurements
        cell["last_seen"] = max(cell["last_seen"], _hour(count.last_seen))
    return [{"asn": asn, "hops": list(cells.values())} for asn, cells in sorted(found.items())]


def _hour(moment: dt.datetime) -> dt.datetime:
    """To the hour, as every public time is: a minute could tell one probe's round apart."""
    return moment.replace(minute=0, second=0, microsecond=0)


async def listing(request: web.Request) -> web.Response:
    params = request.query
    check_keys(params, KEYS)
    cc = params.get("cc", "")
    if len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        raise bad_request("cc: expected a two-letter country code")
    service = params.get("service") or None
    if service is not None and (len(service) > 64 or not set(service) <= _SERVICE_CHARS):
        raise bad_request("service: expected a service name ([a-z0-9_-], at most 64)")
    since = optional_time(params, "since") or utc_now() - DEFAULT_SPAN
    state = request.app[STATE]
    async with state.db.reading() as connection:
        counts = await hopstore.per_network(connection, cc.upper(), since, service)
    return json_response({"cc": cc.upper(), "since": since, "networks": networks(counts)})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/censor-hops", listing)]
