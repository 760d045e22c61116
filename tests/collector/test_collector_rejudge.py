"""Stored measurements are re-judged when the fingerprint files change (SQLite and PostgreSQL),
through the real ``censorwatch db rejudge`` command; the new 1.1.0 facts (throughput) are
stored whole."""

from __future__ import annotations

import subprocess
import sys

import msgspec
from collector_harness import Collector

from collector.config import Config
from lab.harness.samples import measurement
from lab.paths import REPO_ROOT, checkout_env
from probe import model, vocabulary
from probe.verdicts import fingerprints
from tests.probe.fakes import Result, measure
from tests.probe.test_edge_cases import TG, run_engine, scripted
from tests.probe.test_quiet_methods import QAZNET_LEAF


async def intercepted_as_judged_before(probe_id: str) -> model.Measurement:
    """A Qaznet interception measured today, as a probe with older fingerprints judged it."""
    rogue = Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=QAZNET_LEAF)
    network = scripted(exchanges={(TG, 443, "network"): [rogue], (TG, 443, "control"): [rogue]})
    measured = (await run_engine(network))["telegram"]
    older = msgspec.structs.replace(
        measured.analysis,
        verdict="anomaly",
        methods=["tls.mitm"],
        rules=["tls.untrusted_certificate"],
        fingerprints_version="2019-old",
        endpoints=[],
        evidence=[],
    )
    probe = model.ProbeInfo(id=probe_id, asn=9198, cc="KZ")
    return msgspec.structs.replace(measured, analysis=older, probe=probe)


def rejudge(config: Config) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", "db", "rejudge", "--db", config.db_url],
        cwd=REPO_ROOT,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def verdicts(collector: Collector) -> dict[str, str]:
    status, body = await collector.get_json("/api/v1/measurements")
    assert status == 200, body
    return {item["measurement"]["id"]: item["collector"]["verdict"] for item in body["results"]}


async def blocked_count(collector: Collector) -> int:
    status, body = await collector.get_json("/api/v1/aggregation")
    assert status == 200, body
    return sum(int(r["blocked_count"]) for r in body["result"])


async def test_rows_judged_with_older_fingerprints_are_rejudged_once(
    collector: Collector, config: Config
) -> None:
    probe_id, token = await collector.register()
    stale = await intercepted_as_judged_before(probe_id)
    current = measurement(probe_id=probe_id)  # judged with today's files: left alone
    status, body = await collector.ingest(token, [stale, current])
    assert status == 200, body
    assert body["accepted"] == 2, body
    assert (await verdicts(collector))[str(stale.id)] == "anomaly"
    before = await blocked_count(collector)

    first = rejudge(config)
    assert f"fingerprints {fingerprints.load().version}: 1 verdicts changed" in first
    got = await verdicts(collector)
    assert got[str(stale.id)] == "blocked"
    assert got[str(current.id)] == "ok"
    assert await blocked_count(collector) == before + 1

    second = rejudge(config)
    assert "re-judged 0 measurements" in second
    assert await blocked_count(collector) == before + 1


async def test_a_throttled_measurement_reaches_the_collector_whole(collector: Collector) -> None:
    from tests.probe.test_throttling import POLICED, TARGETS, X, network

    probe_id, token = await collector.register()
    measured = (await measure(network({(X, "network"): POLICED}), TARGETS))["x"]
    throttled = msgspec.structs.replace(
        measured, probe=model.ProbeInfo(id=probe_id, asn=9198, cc="KZ")
    )
    status, body = await collector.ingest(token, [throttled])
    assert status == 200, body
    assert body["results"][0]["result"] == "accepted", body
    assert body["results"][0]["verdict"] == "blocked"
    # exact data (the public listing shows pseudonyms and coarse times)
    status, page = await collector.get_json(
        "/api/v1/measurements", headers=collector.admin_headers, service="x"
    )
    assert status == 200, page
    [item] = page["results"]
    held = model.from_builtins(item["measurement"])
    assert held.observations == throttled.observations
    assert held.analysis == throttled.analysis
    assert item["measurement"]["analysis"]["methods"] == ["throttled"]
