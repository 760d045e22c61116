"""Forgeries a censor can try with probes of its own: none opens an incident or sends a
webhook, and each forged row is stored with a flag anyone querying it can see.

Every test runs a real collector with its detection and delivery loops, a subscriber who
even opted in to unconfirmed incidents, and waits until the detector's cursor has passed
every stored row before it looks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from alert_receiver import Receiver
from alert_scenarios import add_subscriber, fast
from collector_harness import Collector, start_collector
from sqlalchemy import func, select

from collector.config import Config
from collector.enrolment import attestation
from collector.store import schema
from lab.harness.samples import measurement


@pytest.fixture
async def alerting(config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(fast(config))
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def newsroom(alerting: Collector) -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    r.secret = (await add_subscriber(alerting, r.url, unconfirmed=True))["secret"]
    try:
        yield r
    finally:
        await r.stop()


async def judged(collector: Collector) -> None:
    """Until the detector has read every stored row (and a delivery round has passed)."""
    m, d = schema.measurements, schema.detector_state
    for _ in range(300):
        async with collector.state.db.reading() as connection:
            last = await connection.scalar(select(func.max(m.c.seq)))
            cursor = await connection.scalar(select(d.c.cursor_seq))
        if last is not None and cursor is not None and cursor >= last:
            await asyncio.sleep(0.5)
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"detector cursor {cursor} never reached {last}")


async def nothing_happened(collector: Collector, newsroom: Receiver) -> None:
    await judged(collector)
    _, listing = await collector.get_json("/api/v1/incidents")
    assert listing["incidents"] == []
    async with collector.state.db.reading() as connection:
        queued = await connection.scalar(select(func.count()).select_from(schema.outbox))
    assert queued == 0
    assert newsroom.received == []


async def stored_flags(collector: Collector, **filters: Any) -> list[list[str]]:
    _, body = await collector.get_json("/api/v1/measurements", **filters)
    return [item["collector"]["flags"] for item in body["results"]]


async def honest_probes(collector: Collector, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        probe_id, token = await collector.register()
        await collector.vet(probe_id)
        tokens.append(token)
    return tokens


async def test_another_countrys_claim_is_stored_under_the_collectors_network_and_flagged(
    alerting: Collector, newsroom: Receiver
) -> None:
    """The issue's forgery: one probe, four measurements claiming Telegram blocked in RU."""
    now = dt.datetime.now(dt.UTC)
    for token in await honest_probes(alerting, 3):
        items = [
            measurement(verdict="blocked", methods=["dns.nxdomain"], cc="RU", asn=12389,
                        start=now - dt.timedelta(minutes=m))
            for m in (0, 4, 8, 12)
        ]  # fmt: skip
        status, body = await alerting.ingest(token, items, attest=False)
        assert status == 200, body
        assert all("network_mismatch" in r["flags"] for r in body["results"]), body
    await nothing_happened(alerting, newsroom)
    assert await stored_flags(alerting, cc="RU") == []
    flags = await stored_flags(alerting, cc="KZ", asn="64500")
    assert len(flags) == 12
    assert all(f == ["network_mismatch"] for f in flags)


async def test_a_forged_or_borrowed_attestation_is_flagged(
    alerting: Collector, newsroom: Receiver
) -> None:
    now = dt.datetime.now(dt.UTC)
    tokens = await honest_probes(alerting, 3)
    forged = attestation.issue("someone", "RU", 12389, now, b"not the collector's key")
    borrowed = await alerting.attestation(tokens[0], "RU", 12389)
    assert borrowed is not None
    for token, text in ((tokens[1], forged), (tokens[2], borrowed)):
        item = measurement(verdict="blocked", cc="RU", asn=12389, start=now, attestation=text)
        status, body = await alerting.ingest(token, [item] * 1, attest=False)
        assert status == 200, body
        assert body["results"][0]["flags"] == ["attestation_invalid", "network_mismatch"]
    await nothing_happened(alerting, newsroom)


async def test_an_expired_attestation_does_not_place_a_measurement_elsewhere(
    alerting: Collector, newsroom: Receiver
) -> None:
    [token] = await honest_probes(alerting, 1)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    text = await alerting.attestation(token, "RU", 12389, old)
    item = measurement(verdict="blocked", cc="RU", asn=12389, attestation=text)
    _, body = await alerting.ingest(token, [item], attest=False)
    assert body["results"][0]["flags"] == ["network_mismatch"]  # placed by the lookup: KZ
    await nothing_happened(alerting, newsroom)


