"""Metrics, schema and service endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from collector_harness import Collector, start_collector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from collector.api import metrics
from collector.auth import utc_now
from collector.config import Config
from collector.store import schema
from lab.harness.samples import measurement


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
async def slow_refresh(config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(dataclasses.replace(config, metrics_refresh_seconds=3600))
    try:
        yield running
    finally:
        await running.client.close()


async def refresh(collector: Collector) -> None:
    c = collector.state.config
    snapshot = await metrics.read_snapshot(
        collector.state.db, c.active_probe_seconds, c.blocking_window_hours, utc_now()
    )
    collector.state.snapshot.replace(snapshot)


async def test_metrics_from_cached_state_with_bounded_asns(slow_refresh: Collector) -> None:
    collector = slow_refresh
    for _ in range(2):
        _, token = await collector.register()
        auth = {"Authorization": f"Bearer {token}"}
        assert (await collector.client.post("/api/v1/probes/check-in", headers=auth)).status == 200
    batch = [
        measurement(verdict="blocked", asn=64500, cc="KZ"),
        measurement(verdict="blocked", asn=64500, cc="KZ"),
        measurement(verdict="ok", asn=64500, cc="KZ"),
        measurement(verdict="ok", asn=12345, cc="KZ"),
        measurement(verdict="ok", asn=23456, cc="KZ"),
    ]
    _status, _ = await collector.ingest(token, batch)
    await refresh(collector)
    queries: list[str] = []
    engine = collector.state.db.engine.sync_engine
    listener = lambda *args: queries.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = await collector.client.get("/metrics")
        text = await response.text()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert queries == []
    found = samples(text)
    labels = (("asn", "64500"), ("country", "KZ"), ("service", "telegram"))
    assert found[("censorwatch_measurements_total", (*labels, ("verdict", "blocked")))] == 2
    other = (("asn", "other"), ("country", "KZ"), ("service", "telegram"), ("verdict", "ok"))
    assert found[("censorwatch_measurements_total", other)] == 2
    assert found[("censorwatch_blocking", labels)] == 1
    assert found[("censorwatch_probes_active", (("asn", "64500"), ("country", "KZ")))] == 2
    assert found[("censorwatch_ingest_batch_size_items_count", ())] == 1
    assert found[("censorwatch_ingest_items_total", (("result", "accepted"),))] == 5
    assert not any(
        name.startswith("censorwatch")
        and "asn" in dict(lbl)
        and dict(lbl)["asn"] in ("12345", "23456")
        for name, lbl in found
    )


async def test_background_refresh_picks_up_new_data(collector: Collector) -> None:
    _, token = await collector.register()
    await collector.ingest(token, [measurement()])
    for _ in range(50):
        text = await (await collector.client.get("/metrics")).text()
        if "censorwatch_measurements_total{" in text:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("snapshot never refreshed")


def test_blocking_value() -> None:
    assert metrics.blocking_value({"blocked": 2, "ok": 2}) == 1
    assert metrics.blocking_value({"blocked": 1, "ok": 2}) == 0
    assert metrics.blocking_value({"offline": 9}) == 0


async def test_migrations_match_the_schema(collector: Collector) -> None:
    def diff(connection: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), schema.metadata))

    async with collector.state.db.reading() as connection:
        assert await connection.run_sync(diff) == []


async def test_health_and_readiness(sqlite_collector: Collector) -> None:
    assert (await sqlite_collector.client.get("/healthz")).status == 200
    assert (await sqlite_collector.client.get("/readyz")).status == 200
    sqlite_collector.state.shutting_down = True
    assert (await sqlite_collector.client.get("/readyz")).status == 503


async def test_openapi_documents_every_route(sqlite_collector: Collector) -> None:
    _status, document = await sqlite_collector.get_json("/api/v1/openapi.json")
    assert document["openapi"].startswith("3.")
    app = sqlite_collector.client.app
    assert app is not None
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert routes == documented
    assert "Measurement" in document["components"]["schemas"]


async def test_first_start_writes_admin_token_once(sqlite_config: Config) -> None:
    first = await start_collector(sqlite_config)
    token = sqlite_config.admin_token_path.read_text()
    await first.client.close()
    second = await start_collector(sqlite_config)
    await second.client.close()
    assert sqlite_config.admin_token_path.read_text() == token
    assert token.startswith("cwa_")
    assert sqlite_config.admin_token_path.stat().st_mode & 0o777 == 0o600


def test_snapshot_times_are_recent() -> None:
    snapshot = metrics.build_snapshot([], [], [], dt.datetime.now(dt.UTC).timestamp())
    assert [f.name for f in snapshot.families][:3] == [
        "censorwatch_measurements", "censorwatch_blocking", "censorwatch_probes_active",
    ]  # fmt: skip


def _event_gauge(name: str) -> bool:
    """The announced-event gauges (the event-source poller's series are apart)."""
    return name.startswith("censorwatch_event") and not name.startswith("censorwatch_event_source")


async def test_event_gauges_appear_after_an_event_is_added(slow_refresh: Collector) -> None:
    collector = slow_refresh
    now = utc_now().replace(microsecond=0)
    announced = [
        # Active: no end, started 1 h ago (counts for 2 h); and one with an explicit end.
        {"kind": "livestream", "cc": "KZ", "start": now - dt.timedelta(hours=1)},
        {"kind": "livestream", "cc": "KZ", "start": now - dt.timedelta(minutes=5),
         "end": now + dt.timedelta(hours=1)},
        # Over: no end, started 3 h ago; counts for the latest start only if none is later.
        {"kind": "protest", "cc": "BY", "start": now - dt.timedelta(hours=3)},
        # Not started yet: in neither gauge.
        {"kind": "election", "cc": "KZ", "start": now + dt.timedelta(days=1)},
    ]  # fmt: skip
    await refresh(collector)
    before = samples(await (await collector.client.get("/metrics")).text())
    assert not [k for k in before if _event_gauge(k[0])]
    for i, announcement in enumerate(announced):
        body = {
            k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in announcement.items()
        }
        body["title"] = f"secret title {i}"
        response = await collector.client.post(
            "/api/v1/events", json=body, headers=collector.admin_headers
        )
        assert response.status == 201, await response.text()
    await refresh(collector)
    text = await (await collector.client.get("/metrics")).text()
    assert "secret title" not in text
    found = {k: v for k, v in samples(text).items() if _event_gauge(k[0])}
    kz, by = (("country", "KZ"), ("kind", "livestream")), (("country", "BY"), ("kind", "protest"))
    started = "censorwatch_event_start_timestamp_seconds"
    assert found == {
        ("censorwatch_events_active", kz): 2,
        ("censorwatch_events_active", by): 0,
        (started, kz): (now - dt.timedelta(minutes=5)).timestamp(),
        (started, by): (now - dt.timedelta(hours=3)).timestamp(),
    }
