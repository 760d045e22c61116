"""Real ``censorwatch serve`` processes: replicas sharing PostgreSQL, the CLI, the logs."""

from __future__ import annotations

import collections
import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from collector_harness import ServerProcess, http

from collector.store import migrate
from lab.harness.postgres import ThrowawayCluster
from lab.harness.samples import measurement
from probe import model

pytestmark = pytest.mark.slow


def batch_body(items: list[model.Measurement]) -> bytes:
    return b"[" + b",".join(model.encode(m) for m in items) + b"]"


def test_concurrent_identical_batches_to_two_replicas_store_each_once(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database("cw_replicas")  # empty: both replicas race to migrate
    replicas = [ServerProcess(tmp_path, url), ServerProcess(tmp_path, url)]
    try:
        for replica in replicas:
            replica.wait_ready()
        token = replicas[0].register()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        batches = [batch_body([measurement() for _ in range(50)]) for _ in range(20)]
        sends = [(r, b) for b in batches for r in replicas for _ in range(2)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda s: http("POST", s[0].url + "/api/v1/measurements", s[1], headers), sends
                )
            )
    finally:
        codes = [replica.stop() for replica in replicas]
    assert all(status == 200 for status, _ in answers), answers[:3]
    accepted = collections.Counter()
    for _, body in answers:
        for item in json.loads(body)["results"]:
            accepted[item["id"]] += item["result"] == "accepted"
    assert len(accepted) == 1000
    assert set(accepted.values()) == {1}
    assert pg_cluster.sql("SELECT count(*) FROM measurements", "cw_replicas").strip() == "1000"
    assert pg_cluster.sql("SELECT sum(count) FROM rollups", "cw_replicas").strip() == "1000"
    assert pg_cluster.sql("SELECT count(*) FROM admin_tokens", "cw_replicas").strip() == "1"
    assert codes == [0, 0]


def test_no_client_address_is_logged(tmp_path: Path) -> None:
    table = tmp_path / "asn.tsv"
    table.write_text("127.0.0.0\t127.255.255.255\t64500\tKZ\tTEST\n")
    server = ServerProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'c.db'}",
        "--ip-asn-db",
        str(table),
        "--log-level",
        "DEBUG",
    )
    try:
        server.wait_ready()
        token = server.register()
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        http("POST", server.url + "/api/v1/probes/check-in", b"", auth)
        http("POST", server.url + "/api/v1/measurements", batch_body([measurement()]), auth)
        http("POST", server.url + "/api/v1/measurements", b"[{", auth)
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            raw.recv(1000)
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
            raw.recv(1000)
    finally:
        server.stop()
    log = server.output()
    assert "POST /api/v1/measurements 200" in log
    banner = f"collector on http://127.0.0.1:{server.port}"
    assert "127.0.0.1" not in log.replace(banner, ""), log


def test_sigterm_lets_an_in_flight_batch_finish(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'c.db'}")
    server.wait_ready()
    token = server.register()
    body = batch_body([measurement() for _ in range(3000)])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(http, "POST", server.url + "/api/v1/measurements", body, headers)
        import time

        time.sleep(0.15)
        code = server.stop()
        status, answer = pending.result()
    assert code == 0
    assert status == 200
    assert json.loads(answer)["accepted"] == 3000
    assert "shutting down" in server.output()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def head_revision() -> str:

    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


def test_db_upgrade(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    first = run_cli("db", "upgrade", "--db", db)
    second = run_cli("db", "upgrade", "--db", db)
    assert first.returncode == 0
    assert f"migrated from empty to {head_revision()}" in first.stdout
    assert second.returncode == 0
    assert "nothing to do" in second.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "upgrade", "--db", "mysql://x/y"], "unsupported database 'mysql'"),
        (["db", "upgrade", "--db", "::nonsense"], "not a URL"),
        (["db", "upgrade", "--db", "postgresql://u:secret@127.0.0.1:1/x"], "cannot use postgresql"),
        (["serve", "--listen", "localhost"], "HOST:PORT"),
        (["serve", "--config", "/nonexistent.toml"], "cannot read"),
        (["serve", "--ip-asn-db", "/nonexistent.tsv"], "/nonexistent.tsv"),
        (["serve", "--targets", "/nonexistent.toml"], "/nonexistent.toml"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = (
        run_cli(*args, "--data-dir", str(tmp_path)) if args[0] != "frobnicate" else run_cli(*args)
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr
