"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Body schemas come from the msgspec types themselves (``probe.model.Measurement`` and the
collector's response types), so the document cannot drift from what is validated.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from collector.api.aggregation import AXES, COUNT_COLUMNS, GRAINS
from collector.api.query import Item, Page
from collector.ingest.measurements import BatchResult
from collector.web import openapi as status_page
from probe.model import METHODS, VERDICTS, Measurement

_REF: Final = "#/components/schemas/{name}"
_ADMIN: Final[list[dict[str, list[str]]]] = [{"admin": []}]
_PROBE: Final[list[dict[str, list[str]]]] = [{"probe": []}]
_ERRORS: Final = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
}


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
    _query("service", "service name, e.g. telegram"),
    _query("cc", "two-letter country code"),
    _query("asn", "AS number, e.g. 9198 or AS9198"),
    _query("verdict", "collector verdict", {"enum": list(VERDICTS)}),
    _query("since", "ISO 8601 time, inclusive"),
    _query("until", "ISO 8601 time, exclusive"),
]


def _paths() -> dict[str, Any]:
    generic = {"type": "object"}
    return {
        "/api/v1/measurements": {
            "post": {
                "summary": "Ingest a batch (JSON array or NDJSON, optionally gzip)",
                "security": _PROBE,
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": _ref("Measurement")}
                        },
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    }
                },
                "responses": {
                    "200": _json(_ref("BatchResult"), "a result per item"),
                    **_ERRORS,
                    "413": {"$ref": "#/components/responses/Error"},
                    "429": {"$ref": "#/components/responses/Error"},
                },
            },
            "get": {
                "summary": "Stored measurements, oldest first, paged by cursor",
                "parameters": [
                    *_FILTERS,
                    _query("limit", "page size", {"type": "integer", "minimum": 1}),
                    _query("cursor", "next_cursor of the previous page"),
                ],
                "responses": {"200": _json(_ref("Page")), **_ERRORS},
            },
        },
        "/api/v1/measurements/{measurement_id}": {
            "get": {
                "summary": "One stored measurement",
                "parameters": [_path("measurement_id")],
                "responses": {
                    "200": _json(_ref("Item")),
                    "404": {"$ref": "#/components/responses/Error"},
                },
            }
        },
        "/api/v1/aggregation": {
            "get": {
                "summary": "Counts over up to two axes, from hourly rollups",
                "parameters": [
                    *_FILTERS,
                    _query("method", "detection method", {"enum": list(METHODS)}),
                    _query("axis_x", "first axis", {"enum": list(AXES)}),
                    _query("axis_y", "second axis", {"enum": list(AXES)}),
                    _query("grain", "time grain", {"enum": list(GRAINS)}),
                    _query("format", "json or csv", {"enum": ["json", "csv"]}),
                ],
                "responses": {
                    "200": {
                        "description": f"rows of axis values and {', '.join(COUNT_COLUMNS)}",
                        "content": {"application/json": {"schema": generic}, "text/csv": {}},
                    },
                    **_ERRORS,
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
                    **_ERRORS,
                },
            },
        },
        "/api/v1/probes/check-in": {
            "post": {
                "summary": "Target list, schedule, and the probe's network from its address",
                "security": _PROBE,
                "responses": {"200": _json(generic), **_ERRORS},
            }
        },
        "/api/v1/probes/{probe_id}": {
            "patch": {
                "summary": "Set the control flag",
                "security": _ADMIN,
                "parameters": [_path("probe_id")],
                "responses": {"200": _json(generic), **_ERRORS},
            }
        },
        "/api/v1/probes/{probe_id}/revoke": {
            "post": {
                "summary": "Revoke a probe's token",
                "security": _ADMIN,
                "parameters": [_path("probe_id")],
                "responses": {"200": _json(generic), **_ERRORS},
            }
        },
        "/api/v1/enrolment-tokens": {
            "post": {
                "summary": "Issue an enrolment token",
                "security": _ADMIN,
                "responses": {"201": _json(generic), **_ERRORS},
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
                "responses": {
                    "200": _json(generic),
                    "503": {"$ref": "#/components/responses/Error"},
                },
            }
        },
    }


def _op(
    summary: str,
    *,
    admin: bool = False,
    params: list[dict[str, Any]] | None = None,
    status: str = "200",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {status: _json({"type": "object"}), **_ERRORS},
    }
    if admin:
        operation["security"] = _ADMIN
    if params:
        operation["parameters"] = params
    return operation


def _alert_paths() -> dict[str, Any]:
    event_id, sub_id = [_path("event_id")], [_path("subscriber_id")]
    incident_filters = [
        _query("service", "service name"),
        _query("cc", "two-letter country code"),
        _query("kind", "blocking or shutdown", {"enum": ["blocking", "shutdown"]}),
        _query("status", "open or resolved", {"enum": ["open", "resolved"]}),
        _query("since", "ISO 8601 time: onset at or after (open ones always)"),
        _query("limit", "at most this many", {"type": "integer", "minimum": 1}),
    ]
    return {
        "/api/v1/events": {
            "get": _op(
                "Announced events",
                params=[
                    _query("cc", "country"),
                    _query("kind", "event kind"),
                    _query("since", "start at or after"),
                    _query("until", "start before"),
                ],
            ),
            "post": _op("Add an event", admin=True, status="201"),
        },
        "/api/v1/events/import": {
            "post": _op(
                "Import events from an iCalendar, RSS/Atom or JSON feed (body)",
                admin=True,
                status="201",
                params=[_query("format", "feed format", {"enum": ["ical", "rss", "atom", "json"]})],
            )
        },
        "/api/v1/events/{event_id}": {
            "get": _op("One event", params=event_id),
            "put": _op("Replace an event", admin=True, params=event_id),
            "delete": _op("Remove an event", admin=True, params=event_id, status="204"),
        },
        "/api/v1/subscribers": {
            "get": _op("Webhook subscribers (no secrets)", admin=True),
            "post": _op(
                "Add a subscriber; the response holds its secret", admin=True, status="201"
            ),
        },
        "/api/v1/subscribers/{subscriber_id}": {
            "get": _op("One subscriber", admin=True, params=sub_id),
            "patch": _op("Change filters, URL or enabled", admin=True, params=sub_id),
            "delete": _op("Remove a subscriber", admin=True, params=sub_id, status="204"),
        },
        "/api/v1/subscribers/{subscriber_id}/rotate-secret": {
            "post": _op(
                "New secret, shown once; the old one signs too for a while",
                admin=True,
                params=sub_id,
            ),
        },
        "/api/v1/incidents": {
            "get": _op("Incidents with linked events and correlation", params=incident_filters)
        },
        "/api/v1/incidents/{incident_id}": {
            "get": _op("One incident", params=[_path("incident_id")])
        },
        "/api/v1/correlation": {
            "get": _op(
                "How often blocking followed events of a kind",
                params=[
                    _query("service", "service (required)"),
                    _query("cc", "country (required)"),
                    _query("kind", "event kind (required)"),
                ],
            )
        },
        "/api/v1/deliveries": {
            "get": _op(
                "Webhook notifications; status=dead lists dead letters",
                admin=True,
                params=[
                    _query("status", "delivery status", {"enum": ["pending", "delivered", "dead"]}),
                    _query("limit", "at most this many", {"type": "integer", "minimum": 1}),
                ],
            )
        },
        "/api/v1/deliveries/{delivery_id}/retry": {
            "post": _op(
                "Send a dead letter again (same webhook-id)",
                admin=True,
                params=[_path("delivery_id")],
            ),
        },
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document(version: str) -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(
        [Measurement, BatchResult, Page, Item], ref_template=_REF
    )
    error = {
        "type": "object",
        "properties": {"error": {"type": "object", "required": ["status", "code", "message"]}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "censorwatch collector", "version": version},
        "paths": _paths() | _alert_paths() | status_page.paths(),
        "components": {
            "schemas": components,
            "responses": {"Error": _json(error, "an error, with what was wrong")},
            "securitySchemes": {
                kind: {"type": "http", "scheme": "bearer", "description": f"{kind} token"}
                for kind in ("admin", "enrolment", "probe")
            },
        },
    }
