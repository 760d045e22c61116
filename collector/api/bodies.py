"""Small JSON request bodies and JSON responses, both through msgspec."""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from collector.api.errors import APIError, bad_request

T = TypeVar("T")
MAX_SMALL_BODY: Final = 64 * 1024
_encoder: Final = msgspec.json.Encoder()


async def read_json(request: web.Request, kind: type[T], *, empty: T | None = None) -> T:
    """Decode a small JSON body strictly; an empty body gives ``empty`` when that is allowed."""
    if request.content_length is not None and request.content_length > MAX_SMALL_BODY:
        raise APIError(413, "payload_too_large", "body exceeds the limit", limit=MAX_SMALL_BODY)
    data = await request.content.read(MAX_SMALL_BODY + 1)
    if len(data) > MAX_SMALL_BODY:
        raise APIError(413, "payload_too_large", "body exceeds the limit", limit=MAX_SMALL_BODY)
    if not data.strip():
        if empty is None:
            raise bad_request("a JSON body is required")
        return empty
    try:
        return msgspec.convert(_integral(msgspec.json.decode(data)), kind)
    except RecursionError as exc:
        raise bad_request("JSON nested too deeply") from exc
    except msgspec.ValidationError as exc:
        raise bad_request(f"invalid request: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise bad_request(f"invalid JSON: {exc}") from exc


def _integral(value: Any) -> Any:
    """JSON has one number type: ``5.0`` is the integer 5 (as JSON Schema says), not a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=_encoder.encode(value), content_type="application/json", headers=headers
    )
