"""Denial of service with one probe token: every cost of a batch is bounded before it is paid."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import io
import tracemalloc

import pytest
from collector_harness import Collector

from collector.api.errors import APIError
from collector.ingest.measurements import ContextIndex
from collector.ingest.payload import MAX_GZIP_MEMBERS, Limits, gunzip, split_batch
from collector.ingest.ratelimit import RateLimiter
from collector.store.rollups import ContextRow
from lab.harness.samples import measurement

LIMITS = Limits(16 << 20, 16 << 20, 5000)


def test_many_gzip_members_are_refused() -> None:
    body = gzip.compress(b"") * 100_000  # 2 MB that once cost seconds of CPU per request
    with pytest.raises(APIError) as caught:
        gunzip(body, 16 << 20)
    assert caught.value.status == 413
    assert "gzip members" in caught.value.message


def test_members_up_to_the_bound_are_read_whole() -> None:
    parts = [f"[{i}]".encode() for i in range(MAX_GZIP_MEMBERS)]
    body = b"".join(gzip.compress(p) for p in parts)
    assert gunzip(body, 1 << 20) == b"".join(parts)


def test_a_member_split_across_input_slices_inflates_exactly() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB that compresses poorly: several input slices
    body = gzip.compress(data) + gzip.compress(b"tail")
    assert gunzip(body, 2 << 20) == data + b"tail"


def _peak_bytes(body: bytes) -> int:
    assert len(body) <= LIMITS.max_decompressed_bytes  # refused for its items, not its size
    tracemalloc.start()
    try:
        with pytest.raises(APIError) as caught:
            split_batch(body, "application/json", None, LIMITS)
        assert caught.value.message == "number of items in the batch exceeds the limit"
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_array_items_are_bounded_while_parsing() -> None:
    body = b"[" + b"0," * ((8 << 20) - 2) + b"0]"  # just under 16 MiB: 8 million items
    assert _peak_bytes(body) < 8 << 20  # a list of 8 million items would need hundreds of MiB


def test_blank_ndjson_lines_are_bounded() -> None:
    body = b"\n" * (16 << 20)
    with pytest.raises(APIError) as caught:
        split_batch(body, "application/x-ndjson", None, LIMITS)
    assert caught.value.status == 413


def test_context_index_reads_only_the_hours_it_needs() -> None:
    rows = [ContextRow("telegram", h, 9198, True, "ok", 1) for h in range(10_000)]
    index = ContextIndex(rows)
    [vantage] = index.vantages("telegram", 5000)
    assert (vantage.ok, vantage.failing) == (3, 0)  # hours 4999, 5000 and 5001
    assert index.vantages("whatsapp", 5000) == ()


async def test_a_batch_spanning_the_calendar_is_stored_without_context(
    sqlite_collector: Collector,
) -> None:
    _, token = await sqlite_collector.register()
    first = dt.datetime(1, 1, 1, 12, tzinfo=dt.UTC)
    last = dt.datetime(9999, 12, 31, 12, tzinfo=dt.UTC)
    items = [measurement(start=first + dt.timedelta(hours=i)) for i in range(500)]
    items += [measurement(start=last - dt.timedelta(hours=i)) for i in range(500)]
    items.append(measurement())
    status, body = await sqlite_collector.ingest(token, items)
    assert (status, body["accepted"]) == (200, len(items)), body
    assert {tuple(r["flags"]) for r in body["results"]} == {("past",), ("future",), ()}


async def test_byte_budget_beside_the_item_rate(sqlite_collector: Collector) -> None:
    sqlite_collector.state.byte_limiter = RateLimiter(rate=1, burst=4096)
    _, token = await sqlite_collector.register()
    first, _ = await sqlite_collector.ingest(token, [measurement() for _ in range(3)])
    second, body = await sqlite_collector.ingest(token, [measurement()])
    assert (first, second) == (200, 429)
    assert "bytes" in body["error"]["message"]
    assert body["error"]["retry_after"] >= 1


async def test_gzip_member_bomb_over_http(sqlite_collector: Collector) -> None:
    _, token = await sqlite_collector.register()
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    response = await sqlite_collector.client.post(
        "/api/v1/measurements", data=io.BytesIO(gzip.compress(b"") * 100_000), headers=headers
    )
    assert response.status == 413


async def test_invented_services_are_stored_flagged_and_never_rolled_up(
    collector: Collector,
) -> None:
    _, token = await collector.register()
    invented = [measurement(service=f"made-up-{i}") for i in range(50)]
    status, body = await collector.ingest(token, [*invented, measurement(service="telegram")])
    assert (status, body["accepted"]) == (200, 51), body
    assert [r["flags"] for r in body["results"]] == [["unknown_service"]] * 50 + [[]]
    _, agg = await collector.get_json("/api/v1/aggregation", axis_x="service")
    assert [row["service"] for row in agg["result"]] == ["telegram"]
    status, page = await collector.get_json(
        "/api/v1/measurements", collector.admin_headers, service="made-up-7"
    )
    assert [r["collector"]["flags"] for r in page["results"]] == [["unknown_service"]]
    await asyncio.sleep(0.5)  # the metrics snapshot refreshes every 0.1 s in these tests
    response = await collector.client.get("/metrics")
    text = await response.text()
    assert 'service="telegram"' in text
    assert "made-up" not in text
