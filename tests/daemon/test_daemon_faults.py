"""Collector faults: 500 → exponential backoff; 429 → Retry-After honoured; a revoked token →
the daemon stops with a message that says so (against the real collector)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.harness.daemons import Collector, Probe, probe_config, request, until
from lab.harness.loopback import World
from tests.daemon.faults import FaultyCollector, Reply

pytestmark = pytest.mark.slow


@pytest.fixture
async def faulty(internet: World) -> AsyncIterator[FaultyCollector]:
    server = FaultyCollector(internet.targets.read_text(), [])
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _drain(probe: Probe, server: FaultyCollector) -> None:
    await probe.start()
    try:
        await until(lambda: server.accepted and not probe.pending(), 40, "spool drained")
    finally:
        assert await probe.stop() == 0, probe.output()
    assert max(Counter(server.accepted).values()) == 1
    assert set(server.accepted) == set(probe.history())


async def test_server_errors_back_off_exponentially(
    internet: World, faulty: FaultyCollector, tmp_path: Path
) -> None:
    faulty.script = [Reply(500)] * 5
    config = probe_config(internet, tmp_path)
    # backoff base 0.2 s, cap 1 s: waits fall in [0.1,0.2], [0.2,0.4], [0.4,0.8], [0.5,1] …
    await _drain(Probe(faulty.url, tmp_path / "state", config), faulty)
    gaps = [b - a for a, b in zip(faulty.attempts, faulty.attempts[1:], strict=False)][:5]
    assert gaps[0] < 0.35
    assert gaps[3] >= 0.45
    assert gaps[2] > gaps[0]


async def test_retry_after_is_honoured(
    internet: World, faulty: FaultyCollector, tmp_path: Path
) -> None:
    faulty.script = [Reply(429, {"Retry-After": "3"})]
    config = probe_config(internet, tmp_path)
    await _drain(Probe(faulty.url, tmp_path / "state", config), faulty)
    # The backoff alone would have waited at most 0.2 s.
    assert faulty.attempts[1] - faulty.attempts[0] >= 2.9


async def test_revoked_token_stops_with_a_clear_message(
    internet: World, collector: Collector, tmp_path: Path
) -> None:
    probe = Probe(collector.url, tmp_path / "state", probe_config(internet, tmp_path))
    await probe.start()
    await until(lambda: probe.history() and not probe.pending(), 30, "first upload")
    probe_id = (await collector.measurements())[0]["probe"]["id"]
    status, body = await request(
        "POST", f"{collector.url}/api/v1/probes/{probe_id}/revoke", headers=collector.admin()
    )
    assert status == 200, body
    code = await probe.wait(30)
    assert code == 3, probe.output()
    assert "token" in probe.output()
    assert "revoked" in probe.output()
    assert "Traceback" not in probe.output()
    await asyncio.sleep(0)
