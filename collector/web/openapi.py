"""The status page's addresses for the collector's OpenAPI document: pages for people,
documented so that the document lists every route the collector serves."""

from __future__ import annotations

from typing import Any, Final

_LANG: Final = {
    "name": "lang",
    "in": "query",
    "required": False,
    "description": "language of the page (default: Accept-Language, else en)",
    "schema": {"enum": ["en", "ru"]},
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}  # fmt: skip


def _get(summary: str, content_type: str, *params: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["status page"],
            "parameters": [*params, _LANG],
            "responses": {
                "200": {"description": "OK", "content": {content_type: {"schema": {"type": "string"}}}},
                "304": {"description": "not modified (If-None-Match matched the ETag)"},
                "404": {"description": "no such page", "content": {"text/html": {"schema": {"type": "string"}}}},
            },
        }
    }  # fmt: skip


def paths() -> dict[str, Any]:
    cc = _path("cc", "two-letter country code")
    fmt = _path("fmt", "atom, rss or json")
    service = _path("service", "service name")
    return {
        "/": _get("Status page: every country with probes, open incidents", "text/html"),
        "/country/{cc}": _get("Status page of one country: grid, timelines, events", "text/html", cc),
        "/country/{cc}/incidents.{fmt}": _get("Feed of one country's incidents", "application/atom+xml", cc, fmt),
        "/incidents.{fmt}": _get("Feed of incidents (Atom, RSS or JSON Feed)", "application/atom+xml", fmt),
        "/incident/{incident_id}": _get(
            "An incident's permalink; append .txt or .json for those versions", "text/html",
            _path("incident_id", "incident id"),
        ),
        "/badge/{cc}/{service}.svg": _get("Embeddable SVG badge", "image/svg+xml", cc, service),
        "/widget/{cc}": _get("Embeddable widget (iframe) of a country", "text/html", cc),
        "/widget/{cc}/{service}": _get("Embeddable widget of one service", "text/html", cc, service),
        "/static/{name}": _get("The page's stylesheet and script", "text/css", _path("name", "file")),
    }  # fmt: skip
