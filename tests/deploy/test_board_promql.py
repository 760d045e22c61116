"""A real Prometheus scrapes a real collector holding data; every dashboard query returns series.

Skips only when the ``prometheus`` binary (Debian package ``prometheus``) is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from collector_harness import ServerProcess, http
from deploy_paths import ALERTING_METRICS, DASHBOARDS
from prometheus_process import PrometheusProcess, binary, scrape_config_for
from promql import Query, queries

from lab.harness.samples import measurement
from probe import model

PROMETHEUS_BINARY = binary()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS_BINARY is None,
        reason="prometheus is missing: install the Debian package prometheus "
        "(scripts/install-test-deps)",
    ),
]
# Loopback is KZ / AS64500 for the collector, so the probe's ASN gets its own label value.
ASN_TABLE = "127.0.0.0\t127.255.255.255\t64500\tKZ\tTEST-KZ\n"
BOARDS = sorted(DASHBOARDS.glob("*.json"))
EVENTS_ANNOUNCED_AT = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _sample_batch() -> list[model.Measurement]:
    now = dt.datetime.now(dt.UTC)
    kz: list[tuple[str, model.Verdict]] = [
        ("telegram", "blocked"), ("telegram", "blocked"), ("telegram", "ok"),
        ("whatsapp", "ok"), ("whatsapp", "ok"), ("signal", "anomaly"),
        ("youtube", "down"), ("instagram", "offline"),
    ]  # fmt: skip
    items = [
        measurement(service=s, verdict=v, cc="KZ", asn=64500, start=now - dt.timedelta(minutes=i))
        for i, (s, v) in enumerate(kz)
    ]
    items += [measurement(service="telegram", verdict="blocked", cc="RU", asn=12389, start=now)]
    return items


def _ingest(server: ServerProcess, token: str, items: list[model.Measurement]) -> None:
    body = b"[" + b",".join(model.encode(m) for m in items) + b"]"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, reply = http("POST", server.url + "/api/v1/measurements", body, headers)
    assert status == 200, reply
    assert json.loads(reply)["accepted"] == len(items), reply


def _announce(server: ServerProcess, now: dt.datetime) -> None:
    """Events active now in KZ, one per kind the overview's annotations draw."""
    events = [
        {"kind": "livestream", "title": "Opposition livestream", "cc": "KZ",
         "start": (now - dt.timedelta(minutes=10)).isoformat(),
         "end": (now + dt.timedelta(hours=2)).isoformat()},
        # No end: active until start + 2 h.
        {"kind": "protest", "title": "March on the square", "cc": "KZ",
         "start": (now - dt.timedelta(minutes=30)).isoformat()},
    ]  # fmt: skip
    headers = {**server.admin_headers(), "Content-Type": "application/json"}
    for event in events:
        status, reply = http(
            "POST", server.url + "/api/v1/events", json.dumps(event).encode(), headers
        )
        assert status == 201, reply


