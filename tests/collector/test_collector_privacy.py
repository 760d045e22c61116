"""The public measurement listing shows daily pseudonyms and hour-grained times; a
researcher or admin token shows the exact probe id and times."""

from __future__ import annotations

import base64
import datetime as dt

from collector_harness import Collector
from sqlalchemy import update

from collector.store import schema
from lab.harness.samples import measurement

DAY = dt.datetime.now(dt.UTC).replace(hour=10, minute=17, second=42, microsecond=0)
START = DAY - dt.timedelta(days=2)


async def _fill(collector: Collector) -> str:
    probe_id, token = await collector.register()
    items = [
        measurement(probe_id=probe_id, start=START),
        measurement(probe_id=probe_id, start=START + dt.timedelta(minutes=20)),
        measurement(probe_id=probe_id, start=START + dt.timedelta(days=1)),
    ]
    status, body = await collector.ingest(token, items)
    assert (status, body["accepted"]) == (200, 3), body
    return probe_id


async def _researcher(collector: Collector, **options: object) -> dict[str, str]:
    response = await collector.client.post(
        "/api/v1/researcher-tokens", json=options, headers=collector.admin_headers
    )
    assert response.status == 201, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def test_public_listing_hides_the_probe_and_the_minute(sqlite_collector: Collector) -> None:
    probe_id = await _fill(sqlite_collector)
    status, page = await sqlite_collector.get_json("/api/v1/measurements")
    assert status == 200
    names = [r["collector"]["probe_id"] for r in page["results"]]
    assert probe_id not in str(page)
    assert names[0] == names[1] != names[2]  # the same all day, another the next day
    starts = [r["measurement"]["start_time"] for r in page["results"]]
    assert starts[0] == starts[1] == START.replace(minute=0, second=0).isoformat()[:19] + "Z"
    for row in page["results"]:
        assert row["measurement"]["probe"]["id"] == row["collector"]["probe_id"]
        assert row["collector"]["received_at"].endswith(":00:00Z")


async def test_researcher_and_admin_tokens_see_exact_data(sqlite_collector: Collector) -> None:
    probe_id = await _fill(sqlite_collector)
    for headers in (await _researcher(sqlite_collector), sqlite_collector.admin_headers):
        status, page = await sqlite_collector.get_json("/api/v1/measurements", headers)
        assert status == 200, page
        assert {r["collector"]["probe_id"] for r in page["results"]} == {probe_id}
        assert page["results"][1]["measurement"]["start_time"].startswith(
            (START + dt.timedelta(minutes=20)).isoformat()[:19]
        )


async def test_a_wrong_or_expired_token_is_refused_not_downgraded(
    sqlite_collector: Collector,
) -> None:
    wrong = {"Authorization": "Bearer cwr_not-a-token"}
    status, _ = await sqlite_collector.get_json("/api/v1/measurements", wrong)
    assert status == 401
    headers = await _researcher(sqlite_collector, label="short", expires_in_seconds=60)
    async with sqlite_collector.state.db.writing() as connection:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await connection.execute(update(schema.researcher_tokens).values(expires_at=past))
    status, body = await sqlite_collector.get_json("/api/v1/measurements", headers)
    assert status == 401
    assert "expired" in body["error"]["message"]


async def test_public_time_filters_work_to_the_hour(sqlite_collector: Collector) -> None:
    await _fill(sqlite_collector)
    just_after = (START + dt.timedelta(seconds=1)).isoformat()
    status, page = await sqlite_collector.get_json("/api/v1/measurements", since=just_after)
    assert status == 200
    assert len(page["results"]) == 3  # bisecting `since` cannot find the exact minute
    status, exact = await sqlite_collector.get_json(
        "/api/v1/measurements", sqlite_collector.admin_headers, since=just_after
    )
    assert len(exact["results"]) == 2


async def test_the_public_cursor_carries_no_time(sqlite_collector: Collector) -> None:
    await _fill(sqlite_collector)
    _, page = await sqlite_collector.get_json("/api/v1/measurements", limit="1")
    cursor = page["next_cursor"]
    assert len(base64.urlsafe_b64decode(cursor + "==")) == 16  # a measurement id, nothing else
    seen = [page["results"][0]["measurement"]["id"]]
    while cursor:
        _, page = await sqlite_collector.get_json("/api/v1/measurements", limit="1", cursor=cursor)
        seen += [r["measurement"]["id"] for r in page["results"]]
        cursor = page["next_cursor"]
    assert len(set(seen)) == 3


async def test_researcher_tokens_are_revocable(sqlite_collector: Collector) -> None:
    headers = await _researcher(sqlite_collector, label="alice")
    response = await sqlite_collector.client.delete(
        "/api/v1/researcher-tokens/alice", headers=sqlite_collector.admin_headers
    )
    assert response.status == 204
    status, _ = await sqlite_collector.get_json("/api/v1/measurements", headers)
    assert status == 401
