"""Events through the API: CRUD, feed imports, and linking to incidents that follow them."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alert_scenarios import block, fast
from collector_harness import Collector, start_collector

from collector.config import Config

ICAL = (
    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:stream-1\r\nSUMMARY:Opposition livestream\r\n"
    "DTSTART:20240501T180000Z\r\nDURATION:PT2H\r\nX-CENSORWATCH-KIND:livestream\r\n"
    "X-CENSORWATCH-COUNTRY:KZ\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
RSS = (
    '<rss version="2.0" xmlns:cw="https://censorwatch.org/ns/events"><channel><item>'
    "<title>Opposition livestream</title><guid>stream-1</guid><cw:country>KZ</cw:country>"
    "<cw:kind>livestream</cw:kind><cw:start>2024-05-01T18:00:00Z</cw:start></item>"
    "</channel></rss>"
)
ATOM = (
    '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>stream-1</id>'
    '<title>Opposition livestream</title><category term="country:KZ"/>'
    '<category term="kind:livestream"/><published>2024-05-01T18:00:00Z</published>'
    "</entry></feed>"
)
JSON = (
    '{"events": [{"id": "stream-1", "kind": "livestream", "title": "Opposition livestream",'
    ' "cc": "KZ", "start": "2024-05-01T18:00:00Z", "duration": 7200}]}'
)


async def _post(collector: Collector, path: str, **options: Any) -> tuple[int, Any]:
    response = await collector.client.post(path, headers=collector.admin_headers, **options)
    return response.status, await response.json()


async def _events(collector: Collector, **params: str) -> list[dict[str, Any]]:
    status, body = await collector.get_json("/api/v1/events", **params)
    assert status == 200, body
    found: list[dict[str, Any]] = body["events"]
    return found


async def test_create_show_replace_delete(collector: Collector) -> None:
    event = {"kind": "protest", "title": "March", "cc": "KZ", "start": "2024-06-01T10:00:00Z",
             "duration_seconds": 3600, "tags": ["square"]}  # fmt: skip
    status, made = await _post(collector, "/api/v1/events", json=event)
    assert status == 201, made
    assert made["end"] == "2024-06-01T11:00:00Z"
    path = f"/api/v1/events/{made['id']}"
    assert (await collector.get_json(path)) == (200, made)

    changed = {**event, "title": "Bigger march"}
    response = await collector.client.put(path, json=changed, headers=collector.admin_headers)
    assert response.status == 200, await response.text()
    assert [e["title"] for e in await _events(collector, cc="KZ")] == ["Bigger march"]

    response = await collector.client.delete(path, headers=collector.admin_headers)
    assert response.status == 204
    assert (await collector.get_json(path))[0] == 404
    assert await _events(collector) == []


async def test_writes_need_the_admin_token(collector: Collector) -> None:
    event = {"kind": "protest", "title": "M", "cc": "KZ", "start": "2024-06-01T10:00:00Z"}
    response = await collector.client.post("/api/v1/events", json=event)
    assert response.status == 401
    assert await _events(collector) == []


@pytest.mark.parametrize(
    ("fmt", "text"), [("ical", ICAL), ("rss", RSS), ("atom", ATOM), ("json", JSON), (None, ICAL)]
)
async def test_import_each_format_twice_is_once(
    collector: Collector, fmt: str | None, text: str
) -> None:
    params = {"format": fmt} if fmt else {}
    for _ in range(2):
        status, body = await _post(
            collector, "/api/v1/events/import", data=text.encode(), params=params
        )
        assert status == 201, body
        assert body["imported"] == 1
    [event] = await _events(collector)
    assert (event["id"], event["kind"], event["cc"]) == ("stream-1", "livestream", "KZ")


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        ("ical", ICAL.replace("DTSTART:20240501T180000Z", "DTSTART:soon"), "line 5"),
        ("ical", ICAL.replace("END:VEVENT\r\n", ""), "not a readable iCalendar file"),
        ("rss", RSS.replace("</item>", ""), "not well-formed"),
        ("atom", ATOM.replace('<category term="country:KZ"/>', ""), "entry 1: country"),
        ("json", JSON.replace('"KZ"', "7"), "event 1: cc"),
        ("json", JSON[:40], "line 1"),
    ],
)
async def test_a_malformed_feed_is_400_naming_the_place_and_stores_nothing(
    collector: Collector, fmt: str, text: str, where: str
) -> None:
    good = '[{"title": "Fine", "cc": "KZ", "start": "2024-05-01T10:00:00Z"}]'
    status, body = await _post(
        collector, "/api/v1/events/import", data=text.encode(), params={"format": fmt}
    )
    assert status == 400, body
    assert where in body["error"]["message"], body
    assert body["error"]["code"] == "invalid_feed"
    assert await _events(collector) == []
    status, body = await _post(collector, "/api/v1/events/import", data=good.encode())
    assert status == 201, body


@pytest.fixture
async def alerting(config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(fast(config))
    try:
        yield running
    finally:
        await running.client.close()


async def _incident(collector: Collector) -> dict[str, Any]:
    for _ in range(100):
        status, body = await collector.get_json("/api/v1/incidents", cc="KZ")
        assert status == 200, body
        if body["incidents"]:
            found: dict[str, Any] = body["incidents"][0]
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("no incident opened")


async def test_an_incident_soon_after_a_livestream_is_linked_and_correlated(
    alerting: Collector,
) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    event = {"kind": "livestream", "title": "Opposition stream", "cc": "KZ",
             "start": start.isoformat(), "duration_seconds": 7200, "id": "stream-now"}  # fmt: skip
    status, made = await _post(alerting, "/api/v1/events", json=event)
    assert status == 201, made

    await block(alerting, "telegram", probes=2)
    incident = await _incident(alerting)

    status, shown = await alerting.get_json(f"/api/v1/incidents/{incident['id']}")
    assert status == 200, shown
    [linked] = shown["events"]
    assert linked["id"] == "stream-now"
    assert 0 < linked["delay_seconds"] < 10 * 60
    assert shown["correlation"] is not None

    status, stats = await alerting.get_json(
        "/api/v1/correlation", service="telegram", cc="kz", kind="livestream"
    )
    assert status == 200, stats
    assert (stats["hits"], stats["events"]) == (1, 1)
    assert stats["p_value"] is None  # one past livestream is no statistic
    assert stats["line"].startswith("coincided with an announced livestream")


async def test_correlation_needs_service_country_and_kind(collector: Collector) -> None:
    status, body = await collector.get_json("/api/v1/correlation", service="telegram")
    assert status == 400, body
    assert "required" in body["error"]["message"]


async def test_a_title_of_control_characters_only_is_unprocessable(collector: Collector) -> None:
    """Schema-valid (a non-empty string) but no title once spaces and control characters
    go: a 422, like an end before its start, not a 400 for a malformed body."""
    event = {"kind": "livestream", "title": "\u001c", "cc": "KZ", "start": "2024-06-01T10:00:00Z"}
    status, body = await _post(collector, "/api/v1/events", json=event)
    assert status == 422, body
    assert body["error"]["field"] == "title"
    assert await _events(collector) == []
