"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Body schemas come from the msgspec types themselves (``probe.model.Measurement`` and the
collector's response types), so the document cannot drift from what is validated.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from collector.aggregation import AXES, COUNT_COLUMNS, GRAINS
from collector.ingest import BatchResult
from collector.query import Item, Page
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
        "paths": _paths(),
        "components": {
            "schemas": components,
            "responses": {"Error": _json(error, "an error, with what was wrong")},
            "securitySchemes": {
                kind: {"type": "http", "scheme": "bearer", "description": f"{kind} token"}
                for kind in ("admin", "enrolment", "probe")
            },
        },
    }
