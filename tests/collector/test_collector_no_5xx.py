"""The requests that once answered 500: each is now a 4xx that names what was wrong.

Times whose offset carries them out of years 1-9999, Unicode digits in ``limit``, deeply
nested JSON sent to an admin route, and admin bodies sent without a token (refused before
the body is read).
"""

from __future__ import annotations

import pytest
from collector_harness import Collector

OUT_OF_RANGE = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00")
NESTED = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/api/v1/aggregation"])
@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_times_out_of_range_are_a_400_naming_the_parameter(
    sqlite_collector: Collector, path: str, name: str, value: str
) -> None:
    status, body = await sqlite_collector.get_json(path, **{name: value})
    assert status == 400, body
    assert body["error"]["message"].startswith(f"{name}:")


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/events"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_incident_and_event_times_out_of_range(
    sqlite_collector: Collector, path: str, value: str
) -> None:
    status, body = await sqlite_collector.get_json(path, since=value)
    assert status == 400, body
    assert body["error"]["message"].startswith("since:")


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/api/v1/incidents"])
@pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-1", " 5"])
async def test_limit_takes_ascii_digits_only(
    sqlite_collector: Collector, path: str, value: str
) -> None:
    status, body = await sqlite_collector.get_json(path, limit=value)
    assert status == 400, body
    assert body["error"]["message"].startswith("limit:")


async def test_deliveries_limit_with_a_unicode_digit(sqlite_collector: Collector) -> None:
    response = await sqlite_collector.client.get(
        "/api/v1/deliveries", params={"limit": "²"}, headers=sqlite_collector.admin_headers
    )
    assert response.status == 400
    assert (await response.json())["error"]["message"].startswith("limit:")


async def test_nested_feed_is_a_400_for_the_admin(sqlite_collector: Collector) -> None:
    response = await sqlite_collector.client.post(
        "/api/v1/events/import?format=json", data=NESTED, headers=sqlite_collector.admin_headers
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_feed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/events/import?format=json"),
        ("POST", "/api/v1/events"),
        ("PUT", "/api/v1/events/e1"),
        ("POST", "/api/v1/subscribers"),
        ("PATCH", "/api/v1/subscribers/s1"),
        ("PATCH", "/api/v1/probes/00000000-0000-0000-0000-000000000000"),
    ],
)
@pytest.mark.parametrize("body", [NESTED, b"{not json", b""])
async def test_admin_routes_authenticate_before_reading_the_body(
    sqlite_collector: Collector, method: str, path: str, body: bytes
) -> None:
    response = await sqlite_collector.client.request(method, path, data=body)
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_event_whose_start_leaves_the_calendar(sqlite_collector: Collector) -> None:
    event = {"kind": "protest", "title": "t", "cc": "KZ", "start": OUT_OF_RANGE[0]}
    response = await sqlite_collector.client.post(
        "/api/v1/events", json=event, headers=sqlite_collector.admin_headers
    )
    assert response.status == 400
    assert "start:" in (await response.json())["error"]["message"]


async def test_impossible_combinations_are_a_422(sqlite_collector: Collector) -> None:
    status, body = await sqlite_collector.get_json(
        "/api/v1/aggregation", axis_x="time", axis_y="time"
    )
    assert (status, body["error"]["code"]) == (422, "unprocessable")
    status, body = await sqlite_collector.get_json(
        "/api/v1/measurements", since="2025-02-01", until="2025-01-01"
    )
    assert status == 422


async def test_empty_filter_values_mean_no_filter(sqlite_collector: Collector) -> None:
    status, body = await sqlite_collector.get_json(
        "/api/v1/measurements", service="", cc="", asn="", since="", until=""
    )
    assert status == 200, body


@pytest.mark.parametrize("header", [None, "Bearer cwe_unknown"])
async def test_registration_checks_the_enrolment_token_before_the_body(
    sqlite_collector: Collector, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await sqlite_collector.client.post("/api/v1/probes", data=NESTED, headers=headers)
    assert response.status == 401, await response.text()
