"""Query and aggregation API on both databases: filters, pagination, axes, CSV."""

from __future__ import annotations

import datetime as dt

import pytest
from collector_harness import Collector

from lab.harness.samples import measurement
from probe import model

T0 = dt.datetime.now(dt.UTC).replace(minute=10, second=0, microsecond=0) - dt.timedelta(hours=30)


async def fill(collector: Collector) -> list[model.Measurement]:
    _, token = await collector.register()
    items = [
        measurement(service="telegram", verdict="blocked", cc="KZ", asn=9198, start=T0),
        measurement(service="telegram", verdict="ok", cc="KZ", asn=9198, start=T0 + dt.timedelta(hours=1)),
        measurement(service="telegram", verdict="anomaly", cc="KZ", asn=21299, start=T0 + dt.timedelta(hours=1)),
        measurement(service="whatsapp", verdict="ok", cc="KZ", asn=9198, start=T0 + dt.timedelta(hours=2)),
        measurement(service="whatsapp", verdict="ok", cc="RU", asn=12389, start=T0 + dt.timedelta(hours=2)),
        measurement(service="signal", verdict="blocked", methods=["dns.nxdomain", "tcp.reset"], cc="RU", asn=12389, start=T0 + dt.timedelta(hours=26)),
    ]  # fmt: skip
    items = await collector.attested(token, items)
    _status, body = await collector.ingest(token, items)
    assert body["accepted"] == len(items), body
    return items


async def test_filters(collector: Collector) -> None:
    items = await fill(collector)

    async def ids(**params: str) -> set[str]:
        status, body = await collector.get_json(
            "/api/v1/measurements", collector.admin_headers, **params
        )
        assert status == 200, body
        return {r["measurement"]["id"] for r in body["results"]}

    assert await ids(service="telegram") == {str(m.id) for m in items[:3]}
    assert await ids(cc="ru") == {str(items[4].id), str(items[5].id)}
    assert await ids(asn="AS21299") == {str(items[2].id)}
    assert await ids(verdict="blocked") == {str(items[0].id), str(items[5].id)}
    since = (T0 + dt.timedelta(hours=1)).isoformat()
    until = (T0 + dt.timedelta(hours=2)).isoformat()
    assert await ids(since=since, until=until) == {str(items[1].id), str(items[2].id)}


async def test_cursor_pagination_visits_each_row_once(collector: Collector) -> None:
    items = await fill(collector)
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        _status, body = await collector.get_json("/api/v1/measurements", **params)
        seen += [r["measurement"]["id"] for r in body["results"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    ordered = sorted(items, key=lambda m: (m.start_time, m.id))
    assert seen == [str(m.id) for m in ordered]


async def test_single_measurement_and_404(collector: Collector) -> None:
    items = await fill(collector)
    path = f"/api/v1/measurements/{items[0].id}"
    status, body = await collector.get_json(path, collector.admin_headers)
    assert model.from_builtins(body["measurement"]) == items[0]
    status, _ = await collector.get_json(
        "/api/v1/measurements/00000000-0000-0000-0000-000000000000"
    )
    assert status == 404


async def test_aggregation_country_by_service(collector: Collector) -> None:
    await fill(collector)
    status, body = await collector.get_json("/api/v1/aggregation", axis_x="cc", axis_y="service")
    assert status == 200
    rows = {(r["cc"], r["service"]): r for r in body["result"]}
    assert rows[("KZ", "telegram")]["measurement_count"] == 3
    assert rows[("KZ", "telegram")]["blocked_count"] == 1
    assert rows[("KZ", "telegram")]["anomaly_count"] == 1
    assert rows[("RU", "signal")]["blocked_count"] == 1


async def test_per_asn_and_per_country_rollups_agree(collector: Collector) -> None:
    await fill(collector)
    _, by_asn = await collector.get_json("/api/v1/aggregation", axis_x="asn", axis_y="cc")
    _, by_cc = await collector.get_json("/api/v1/aggregation", axis_x="cc")
    totals: dict[str, int] = {}
    for row in by_asn["result"]:
        totals[row["cc"]] = totals.get(row["cc"], 0) + row["measurement_count"]
    assert (
        totals == {r["cc"]: r["measurement_count"] for r in by_cc["result"]} == {"KZ": 4, "RU": 2}
    )


async def test_aggregation_over_time(collector: Collector) -> None:
    await fill(collector)
    status, body = await collector.get_json("/api/v1/aggregation", axis_x="time", cc="KZ")
    assert status == 200
    hours = [(r["time"], r["measurement_count"]) for r in body["result"]]
    start = T0.replace(minute=0)
    assert hours == [
        (start.strftime("%Y-%m-%dT%H:00:00Z"), 1),
        ((start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"), 2),
        ((start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:00:00Z"), 1),
    ]
    _status, body = await collector.get_json("/api/v1/aggregation", axis_x="time", grain="day")
    assert sum(r["measurement_count"] for r in body["result"]) == 6
    assert all(r["time"].endswith("T00:00:00Z") for r in body["result"])


async def test_aggregation_by_method(collector: Collector) -> None:
    await fill(collector)
    status, body = await collector.get_json("/api/v1/aggregation", axis_x="method")
    assert status == 200
    counts = {r["method"]: r["measurement_count"] for r in body["result"]}
    assert counts == {"tls.reset": 1, "tls.timeout": 1, "dns.nxdomain": 1, "tcp.reset": 1}
    _status, body = await collector.get_json("/api/v1/aggregation", method="tcp.reset")
    assert body["result"][0]["measurement_count"] == 1


async def test_aggregation_csv(collector: Collector) -> None:
    await fill(collector)
    response = await collector.client.get(
        "/api/v1/aggregation", params={"axis_x": "verdict", "format": "csv"}
    )
    assert response.content_type == "text/csv"
    lines = (await response.text()).splitlines()
    assert (
        lines[0]
        == "verdict,measurement_count,ok_count,blocked_count,anomaly_count,down_count,offline_count"
    )
    assert "ok,3,3,0,0,0,0" in lines


@pytest.mark.parametrize(
    "params",
    [
        {"axis_x": "colour"},
        {"axis_x": "cc", "axis_y": "cc"},
        {"grain": "minute"},
        {"since": "yesterday"},
        {"since": "2025-01-02", "until": "2025-01-01"},
        {"countr": "KZ"},
        {"asn": "AS99999999999"},
        {"verdict": "censored"},
        {"format": "xml"},
    ],
)
async def test_bad_aggregation_queries(sqlite_collector: Collector, params: dict[str, str]) -> None:
    status, body = await sqlite_collector.get_json("/api/v1/aggregation", **params)
    impossible = ("axis_y" in params and params["axis_y"] == params["axis_x"]) or "until" in params
    assert status == (422 if impossible else 400)
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "100000"}, {"cursor": "!!!"}, {"cursor": "WzEsMl0"}]
)
async def test_bad_measurement_queries(sqlite_collector: Collector, params: dict[str, str]) -> None:
    status, _ = await sqlite_collector.get_json("/api/v1/measurements", **params)
    assert status == 400