async def test_a_backdated_batch_from_one_probe_is_one_voice_once(
    alerting: Collector, newsroom: Receiver
) -> None:
    """Start times spread over 12 minutes, received at once: no repeat, no incident."""
    [token] = await honest_probes(alerting, 1)
    now = dt.datetime.now(dt.UTC)
    items = [measurement(verdict="blocked", methods=["dns.nxdomain"],
                         start=now - dt.timedelta(minutes=m)) for m in (0, 4, 8, 12)]  # fmt: skip
    status, body = await alerting.ingest(token, items)
    assert status == 200, body
    assert body["accepted"] == 4, body
    await nothing_happened(alerting, newsroom)


async def test_a_batch_backdated_past_the_window_is_flagged(
    alerting: Collector, newsroom: Receiver
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    for token in await honest_probes(alerting, 3):
        items = [
            measurement(verdict="blocked", start=long_ago + dt.timedelta(minutes=m))
            for m in (0, 5, 10)
        ]
        _, body = await alerting.ingest(token, items)
        assert all(r["flags"] == ["past"] for r in body["results"]), body
    await nothing_happened(alerting, newsroom)
    assert {tuple(f) for f in await stored_flags(alerting)} == {("past",)}


async def test_far_future_rows_never_feed_detection(
    alerting: Collector, newsroom: Receiver
) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    for token in await honest_probes(alerting, 3):
        items = [
            measurement(verdict="blocked", start=future + dt.timedelta(minutes=m))
            for m in (0, 5, 10)
        ]
        _, body = await alerting.ingest(token, items)
        assert all(r["flags"] == ["future"] for r in body["results"]), body
    await nothing_happened(alerting, newsroom)
    assert {tuple(f) for f in await stored_flags(alerting)} == {("future",)}


async def test_sybils_of_one_enrolment_token_do_not_outvote_honest_probes(
    alerting: Collector, newsroom: Receiver
) -> None:
    """Three probes of one token say blocked; 24 honest probes of the country say ok."""
    now = dt.datetime.now(dt.UTC)
    for token in await honest_probes(alerting, 24):
        await alerting.ingest(token, [measurement(verdict="ok", start=now)])
    shared = await alerting.enrolment_token(uses=3)
    for _ in range(3):
        response = await alerting.client.post(
            "/api/v1/probes", headers={"Authorization": f"Bearer {shared}"}
        )
        token = (await response.json())["token"]
        items = [measurement(verdict="blocked", methods=["dns.nxdomain"], start=now)]
        _, body = await alerting.ingest(token, items)
        assert body["accepted"] == 1, body
    await nothing_happened(alerting, newsroom)


async def test_sybils_alone_in_a_network_stay_one_unconfirmed_voice_at_most(
    alerting: Collector, newsroom: Receiver
) -> None:
    """Nobody contradicts them, yet one enrolment token is one voice: never confirmed."""
    shared = await alerting.enrolment_token(uses=5)
    now = dt.datetime.now(dt.UTC)
    for _ in range(5):
        response = await alerting.client.post(
            "/api/v1/probes", headers={"Authorization": f"Bearer {shared}"}
        )
        token = (await response.json())["token"]
        await alerting.ingest(token, [measurement(verdict="blocked", start=now)])
    await judged(alerting)
    _, listing = await alerting.get_json("/api/v1/incidents")
    assert all(i["status"] == "unconfirmed" for i in listing["incidents"])
    _, confirmed = await alerting.get_json("/api/v1/incidents", status="open")
    assert confirmed["incidents"] == []


async def test_honest_vetted_probes_with_attestations_do_open_an_incident(
    alerting: Collector, newsroom: Receiver
) -> None:
    """The same pipeline is not deaf: two vetted probes that checked in see it blocked."""
    now = dt.datetime.now(dt.UTC)
    for token in await honest_probes(alerting, 2):
        items = [
            measurement(verdict="blocked", methods=["dns.nxdomain"], cc="KZ", asn=64500, start=now)
        ]
        _, body = await alerting.ingest(token, items)
        assert body["results"][0]["flags"] == [], body
    await newsroom.wait_delivered(1)
    _, listing = await alerting.get_json("/api/v1/incidents", status="open")
    [incident] = listing["incidents"]
    assert "block.open.strong" in incident["rules"]
    assert incident["evidence"][0].startswith("2 of 2 independent probes in AS64500")


async def test_measurements_of_format_1_0_0_without_attestation_are_still_accepted(
    alerting: Collector, newsroom: Receiver
) -> None:
    [token] = await honest_probes(alerting, 1)
    old = msgspec.structs.replace(measurement(cc=None, asn=None), format_version="1.0.0")
    status, body = await alerting.ingest(token, [old])
    assert status == 200, body
    assert body["results"][0]["result"] == "accepted"
    assert body["results"][0]["flags"] == []
    _, stored = await alerting.get_json("/api/v1/measurements", cc="KZ", asn="64500")
    assert [r["measurement"]["format_version"] for r in stored["results"]] == ["1.0.0"]