@dataclass
class Fed:
    """A running collector and a probe token that can feed it."""

    server: ServerProcess
    token: str


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    workdir = tmp_path_factory.mktemp("collector")
    (workdir / "ip2asn.tsv").write_text(ASN_TABLE)
    server = ServerProcess(
        workdir, f"sqlite:///{workdir / 'collector.db'}", "--ip-asn-db", str(workdir / "ip2asn.tsv"),
        env={"CENSORWATCH_METRICS_REFRESH_SECONDS": "0.2"},
    )  # fmt: skip
    try:
        server.wait_ready()
        token = server.register()
        status, reply = http(
            "POST", server.url + "/api/v1/probes/check-in", b"{}",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 200, reply
        _ingest(server, token, _sample_batch())
        _ingest(server, token, [measurement(cc="KZ", asn=64500)])
        bad = http(
            "POST", server.url + "/api/v1/measurements", b'[{"id": 1}]',
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        assert bad[0] == 200, bad
        _announce(server, EVENTS_ANNOUNCED_AT)
        yield Fed(server, token)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def collector(fed: Fed) -> ServerProcess:
    return fed.server


@pytest.fixture(scope="module")
def prometheus(fed: Fed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    assert PROMETHEUS_BINARY is not None
    workdir = tmp_path_factory.mktemp("prometheus")
    config = scrape_config_for(workdir, f"127.0.0.1:{fed.server.port}")
    server = PrometheusProcess(PROMETHEUS_BINARY, workdir, config)
    try:
        server.wait_ready()
        server.wait_for('up{job="censorwatch-collector"} == 1')
        # More data after the first scrape, so that rates are not all zero.
        _ingest(fed.server, fed.token, _sample_batch())
        # Rates need two scrapes of the ingested data, recording rules one evaluation after.
        server.wait_for('censorwatch:offline_ratio:rate30m{country="KZ"} > 0')
        server.wait_for("censorwatch:ingest_items:rate5m")
        yield server
    finally:
        server.stop()


def exported(collector: ServerProcess) -> frozenset[str]:
    """Names of the samples on the collector's /metrics now (``_total``, ``_bucket`` included)."""
    status, body = http("GET", collector.url + "/metrics")
    assert status == 200
    lines = body.decode().splitlines()
    return frozenset(re.split(r"[{ ]", line)[0] for line in lines if not line.startswith("#"))


def test_prometheus_scrapes_the_collector(prometheus: PrometheusProcess) -> None:
    blocking = prometheus.query('censorwatch_blocking{service="telegram", country="KZ"}')
    assert {(s["metric"]["asn"], s["value"][1]) for s in blocking} == {("64500", "1")}
    totals = prometheus.query('censorwatch_measurements_total{country="KZ", asn="64500"}')
    by_verdict = {
        (s["metric"]["service"], s["metric"]["verdict"]): float(s["value"][1]) for s in totals
    }
    assert by_verdict[("telegram", "blocked")] == 4
    assert by_verdict[("telegram", "ok")] == 3
    probes = prometheus.query("censorwatch_probes_active")
    assert [(s["metric"]["country"], s["metric"]["asn"], s["value"][1]) for s in probes] == [
        ("KZ", "64500", "1")
    ]
    # The sample's measurements that claim another country come from this KZ probe: the
    # collector places them where it attested the probe, flags them, and counts none as RU.
    assert prometheus.query('censorwatch_measurements_total{country="RU"}') == []
    rejected = prometheus.query('censorwatch_ingest_items_total{result="rejected"}')
    assert float(rejected[0]["value"][1]) == 1


def test_events_are_series_for_annotations(prometheus: PrometheusProcess) -> None:
    active = prometheus.wait_for("censorwatch_events_active > 0")
    assert {(s["metric"]["kind"], s["metric"]["country"], s["value"][1]) for s in active} == {
        ("livestream", "KZ", "1"), ("protest", "KZ", "1")
    }  # fmt: skip
    starts = prometheus.wait_for("censorwatch_event_start_timestamp_seconds")
    assert {(s["metric"]["kind"], float(s["value"][1])) for s in starts} == {
        ("livestream", (EVENTS_ANNOUNCED_AT - dt.timedelta(minutes=10)).timestamp()),
        ("protest", (EVENTS_ANNOUNCED_AT - dt.timedelta(minutes=30)).timestamp()),
    }
    # Titles never become labels: kind and country only (plus the scrape's own).
    scraped = {"__name__", "instance", "job"}
    assert {frozenset(s["metric"]) - scraped for s in active + starts} == {
        frozenset({"kind", "country"})
    }


def test_recording_rules_produce_the_board_series(prometheus: PrometheusProcess) -> None:
    country = prometheus.wait_for('censorwatch:blocking_country:max{service="telegram"}')
    # one probe, attested in KZ: its claims of RU are flagged and count nowhere
    assert {(s["metric"]["country"], s["value"][1]) for s in country} == {("KZ", "1")}
    asns = prometheus.wait_for('censorwatch:blocking_asns:count{service="whatsapp"}')
    assert [s["value"][1] for s in asns] == ["0"]
    offline = prometheus.wait_for('censorwatch:offline_ratio:rate30m{country="KZ"}')
    assert 0 < float(offline[0]["value"][1]) < 1


def test_every_board_has_queries() -> None:
    assert [p.name for p in BOARDS] == [
        "censorwatch-operations.json", "censorwatch-overview.json", "censorwatch-service.json"
    ]  # fmt: skip
    for board in BOARDS:
        assert len(list(queries(board))) >= 5, board.name


@pytest.mark.parametrize(
    "query",
    [q for board in BOARDS for q in queries(board)],
    ids=lambda q: f"{q.dashboard}:{q.where}:{q.expr}"[:120],
)
def test_dashboard_query_returns_series(
    query: Query, prometheus: PrometheusProcess, collector: ServerProcess
) -> None:
    names = exported(collector)
    result = prometheus.query(query.expr)  # Prometheus parses and runs it, or the test fails
    if query.metrics & ALERTING_METRICS - names:
        # An alerting metric without samples yet (no open incident in this data, or the
        # alerting work not landed): valid PromQL is all that can be asked of it here.
        return
    unknown = {m for m in query.metrics if m != "up" and ":" not in m} - names
    assert not unknown, f"{query.where} uses metrics the collector does not export: {unknown}"
    assert result, f"{query.dashboard} {query.where}: no series for {query.expr}"
