"""Incidents reach subscribers as signed webhooks, through real HTTP receivers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from alert_receiver import Receiver
from alert_scenarios import add_subscriber, block, fast
from collector_harness import Collector, start_collector

from collector.config import Config


@pytest.fixture
async def alerting(config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(fast(config))
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def _metrics(collector: Collector, wanted: str) -> str:
    for _ in range(100):
        text = await (await collector.client.get("/metrics")).text()
        if wanted in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{wanted!r} not in metrics:\n{text}")


async def test_blocking_from_two_probes_arrives_as_one_signed_webhook(
    alerting: Collector, receiver: Receiver
) -> None:
    receiver.secret = (await add_subscriber(alerting, receiver.url))["secret"]

    await block(alerting, "telegram", probes=2)
    await receiver.wait_delivered(1)

    await asyncio.sleep(0.5)  # more cycles: still one notification
    [only] = receiver.received
    assert only.verified
    payload = json.loads(only.body)
    assert "incident.opened" in only.body.decode(), payload
    status, listing = await alerting.get_json("/api/v1/incidents", cc="KZ")
    assert status == 200, listing
    [incident] = listing["incidents"]
    assert incident["service"] == "telegram"
    assert incident["status"] == "open"
    assert sorted(incident["asns"]) == [9198, 9199]
    await _metrics(
        alerting,
        'censorwatch_incidents_open{country="KZ",kind="blocking",service="telegram"} 1.0',
    )
    text = await _metrics(alerting, 'censorwatch_webhook_deliveries_total{outcome="delivered"} 1.0')
    assert "censorwatch_outbox_pending 0.0" in text


async def test_filters_keep_other_countries_out(alerting: Collector, receiver: Receiver) -> None:
    await add_subscriber(alerting, receiver.url, countries=["RU"])
    await block(alerting)
    await asyncio.sleep(1.0)
    assert receiver.received == []
    status, listing = await alerting.get_json("/api/v1/incidents")
    assert status == 200
    assert len(listing["incidents"]) == 1


@pytest.mark.slow
async def test_receiver_down_then_up_gets_it_once(alerting: Collector) -> None:
    receiver = Receiver()  # not listening yet: connection refused
    receiver.secret = (await add_subscriber(alerting, receiver.url))["secret"]
    await block(alerting)
    await asyncio.sleep(1.0)
    await receiver.start()
    try:
        await receiver.wait_delivered(1, within=30)
        assert list(receiver.delivered().values()) == [1]
        assert receiver.received[0].verified
    finally:
        await receiver.stop()


@pytest.mark.slow
async def test_429_waits_for_retry_after(alerting: Collector, receiver: Receiver) -> None:
    receiver.script = [429]
    receiver.secret = (await add_subscriber(alerting, receiver.url))["secret"]
    await block(alerting)
    await receiver.wait_delivered(1, within=30)
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id
    assert second.at - first.at >= 1.0
    assert second.verified


async def test_410_disables_the_subscriber_and_leaves_a_dead_letter(
    alerting: Collector, receiver: Receiver
) -> None:
    receiver.script = [410]
    subscriber = await add_subscriber(alerting, receiver.url)
    receiver.secret = subscriber["secret"]
    await block(alerting)
    for _ in range(100):
        _status, dead = await _deliveries(alerting, "dead")
        if dead:
            break
        await asyncio.sleep(0.1)
    [letter] = dead
    assert "410" in letter["last_error"]
    response = await alerting.client.get(
        f"/api/v1/subscribers/{subscriber['id']}", headers=alerting.admin_headers
    )
    view = await response.json()
    assert view["enabled"] is False
    assert "410" in view["disabled_reason"]
    await _metrics(alerting, "censorwatch_webhook_dead_letters 1.0")

    # The operator fixes the receiver, re-enables the subscriber and retries the letter.
    await alerting.client.patch(
        f"/api/v1/subscribers/{subscriber['id']}",
        json={"enabled": True},
        headers=alerting.admin_headers,
    )
    response = await alerting.client.post(
        f"/api/v1/deliveries/{letter['id']}/retry", headers=alerting.admin_headers
    )
    assert response.status == 200, await response.text()
    await receiver.wait_delivered(1)
    assert receiver.received[-1].webhook_id == letter["id"]


@pytest.mark.slow
async def test_slow_receiver_times_out_and_is_retried_with_the_same_id(
    alerting: Collector, receiver: Receiver
) -> None:
    receiver.script = [("slow", 2.0)]  # longer than the 1 s delivery timeout
    receiver.secret = (await add_subscriber(alerting, receiver.url))["secret"]
    await block(alerting)
    await receiver.wait_delivered(2, within=30)  # the slow answer counts on its side too
    assert len(receiver.delivered()) == 1  # … but it is one notification by webhook-id
    _status, pending = await _deliveries(alerting, "delivered")
    [row] = pending
    assert row["attempts"] == 2


async def _deliveries(collector: Collector, status: str) -> tuple[int, list[dict[str, str]]]:
    response = await collector.client.get(
        "/api/v1/deliveries", params={"status": status}, headers=collector.admin_headers
    )
    return response.status, (await response.json())["deliveries"]
