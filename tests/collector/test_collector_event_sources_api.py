"""Event sources through the collector's API: admin only, private URLs refused unless
allowed, polled by the collector's own poller, visible in /metrics; and the import
endpoint with a default country, recurring entries and the admin token checked first."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from collector_harness import Collector, start_collector
from feed_server import FeedServer, feed_server
from prometheus_client.parser import text_string_to_metric_families

from collector.config import Config, ConfigError, resolve


@pytest.fixture
async def polling(sqlite_config: Config) -> AsyncIterator[Collector]:
    config = dataclasses.replace(
        sqlite_config,
        source_poll_seconds=0.1,
        source_min_interval_seconds=1,
        source_allow_private=True,
        alert_interval_seconds=0,
        delivery_interval_seconds=0,
    )
    running = await start_collector(config)
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with feed_server() as running:
        yield running


async def post(collector: Collector, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await collector.client.post(path, headers=collector.admin_headers, **kwargs)
    return response.status, await response.json()


async def wait_for_poll(collector: Collector, source_id: str) -> dict[str, Any]:
    for _ in range(200):
        response = await collector.client.get(
            f"/api/v1/event-sources/{source_id}", headers=collector.admin_headers
        )
        body: dict[str, Any] = await response.json()
        if body["polls"] > 0:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"source {source_id} never polled")


async def test_a_registered_calendar_is_polled_and_counted(
    polling: Collector, server: FeedServer
) -> None:
    now = dt.datetime.now(dt.UTC)
    start = (now - dt.timedelta(days=7)).strftime("%Y%m%dT190000Z")
    server.feeds["cal"] = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:weekly@example\r\n"
        f"SUMMARY:Evening livestream\r\nDTSTART:{start}\r\nDURATION:PT2H\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    body = {
        "url": server.url("/feed/cal"),
        "cc": "kz",
        "keywords": {"livestream": "livestream"},
        "interval_seconds": 600,
    }
    status, made = await post(polling, "/api/v1/event-sources", json=body)
    assert status == 201, made
    assert (made["cc"], made["kind"], made["event_count"]) == ("KZ", "other", 0)
    polled = await wait_for_poll(polling, made["id"])
    assert polled["last_error"] is None, polled
    assert polled["event_count"] == 4
    status, listed = await polling.get_json("/api/v1/events", cc="KZ")
    assert {e["kind"] for e in listed["events"]} == {"livestream"}
    assert {e["series"] for e in listed["events"]} == {"weekly@example"}

    metrics = await (await polling.client.get("/metrics")).text()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name.startswith("censorwatch_event_source")
    }
    assert found[("censorwatch_event_source_events", (("source", made["id"]),))] == 4
    assert found[("censorwatch_event_source_failing", (("source", made["id"]),))] == 0
    assert found[("censorwatch_event_source_polls_total", (("outcome", "ok"),))] >= 1
    assert found[("censorwatch_event_sources", ())] == 1

    status, again = await post(polling, f"/api/v1/event-sources/{made['id']}/poll")
    assert status == 202, again
    response = await polling.client.delete(
        f"/api/v1/event-sources/{made['id']}", headers=polling.admin_headers
    )
    assert response.status == 204
    status, listed = await polling.get_json("/api/v1/events", cc="KZ")
    assert len(listed["events"]) == 4  # a removed source's events stay


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "http://127.0.0.1:9/cal.ics"}, "not a public address"),
        ({"url": "http://localhost:9/cal.ics"}, "not a public address"),
        ({"url": "http://[fe80::1]/cal.ics"}, "not a public address"),
        ({"url": "ftp://example.org/cal.ics"}, "http:// or https://"),
        ({"url": "http://a..b/cal.ics"}, "not a valid host name"),
        ({"url": "http://" + "a" * 70 + ".org/cal.ics"}, "not a valid host name"),
        ({"url": "http://[::1/cal.ics"}, "not a URL"),
        ({"url": "https://example.org/cal.ics", "cc": "Kazakhstan"}, "two-letter"),
        ({"url": "https://example.org/cal.ics", "kind": "party"}, "kind"),
        ({"url": "https://example.org/cal.ics", "keywords": {"x": "party"}}, "party"),
        ({"url": "https://example.org/cal.ics", "interval_seconds": 5}, "interval"),
        ({"url": "https://example.org/cal.ics", "format": "pdf"}, "format"),
        ({"url": "https://example.org/cal.ics", "colour": "red"}, "colour"),
    ],
)
async def test_bad_source_settings_are_refused_with_the_reason(
    sqlite_collector: Collector, body: dict[str, Any], says: str
) -> None:
    status, answer = await post(sqlite_collector, "/api/v1/event-sources", json=body)
    assert status == (400 if "colour" in body else 422), answer  # unknown key: malformed
    assert says in answer["error"]["message"], answer


async def test_sources_need_the_admin_token(sqlite_collector: Collector) -> None:
    for method, path in (
        ("GET", "/api/v1/event-sources"),
        ("POST", "/api/v1/event-sources"),
        ("GET", "/api/v1/event-sources/src-1"),
        ("DELETE", "/api/v1/event-sources/src-1"),
        ("POST", "/api/v1/event-sources/src-1/poll"),
    ):
        response = await sqlite_collector.client.request(
            method, path, json={"url": "https://example.org/x.ics"}
        )
        assert response.status == 401, (method, path, await response.text())
    response = await sqlite_collector.client.get(
        "/api/v1/event-sources/src-nope", headers=sqlite_collector.admin_headers
    )
    assert response.status == 404


async def test_import_takes_a_default_country_and_expands_recurrence(
    sqlite_collector: Collector,
) -> None:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=14)).strftime("%Y%m%dT190000Z")
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:w@example\r\nSUMMARY:Stream\r\n"
        f"DTSTART:{start}\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    status, body = await post(
        sqlite_collector,
        "/api/v1/events/import",
        data=text.encode(),
        params={"cc": "KZ", "kind": "livestream"},
    )
    assert status == 201, body
    assert body["imported"] == 3
    assert {(e["cc"], e["kind"], e["series"]) for e in body["events"]} == {
        ("KZ", "livestream", "w@example")
    }
    cancelled = text.replace("COUNT=3", "COUNT=3\r\nEXDATE:" + start)
    status, body = await post(
        sqlite_collector, "/api/v1/events/import", data=cancelled.encode(), params={"cc": "KZ"}
    )
    assert (status, body["imported"], body["removed"]) == (201, 2, 1), body
    without = await sqlite_collector.client.post(
        "/api/v1/events/import", data=text.encode(), params={"cc": "KZ"}
    )
    assert without.status == 401  # the token is checked before the body is read


async def test_import_of_deeply_nested_json_is_400(sqlite_collector: Collector) -> None:
    status, body = await post(
        sqlite_collector,
        "/api/v1/events/import",
        data=b"[" * 100_000 + b"]" * 100_000,
        params={"format": "json"},
    )
    assert status == 400, body
    assert "nested too deeply" in body["error"]["message"]


async def test_named_private_hosts_are_allowed_and_no_others(
    sqlite_config: Config, server: FeedServer
) -> None:
    config = dataclasses.replace(
        sqlite_config,
        source_poll_seconds=0.1,
        source_min_interval_seconds=1,
        source_private_hosts=("127.0.0.1",),
        alert_interval_seconds=0,
        delivery_interval_seconds=0,
    )
    server.feeds["ghost"] = (
        Path(__file__).parent.parent / "alerts" / "feeds" / "ghost.rss"
    ).read_text()
    collector = await start_collector(config)
    try:
        status, made = await post(
            collector, "/api/v1/event-sources", json={"url": server.url("/feed/ghost"), "cc": "KZ"}
        )
        assert status == 201, made
        polled = await wait_for_poll(collector, made["id"])
        assert (polled["last_error"], polled["event_count"]) == (None, 2), polled
        status, answer = await post(
            collector, "/api/v1/event-sources", json={"url": server.url("/feed/ghost", "localhost")}
        )
        assert status == 422, answer
        assert "not a public address" in answer["error"]["message"]
    finally:
        await collector.client.close()


def test_private_hosts_setting_from_the_environment() -> None:
    config = resolve(None, {"CENSORWATCH_SOURCE_PRIVATE_HOSTS": "Calendar.internal, 10.0.0.5"}, {})
    assert config.source_private_hosts == ("calendar.internal", "10.0.0.5")
    with pytest.raises(ConfigError, match="source_private_hosts"):
        resolve(None, {"CENSORWATCH_SOURCE_PRIVATE_HOSTS": "bad host/name"}, {})
