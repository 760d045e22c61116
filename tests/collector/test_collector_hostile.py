"""Hostile input: every malformed, oversized or wrongly-typed request gets a 4xx, never a 5xx."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from collector_harness import Collector, ServerProcess, http
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api.errors import APIError
from collector.ingest.payload import Limits, gunzip, split_batch
from collector.ingest.validation import Invalid, TimeWindow, Valid, check_item
from lab.harness.samples import measurement
from probe import model

LIMITS = Limits(max_body_bytes=1 << 20, max_decompressed_bytes=1 << 20, max_batch_items=100)
WINDOW = TimeWindow(dt.timedelta(hours=1), dt.timedelta(days=30))
NOW = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


def gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    chunks = [compressor.compress(zeros) for _ in range(size >> 20)]
    return b"".join([*chunks, compressor.flush()])


def status_of(call: Callable[[], object]) -> int:
    with pytest.raises(APIError) as caught:
        call()
    return caught.value.status


# Pure checks -------------------------------------------------------------------------


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KiB
    assert len(bomb) < 1 << 20
    with pytest.raises(APIError) as caught:
        gunzip(bomb, 16 << 20)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [
        (b"\x1f\x8b\x08\x00garbage", "gzip", 400),
        (gzip.compress(b"[1,2,3]")[:-6], "gzip", 400),
        (b"[1]", "br", 415),
        (b"", None, 400),
        (b"   \n  ", None, 400),
        (b"[" * 100_000 + b"]" * 100_000, None, 400),
        (b"[1,", None, 400),
        (b'{"not": "an array"} trailing', "identity", 200),
        (b"[" + b"{}," * 101 + b"{}]", None, 413),
        (b"{}\n" * 101, None, 413),
        (b"x" * (2 << 20), None, 413),
    ],
)
def test_split_batch_refuses_bad_bodies(body: bytes, encoding: str | None, status: int) -> None:
    if status == 200:
        assert split_batch(body, "application/json", encoding, LIMITS)
        return
    assert status_of(lambda: split_batch(body, "application/json", encoding, LIMITS)) == status


def test_unsupported_content_type() -> None:
    assert status_of(lambda: split_batch(b"[]", "text/plain", None, LIMITS)) == 415


def test_multi_member_gzip_is_read_whole() -> None:
    assert gunzip(gzip.compress(b"[1,") + gzip.compress(b"2]"), 100) == b"[1,2]"


@given(st.binary(max_size=300), st.sampled_from([None, "gzip"]))
def test_split_batch_fails_only_with_client_errors(body: bytes, encoding: str | None) -> None:
    status = 200
    try:
        split_batch(body, "", encoding, LIMITS)
    except APIError as exc:
        status = exc.status
    assert 200 <= status < 500


@given(json_values)
def test_any_json_value_is_a_clean_rejection(value: object) -> None:
    result = check_item(0, msgspec.json.encode(value), "p", NOW, WINDOW)
    assert isinstance(result, Invalid)


_valid_builtins = model.to_builtins(measurement(start=NOW))


@st.composite
def mutated_measurements(draw: st.DrawFn) -> dict[str, object]:
    """A valid measurement with one field, at any depth, replaced by arbitrary JSON."""
    document = json.loads(json.dumps(_valid_builtins))
    node = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(json_values)
        break
    return document  # type: ignore[no-any-return]


@given(mutated_measurements())
@settings(max_examples=300)
def test_mutated_measurements_never_raise(document: dict[str, object]) -> None:
    result = check_item(0, msgspec.json.encode(document), "p", NOW, WINDOW)
    assert isinstance(result, Valid | Invalid)
    if isinstance(result, Valid):
        assert model.decode(result.body) == result.measurement


def test_deeply_nested_item_is_rejected_alone() -> None:
    raw = b'{"id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    result = check_item(0, raw, "p", NOW, WINDOW)
    assert isinstance(result, Invalid)


# Through HTTP, in process ------------------------------------------------------------


async def test_oversized_body_is_413(sqlite_collector: Collector) -> None:
    _, token = await sqlite_collector.register()
    limit = sqlite_collector.state.config.max_body_bytes
    status, body = await sqlite_collector.ingest(token, b"[" + b" " * limit + b"]")
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


async def test_gzip_bomb_over_http_is_413(sqlite_collector: Collector) -> None:
    _, token = await sqlite_collector.register()
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    response = await sqlite_collector.client.post(
        "/api/v1/measurements", data=io.BytesIO(gzip_bomb(256 << 20)), headers=headers
    )
    assert response.status == 413


async def test_rate_limit_answers_429_with_retry_after(sqlite_collector: Collector) -> None:
    from collector.ingest.ratelimit import RateLimiter

    sqlite_collector.state.limiter = RateLimiter(rate=1, burst=2)
    _, token = await sqlite_collector.register()
    first, _ = await sqlite_collector.ingest(token, [measurement(), measurement()])
    second, body = await sqlite_collector.ingest(token, [measurement()])
    assert (first, second) == (200, 429)
    assert body["error"]["retry_after"] >= 1


# Through HTTP, against a real server process ------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    workdir: Path = tmp_path_factory.mktemp("hostile")
    process = ServerProcess(
        workdir, f"sqlite:///{workdir / 'c.db'}", env={"CENSORWATCH_MAX_BATCH_ITEMS": "50"}
    )
    try:
        process.wait_ready()
        yield process, process.register()
    finally:
        process.stop()


bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(msgspec.json.encode),
    st.lists(mutated_measurements(), max_size=3).map(msgspec.json.encode),
    st.lists(mutated_measurements().map(msgspec.json.encode), max_size=3).map(b"\n".join),
)
content_types = st.sampled_from(
    ["application/json", "application/x-ndjson", "", "text/html", "application/json; charset=utf-8"]
)


@given(body=bodies, content_type=content_types, gzipped=st.booleans())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_bodies_never_get_a_5xx(
    server: tuple[ServerProcess, str], body: bytes, content_type: str, gzipped: bool
) -> None:
    process, token = server
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    status, answer = http("POST", process.url + "/api/v1/measurements", body, headers)
    assert status < 500, answer
    assert json.loads(answer)


@given(
    path=st.sampled_from(["/api/v1/measurements", "/api/v1/aggregation", "/api/v1/probes"]),
    params=st.dictionaries(
        st.sampled_from(
            [
                "service",
                "cc",
                "asn",
                "verdict",
                "since",
                "until",
                "limit",
                "cursor",
                "axis_x",
                "axis_y",
                "grain",
                "format",
                "method",
                "x",
            ]
        ),
        st.text(max_size=30),
        max_size=4,
    ),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_hostile_queries_never_get_a_5xx(
    server: tuple[ServerProcess, str], path: str, params: dict[str, str]
) -> None:
    import urllib.parse

    process, _ = server
    status, answer = http("GET", process.url + path + "?" + urllib.parse.urlencode(params))
    assert status < 500, answer
