"""Watch windows: derived from announced events and opened by hand, handed to probes of the
country at check-in, on both databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from collector_harness import Collector


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _check_in(collector: Collector, token: str) -> dict[str, Any]:
    response = await collector.client.post(
        "/api/v1/probes/check-in", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def _event(collector: Collector, cc: str, start: dt.datetime, tags: list[str]) -> None:
    event = {"kind": "livestream", "title": "Opposition livestream", "cc": cc,
             "start": _iso(start), "duration_seconds": 3600, "tags": tags}  # fmt: skip
    response = await collector.client.post(
        "/api/v1/events", json=event, headers=collector.admin_headers
    )
    assert response.status == 201, await response.text()


async def test_an_announced_event_reaches_the_probes_of_its_country(collector: Collector) -> None:
    _, token = await collector.register()  # the harness's address table puts it in KZ
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await _event(collector, "KZ", now + dt.timedelta(hours=2), ["service:youtube"])
    await _event(collector, "RU", now + dt.timedelta(hours=2), [])
    await _event(collector, "KZ", now + dt.timedelta(days=5), [])  # beyond the horizon
    body = await _check_in(collector, token)
    (window,) = body["watch"]["windows"]
    assert window["start"] == (now + dt.timedelta(hours=2) - dt.timedelta(minutes=15)).isoformat()
    assert window["end"] == (now + dt.timedelta(hours=3, minutes=30)).isoformat()
    assert "youtube" in window["services"]
    assert "telegram" in window["services"]  # messengers always
    assert window["intervals"] == {"messenger": 30.0, "*": 60.0}
    assert 0 < body["check_in_seconds"] <= 900


async def test_a_window_opened_by_hand_is_listed_and_handed_out(collector: Collector) -> None:
    _, token = await collector.register()
    now = dt.datetime.now(dt.UTC)
    wanted = {"cc": "KZ", "title": "Election night", "start": _iso(now - dt.timedelta(minutes=1)),
              "end": _iso(now + dt.timedelta(hours=8))}  # fmt: skip
    response = await collector.client.post("/api/v1/watch-windows", json=wanted)
    assert response.status == 401  # admin only
    response = await collector.client.post(
        "/api/v1/watch-windows", json=wanted, headers=collector.admin_headers
    )
    assert response.status == 201, await response.text()
    made = await response.json()
    assert made["active"] is True
    assert made["services"] is None
    status, listed = await collector.get_json("/api/v1/watch-windows", active="true")
    assert status == 200
    assert [w["id"] for w in listed["windows"]] == [made["id"]]
    body = await _check_in(collector, token)
    assert [w["title"] for w in body["watch"]["windows"]] == ["Election night"]
    gone = await collector.client.delete(
        f"/api/v1/watch-windows/{made['id']}", headers=collector.admin_headers
    )
    assert gone.status == 204
    assert (await _check_in(collector, token))["watch"]["windows"] == []


async def test_bad_windows_are_refused_with_a_reason(collector: Collector) -> None:
    now = dt.datetime.now(dt.UTC)
    cases = [
        {"cc": "KZ", "title": "x", "start": _iso(now), "end": _iso(now - dt.timedelta(hours=1))},
        {"cc": "KZ", "title": "x", "start": _iso(now), "end": _iso(now + dt.timedelta(days=30))},
        {"cc": "kz", "title": "x", "start": _iso(now), "end": _iso(now + dt.timedelta(hours=1))},
        {"cc": "KZ", "title": "x", "start": "soon", "end": _iso(now)},
    ]
    for case in cases:
        response = await collector.client.post(
            "/api/v1/watch-windows", json=case, headers=collector.admin_headers
        )
        assert response.status in (400, 422), (case, response.status)
    status, _ = await collector.get_json("/api/v1/watch-windows", cc="KZZ")
    assert status == 400
