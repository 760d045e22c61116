"""``censorwatch serve --workers N``: real worker processes sharing one port and PostgreSQL."""

from __future__ import annotations

import collections
import json
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from collector_harness import ServerProcess, http

from lab.harness.postgres import ThrowawayCluster
from lab.harness.samples import measurement
from probe import model

pytestmark = pytest.mark.slow


def batch_body(items: list[model.Measurement]) -> bytes:
    return b"[" + b",".join(model.encode(m) for m in items) + b"]"


def workers_of(server: ServerProcess, count: int, timeout: float = 60) -> list[psutil.Process]:
    """The supervisor's worker processes, once all ``count`` listen on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for child in psutil.Process(server.process.pid).children():
            try:
                if any(c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        if len(found) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{count} workers did not listen in {timeout} s: {server.output()}")


def sample(metrics: bytes, series: str) -> float:
    """The value of one series in an exposition: every worker's, summed."""
    found = re.search(rb"^" + re.escape(series.encode()) + rb" (\S+)$", metrics, re.M)
    assert found, metrics[:500]
    return float(found.group(1))


ACCEPTED = 'censorwatch_ingest_items_total{result="accepted"}'
CYCLES = "censorwatch_detection_cycle_duration_seconds_count"


def test_workers_share_the_port_store_each_measurement_once_and_sum_their_metrics(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database("cw_workers")
    server = ServerProcess(tmp_path, url, "--workers", "2")
    try:
        server.wait_ready()
        workers = workers_of(server, 2)
        # The kernel spreads connections over the workers: 16 held open reach both.
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        time.sleep(0.5)
        per_worker = [
            sum(
                1
                for c in w.net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
            )
            for w in workers
        ]
        for connection in held:
            connection.close()
        token = server.register()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        batches = [batch_body([measurement() for _ in range(25)]) for _ in range(16)]
        sends = [b for b in batches for _ in range(2)]  # every batch twice, concurrently
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda b: http("POST", server.url + "/api/v1/measurements", b, headers), sends
                )
            )
        scrapes = [sample(http("GET", server.url + "/metrics")[1], ACCEPTED) for _ in range(8)]
    finally:
        code = server.stop()
    assert all(n >= 1 for n in per_worker), per_worker
    assert all(status == 200 for status, _ in answers), answers[:2]
    accepted = collections.Counter()
    for _, body in answers:
        for item in json.loads(body)["results"]:
            accepted[item["id"]] += item["result"] == "accepted"
    assert len(accepted) == 400
    assert set(accepted.values()) == {1}
    assert pg_cluster.sql("SELECT count(*) FROM measurements", "cw_workers").strip() == "400"
    assert pg_cluster.sql("SELECT sum(count) FROM rollups", "cw_workers").strip() == "400"
    # Whichever worker answers the scrape, it counts every worker's batches.
    assert scrapes == [400.0] * 8
    assert code == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    out = server.output()
    assert "(worker 1 of 2)" in out
    assert "(worker 2 of 2)" in out


def test_the_detector_runs_in_the_first_worker_only(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database("cw_workers_detector")
    env = {"CENSORWATCH_ALERT_INTERVAL_SECONDS": "0.2"}
    server = ServerProcess(tmp_path, url, "--workers", "3", env=env)
    try:
        server.wait_ready()
        workers_of(server, 3)
        before = sample(http("GET", server.url + "/metrics")[1], CYCLES)
        time.sleep(4)
        after = sample(http("GET", server.url + "/metrics")[1], CYCLES)
    finally:
        server.stop()
    # Three detectors would each cycle every 0.2 s (some 60 cycles in 4 s); one does.
    assert 4 <= after - before <= 4 / 0.2 + 2, (before, after)


def test_a_worker_that_dies_stops_the_others_with_a_failure_status(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database("cw_workers_die")
    server = ServerProcess(tmp_path, url, "--workers", "2")
    try:
        server.wait_ready()
        first, second = sorted(workers_of(server, 2), key=lambda w: w.pid)
        second.send_signal(signal.SIGKILL)
        code = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert code == 1
    assert "exited with status -9; stopping" in server.output()
    assert not first.is_running() or first.status() == psutil.STATUS_ZOMBIE


def test_workers_need_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector", "serve", "--workers", "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "workers: 2 worker processes need PostgreSQL" in done.stderr
    assert not (tmp_path / "censorwatch.db").exists()
