"""Watch mode with real processes: a window opened on the collector tightens a probe's
schedule when it starts, and the probe relaxes again when it ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.harness.daemons import Collector, Probe, probe_config, request, until
from lab.harness.loopback import World

pytestmark = pytest.mark.slow

NORMAL = 20.0  # the probe's own interval for every service, messengers included
WINDOW_INTERVAL = 1  # inside the window


@pytest.fixture
async def watching_collector(tmp_path: Path) -> AsyncIterator[Collector]:
    table = tmp_path / "ip2asn.tsv"  # loopback probes are in KZ, so KZ's windows reach them
    table.write_text("127.0.0.0\t127.255.255.255\t64500\tKZ\tLoopback Telecom\n")
    fast = {
        "CENSORWATCH_IP_ASN_DB": str(table),
        "CENSORWATCH_WATCH_MESSENGER_INTERVAL_SECONDS": str(WINDOW_INTERVAL),
        "CENSORWATCH_WATCH_INTERVAL_SECONDS": str(WINDOW_INTERVAL),
        "CENSORWATCH_WATCH_CHECK_IN_SECONDS": "1",
    }
    server = Collector(tmp_path, fast)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_window_tightens_then_relaxes_the_schedule(
    internet: World, watching_collector: Collector, tmp_path: Path
) -> None:
    config = probe_config(
        internet, tmp_path, interval_seconds=NORMAL, jitter_seconds=0.0,
        watch_min_interval_seconds=0.5,
    )  # fmt: skip
    config.write_text(
        config.read_text().replace("[schedule]", "[schedule]\ncategories = { messenger = 20.0 }")
    )
    probe = Probe(watching_collector.url, tmp_path / "state", config)
    await probe.start()
    try:
        await until(lambda: len(probe.history()) >= 1, 30, "a first round")
        await asyncio.sleep(2.0)  # the first round's services are now waiting NORMAL seconds
        before = len(probe.history())
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        end = start + dt.timedelta(seconds=8)
        status, made = await request(
            "POST", watching_collector.url + "/api/v1/watch-windows",
            json.dumps({"cc": "KZ", "title": "Test window", "start": start.isoformat(),
                        "end": end.isoformat()}).encode(),
            {**watching_collector.admin(), "Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 201, made
        await asyncio.sleep((end - dt.datetime.now(dt.UTC)).total_seconds() + 1.0)
        during = len(probe.history()) - before
        after_start = len(probe.history())
        await asyncio.sleep(8.0)
        after = len(probe.history()) - after_start
    finally:
        assert await probe.stop() == 0, probe.output()
    assert during >= 3 * 3, probe.output()  # several rounds of every service inside 8 s
    assert after <= 3, probe.output()  # at most the round that was running at the end
