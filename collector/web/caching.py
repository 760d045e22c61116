"""Responses with strong ETags: a repeated request whose ``If-None-Match`` matches gets a
304 and no body, which matters on slow, filtered connections.

Pages are rendered per request (from rollups, so cheaply) and may be cached briefly;
static assets are addressed by their hash and cached for a year.
"""

from __future__ import annotations

import hashlib
from typing import Final

from aiohttp import web

PAGE_MAX_AGE: Final = 30
ASSET_MAX_AGE: Final = 365 * 86400


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    offered = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in offered or etag in offered


def respond(
    request: web.Request,
    body: bytes,
    content_type: str,
    *,
    max_age: int = PAGE_MAX_AGE,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    etag = etag_of(body)
    common = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Language",
        "X-Content-Type-Options": "nosniff",
        **(headers or {}),
    }
    if status == 200 and _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=common)
    return web.Response(
        body=body, status=status, content_type=content_type, charset="utf-8", headers=common
    )
