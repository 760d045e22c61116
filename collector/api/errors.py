"""API errors and the middleware that turns every failure into a JSON response.

Bad input is the client's to fix and gets a 4xx that says what was wrong and where. A
database that cannot be reached is a 503 with ``Retry-After``. Anything else is a bug in
the collector: logged with its traceback, answered with a 500 that leaks no detail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from collector.auth import AuthError

log: Final = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encoder: Final = msgspec.json.Encoder()


class APIError(Exception):
    """A request the collector refuses; ``evidence`` says what it saw."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **evidence: Any,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.evidence = evidence
        super().__init__(f"{status} {code}: {message}")


def bad_request(message: str, **evidence: Any) -> APIError:
    return APIError(400, "bad_request", message, **evidence)


def unprocessable(message: str, **evidence: Any) -> APIError:
    """Each value is well formed, but together they ask for something impossible (422)."""
    return APIError(422, "unprocessable", message, **evidence)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **evidence: Any
) -> web.Response:
    body = {"error": {"status": status, "code": code, "message": message, **evidence}}
    return web.Response(
        status=status,
        body=_encoder.encode(body),
        content_type="application/json",
        headers=headers,
    )


_HTTP_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
}


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(exc.status, code, exc.reason if exc.text is None else exc.text, headers)


def _is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, OSError)
    return isinstance(exc, OSError | DisconnectionError | PoolTimeout | ConnectionError)


def _query_is_whole(request: web.Request) -> bool:
    """Every parameter of the raw query string survived parsing: yarl drops some malformed
    pairs silently, and a filter that vanished must not widen an answer."""
    raw = request.rel_url.raw_query_string
    if not raw:
        return True
    return len(parse_qsl(raw, keep_blank_values=True)) == len(request.query)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if not _query_is_whole(request):
            raise APIError(400, "bad_request", "the query string could not be read whole")
        return await handler(request)
    except APIError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.evidence)
    except AuthError as exc:
        code = "unauthorized" if exc.status == 401 else "forbidden"
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, code, exc.problem, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except Exception as exc:
        if _is_database_outage(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            return error_response(503, "unavailable", "database unavailable", {"Retry-After": "5"})
        log.exception("internal error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the collector's log")
