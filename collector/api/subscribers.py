"""Subscribers API (admin): webhook targets, their filters, and secret rotation.

The secret is in the response that creates a subscriber and in the one that rotates it,
and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.access import as_admin, require_admin
from collector.api.bodies import json_response, read_json
from collector.api.collection import AdminCollection
from collector.api.errors import unprocessable
from collector.auth import utc_now
from collector.state import STATE
from collector.store import subscribers as subscriberstore
from collector.store.subscribers import NewSubscriber

Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
Service = Annotated[str, msgspec.Meta(pattern="^[a-z0-9_-]{1,64}$")]
Url = Annotated[str, msgspec.Meta(pattern="^https?://", max_length=2048)]
Confidence = Annotated[float, msgspec.Meta(ge=0, le=1)]


class SubscriberIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    format: Literal["json", "slack", "telegram"] = "json"
    chat_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    countries: list[Country] = []
    services: list[Service] = []
    min_confidence: Confidence = 0.0
    send_resolutions: bool = True
    unconfirmed: bool = False  # also send incidents too few independent voices confirm

    def wanted(self) -> NewSubscriber:
        if self.format == "telegram" and not self.chat_id:
            raise unprocessable("a telegram subscriber needs chat_id")
        return NewSubscriber(
            self.url,
            self.format,
            self.chat_id,
            tuple(self.countries),
            tuple(self.services),
            self.min_confidence,
            self.send_resolutions,
            self.unconfirmed,
        )


class SubscriberPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    url: Url | None = None
    chat_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    countries: list[Country] | None = None
    services: list[Service] | None = None
    min_confidence: Confidence | None = None
    send_resolutions: bool | None = None
    unconfirmed: bool | None = None
    enabled: bool | None = None


SUBSCRIBERS: Final = AdminCollection(
    "/api/v1/subscribers",
    "subscriber_id",
    "subscriber",
    subscriberstore.one,
    subscriberstore.remove,
)


async def create(request: web.Request) -> web.Response:
    await require_admin(request)
    wanted = (await read_json(request, SubscriberIn)).wanted()
    made = await as_admin(request, lambda c: subscriberstore.add(c, wanted, utc_now()))
    return json_response({**made.view(), "secret": made.secret}, status=201)


async def listing(request: web.Request) -> web.Response:
    found = await as_admin(request, subscriberstore.all_subscribers)
    return json_response({"subscribers": [s.view() for s in found]})


async def patch(request: web.Request) -> web.Response:
    await require_admin(request)
    change = await read_json(request, SubscriberPatch)
    values = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not None}
    if change.enabled:
        values["disabled_reason"] = None

    async def work(connection: AsyncConnection, subscriber_id: str) -> Any:
        if values and not await subscriberstore.change(connection, subscriber_id, values):
            return None
        return await subscriberstore.one(connection, subscriber_id)

    found = await SUBSCRIBERS.one(request, work)
    return json_response(found.view())


async def rotate(request: web.Request) -> web.Response:
    subscriber_id = SUBSCRIBERS.ident(request)
    overlap = dt.timedelta(seconds=request.app[STATE].config.secret_overlap_seconds)
    now = utc_now()
    secret = await SUBSCRIBERS.one(request, lambda c, i: subscriberstore.rotate(c, i, now, overlap))
    body = {"id": subscriber_id, "secret": secret, "previous_secret_valid_until": now + overlap}
    return json_response(body)


def routes() -> list[web.RouteDef]:
    return SUBSCRIBERS.routes(
        listing=listing,
        create=create,
        change=("PATCH", patch),
        action=("rotate-secret", rotate),
    )
