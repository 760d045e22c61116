"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Body schemas come from the msgspec types themselves (``probe.model.Measurement`` and the
collector's response types), so the document cannot drift from what is validated.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from collector.api.aggregation import AXES, COUNT_COLUMNS, GRAINS
from collector.api.events import EventIn
from collector.api.query import Item, Page
from collector.api.sources import SourceIn
from collector.api.subscribers import SubscriberIn, SubscriberPatch
from collector.api.tokens import ResearcherTokenRequest
from collector.api.watch import WindowIn
from collector.enrolment.probes import EnrolmentRequest, ProbeUpdate
from collector.ingest.measurements import BatchResult
from collector.web import openapi as status_page
from probe.model import METHODS, VERDICTS, Measurement

_REF: Final = "#/components/schemas/{name}"
_ADMIN: Final[list[dict[str, list[str]]]] = [{"admin": []}]
_PROBE: Final[list[dict[str, list[str]]]] = [{"probe": []}]
# Public reads answer everyone; a researcher or admin token shows exact probe ids and times.
_READER: Final[list[dict[str, list[str]]]] = [{}, {"researcher": []}, {"admin": []}]
_ERROR: Final = {"$ref": "#/components/responses/Error"}
_TIME: Final = {"type": "string", "format": "date-time"}
_SERVICE: Final = {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}
_COUNTRY: Final = {"type": "string", "pattern": "^[A-Za-z]{2}$"}
_ASN: Final = {"type": "string", "pattern": "^(?:AS|as)?[0-9]{1,9}$"}
_KIND: Final = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"}
_CURSOR: Final = {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"}
_EMPTY: Final = {"type": "string", "maxLength": 0}


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A filter whose empty value means no filter (as an HTML form sends it)."""
    return {"anyOf": [schema, _EMPTY]}


def _errors(*codes: int) -> dict[str, Any]:
    """The error responses an operation can give; every one may meet a database outage."""
    return {str(code): _ERROR for code in (*codes, 503)}


_ERRORS: Final = _errors(400, 401)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_FILTERS: Final = [
    _query("service", "service name, e.g. telegram", _or_empty(_SERVICE)),
    _query("cc", "two-letter country code", _or_empty(_COUNTRY)),
    _query("asn", "AS number, e.g. 9198 or AS9198", _or_empty(_ASN)),
    _query("verdict", "collector verdict", _or_empty({"enum": list(VERDICTS)})),
    _query("since", "ISO 8601, inclusive (to the hour without a token)", _or_empty(_TIME)),
    _query("until", "ISO 8601, exclusive (to the hour without a token)", _or_empty(_TIME)),
]


def _body(name: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _paths() -> dict[str, Any]:
    generic = {"type": "object"}
    return {
        "/api/v1/measurements": {
            "post": {
                "summary": "Ingest a batch (JSON array or NDJSON, optionally gzip)",
                "security": _PROBE,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "minItems": 1,
                                "items": _ref("Measurement"),
                            }
                        },
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json(_ref("BatchResult"), "a result per item"),
                    **_errors(400, 401, 403, 413, 415, 429),
                },
            },
            "get": {
                "summary": "Stored measurements, oldest first, paged by cursor",
                "security": _READER,
                "parameters": [
                    *_FILTERS,
                    _query(
                        "limit", "page size", {"type": "integer", "minimum": 1, "maximum": 1000}
                    ),
                    _query("cursor", "next_cursor of the previous page", _or_empty(_CURSOR)),
                ],
                "responses": {"200": _json(_ref("Page")), **_errors(400, 401, 422)},
            },
        },
        "/api/v1/measurements/{measurement_id}": {
            "get": {
                "summary": "One stored measurement",
                "security": _READER,
                "parameters": [_path("measurement_id")],
                "responses": {"200": _json(_ref("Item")), **_errors(401, 404)},
            }
        },
        "/api/v1/aggregation": {
            "get": {
                "summary": "Counts over up to two axes, from hourly rollups",
                "parameters": [
                    *_FILTERS,
                    _query("method", "detection method", _or_empty({"enum": list(METHODS)})),
                    _query("axis_x", "first axis", {"enum": list(AXES)}),
                    _query("axis_y", "second axis, unlike the first", {"enum": list(AXES)}),
                    _query("grain", "time grain", {"enum": list(GRAINS)}),
                    _query("format", "json or csv", {"enum": ["json", "csv"]}),
                ],
                "responses": {
                    "200": {
                        "description": f"rows of axis values and {', '.join(COUNT_COLUMNS)}",
                        "content": {"application/json": {"schema": generic}, "text/csv": {}},
                    },
                    **_errors(400, 422),
                },
            }
        },
        "/api/v1/probes": {
            "get": {"summary": "Probes, public view", "responses": {"200": _json(generic)}},
            "post": {
                "summary": "Register a probe with an enrolment token (or openly, if allowed)",
                "security": [{"enrolment": []}, {}],
                "responses": {
                    "201": _json(generic, "the probe's id and token, shown once"),
                    **_errors(400, 401, 413),
                },
            },
        },
        "/api/v1/probes/check-in": {
            "post": {
                "summary": "Target list, schedule, and the probe's network from its address",
                "security": _PROBE,
                "responses": {"200": _json(generic), **_errors(401, 403)},
            }
        },
        "/api/v1/probes/{probe_id}": {
            "patch": {
                "summary": "Set the control flag and/or whether an operator vetted the probe",
                "security": _ADMIN,
                "parameters": [_path("probe_id")],
                "requestBody": _body("ProbeUpdate"),
                "responses": {"200": _json(generic), **_errors(400, 401, 404, 413, 422)},
            }
        },
        "/api/v1/probes/{probe_id}/revoke": {
            "post": {
                "summary": "Revoke a probe's token",
                "security": _ADMIN,
                "parameters": [_path("probe_id")],
                "responses": {"200": _json(generic), **_errors(401, 404)},
            }
        },
        "/api/v1/enrolment-tokens": {
            "post": {
                "summary": "Issue an enrolment token (by default one use, valid 7 days)",
                "security": _ADMIN,
                "requestBody": _body("EnrolmentRequest", required=False),
                "responses": {"201": _json(generic), **_errors(400, 401, 413)},
            }
        },
        "/api/v1/researcher-tokens": {
            "post": {
                "summary": "Issue a researcher token: exact probe ids and times (90 days)",
                "security": _ADMIN,
                "requestBody": _body("ResearcherTokenRequest", required=False),
                "responses": {"201": _json(generic), **_errors(400, 401, 409, 413)},
            }
        },
        "/api/v1/researcher-tokens/{label}": {
            "delete": {
                "summary": "Revoke a researcher token",
                "security": _ADMIN,
                "parameters": [_path("label")],
                "responses": {"204": {"description": "revoked"}, **_errors(401, 404)},
            }
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json(generic)}}
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OK"}}}
        },
        "/healthz": {
            "get": {"summary": "The process is alive", "responses": {"200": _json(generic)}}
        },
        "/readyz": {
            "get": {
                "summary": "Ready for traffic (database reachable, metrics loaded)",
                "responses": {"200": _json(generic), "503": _ERROR},
            }
        },
    }


def _op(
    summary: str,
    *,
    admin: bool = False,
    params: list[dict[str, Any]] | None = None,
    status: str = "200",
    errors: tuple[int, ...] = (400,),
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok = {"description": "done"} if status == "204" else _json({"type": "object"})
    codes = (*errors, 401) if admin else errors
    operation: dict[str, Any] = {"summary": summary, "responses": {status: ok, **_errors(*codes)}}
    if admin:
        operation["security"] = _ADMIN
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = body
    return operation


_FEED_TYPES: Final = (
    "text/calendar", "application/rss+xml", "application/atom+xml", "application/json",
)  # fmt: skip


def _source_paths() -> dict[str, Any]:
    source_id = [_path("source_id")]
    body = _body("SourceIn")
    return {
        "/api/v1/event-sources": {
            "get": _op("Event sources with their last success and error", admin=True, errors=()),
            "post": _op(
                "Register a calendar or feed to poll", admin=True, status="201", body=body,
                errors=(400, 413, 422),
            ),
        },
        "/api/v1/event-sources/{source_id}": {
            "get": _op("One event source", admin=True, params=source_id, errors=(404,)),
            "put": _op(
                "Replace a source's settings", admin=True, params=source_id, body=body,
                errors=(400, 404, 413, 422),
            ),
            "delete": _op(
                "Remove a source (its events stay)", admin=True, params=source_id, status="204",
                errors=(404,),
            ),
        },
        "/api/v1/event-sources/{source_id}/poll": {
            "post": _op(
                "Poll on the next tick", admin=True, params=source_id, status="202", errors=(404,)
            ),
        },
    }  # fmt: skip


def _alert_paths() -> dict[str, Any]:
    event_id, sub_id = [_path("event_id")], [_path("subscriber_id")]
    limit = {"type": "integer", "minimum": 1, "maximum": 500}
    incident_filters = [
        _query("service", "service name"),
        _query("cc", "two-letter country code"),
        _query("kind", "blocking or shutdown", _or_empty({"enum": ["blocking", "shutdown"]})),
        _query(
            "status",
            "open, unconfirmed (too few independent voices) or resolved",
            _or_empty({"enum": ["open", "unconfirmed", "resolved"]}),
        ),
        _query("since", "ISO 8601: onset at or after (open ones always)", _or_empty(_TIME)),
        _query("limit", "at most this many", _or_empty(limit)),
    ]
    feed = {"required": True, "content": {t: {"schema": {"type": "string"}} for t in _FEED_TYPES}}
    required = {"required": True}
    return {
        "/api/v1/events": {
            "get": _op(
                "Announced events",
                params=[
                    _query("cc", "country"),
                    _query("kind", "event kind"),
                    _query("since", "start at or after", _TIME),
                    _query("until", "start before", _TIME),
                ],
            ),
            "post": _op(
                "Add an event",
                admin=True,
                status="201",
                body=_body("EventIn"),
                errors=(400, 413, 422),
            ),
        },
        "/api/v1/events/import": {
            "post": _op(
                "Import events from an iCalendar, RSS/Atom or JSON feed (body)",
                admin=True,
                status="201",
                params=[
                    _query("format", "feed format", {"enum": ["ical", "rss", "atom", "json"]}),
                    _query("cc", "country for entries that name none"),
                    _query("kind", "kind for entries that name none"),
                ],
                body=feed,
                errors=(400, 413, 422),
            )
        },
        **_source_paths(),
        "/api/v1/events/{event_id}": {
            "get": _op("One event", params=event_id, errors=(404,)),
            "put": _op(
                "Replace an event",
                admin=True,
                params=event_id,
                body=_body("EventIn"),
                errors=(400, 404, 413, 422),
            ),
            "delete": _op(
                "Remove an event", admin=True, params=event_id, status="204", errors=(404,)
            ),
        },
        "/api/v1/subscribers": {
            "get": _op("Webhook subscribers (no secrets)", admin=True, errors=()),
            "post": _op(
                "Add a subscriber; the response holds its secret",
                admin=True,
                status="201",
                body=_body("SubscriberIn"),
                errors=(400, 413, 422),
            ),
        },
        "/api/v1/subscribers/{subscriber_id}": {
            "get": _op("One subscriber", admin=True, params=sub_id, errors=(404,)),
            "patch": _op(
                "Change filters, URL or enabled",
                admin=True,
                params=sub_id,
                body=_body("SubscriberPatch"),
                errors=(400, 404, 413),
            ),
            "delete": _op(
                "Remove a subscriber", admin=True, params=sub_id, status="204", errors=(404,)
            ),
        },
        "/api/v1/subscribers/{subscriber_id}/rotate-secret": {
            "post": _op(
                "New secret, shown once; the old one signs too for a while",
                admin=True,
                params=sub_id,
                errors=(404,),
            ),
        },
        "/api/v1/incidents": {
            "get": _op("Incidents with linked events and correlation", params=incident_filters)
        },
        "/api/v1/incidents/{incident_id}": {
            "get": _op("One incident", params=[_path("incident_id")], errors=(404,))
        },
        "/api/v1/correlation": {
            "get": _op(
                "How often blocking followed events of a kind",
                params=[
                    {**_query("service", "service", _SERVICE), **required},
                    {**_query("cc", "country", _COUNTRY), **required},
                    {**_query("kind", "event kind", _KIND), **required},
                    _query("series", "one recurring series instead of the whole kind"),
                ],
            )
        },
        "/api/v1/deliveries": {
            "get": _op(
                "Webhook notifications; status=dead lists dead letters",
                admin=True,
                params=[
                    _query("status", "delivery status", {"enum": ["pending", "delivered", "dead"]}),
                    _query("limit", "at most this many", {**limit, "maximum": 1000}),
                ],
            )
        },
        "/api/v1/deliveries/{delivery_id}/retry": {
            "post": _op(
                "Send a dead letter again (same webhook-id)",
                admin=True,
                params=[_path("delivery_id")],
                errors=(404,),
            ),
        },
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _hop_paths() -> dict[str, Any]:
    country = _query("cc", "two-letter country code", _COUNTRY) | {"required": True}
    return {
        "/api/v1/censor-hops": {
            "get": _op(
                "Where each network's censoring hops sit: per ASN, the hops from the "
                "subscriber at which probes located the censor, and the router's ASN",
                params=[
                    country,
                    _query("service", "service name, e.g. telegram", _or_empty(_SERVICE)),
                    _query("since", "from this time (default: the last 7 days)", _or_empty(_TIME)),
                ],
            ),
        },
    }


def _watch_paths() -> dict[str, Any]:
    return {
        "/api/v1/watch-windows": {
            "get": _op(
                "Current and coming watch windows (announced events' and those opened by hand)",
                params=[
                    _query("cc", "country", _or_empty(_COUNTRY)),
                    _query("active", "only the windows open now", {"enum": ["true", "false"]}),
                ],
            ),
            "post": _op(
                "Open a watch window by hand: probes of the country measure densely in it",
                admin=True,
                status="201",
                body=_body("WindowIn"),
                errors=(400, 413, 422),
            ),
        },
        "/api/v1/watch-windows/{window_id}": {
            "delete": _op(
                "Close a window opened by hand",
                admin=True,
                params=[_path("window_id")],
                status="204",
                errors=(404,),
            ),
        },
    }


_BODIES: Final = (
    EventIn, SubscriberIn, SubscriberPatch, ProbeUpdate, EnrolmentRequest, ResearcherTokenRequest,
    WindowIn, SourceIn,
)  # fmt: skip


def _with_format(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string":
            option["format"] = "date-time"


def document(version: str) -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(
        [Measurement, BatchResult, Page, Item, *_BODIES], ref_template=_REF
    )
    for name in ("start", "end"):  # msgspec leaves the format of datetimes out
        _with_format(components["EventIn"]["properties"][name])
        _with_format(components["WindowIn"]["properties"][name])
    error = {
        "type": "object",
        "properties": {"error": {"type": "object", "required": ["status", "code", "message"]}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "censorwatch collector", "version": version},
        "paths": _paths() | _alert_paths() | _watch_paths() | _hop_paths() | status_page.paths(),
        "components": {
            "schemas": components,
            "responses": {"Error": _json(error, "an error, with what was wrong")},
            "securitySchemes": {
                kind: {"type": "http", "scheme": "bearer", "description": f"{kind} token"}
                for kind in ("admin", "researcher", "enrolment", "probe")
            },
        },
    }
