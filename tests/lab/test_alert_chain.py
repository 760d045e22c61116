"""The whole chain in the censorship lab: two volunteers' probes run in the client
namespace, the collector and a newsroom's webhook receiver sit on the internet side, a
livestream is announced, the ISP starts lying about Telegram's name — and a signed
``incident.opened`` arrives, linked to the livestream."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from alerts.incidents import RULES_VERSION
from collector.demo.servers.base import free_port
from lab import plan
from lab import scenario as scenarios
from lab.harness.daemons import Probe, until
from lab.paths import REPO_ROOT as REPO
from lab.shell import in_netns
from lab.topology import Topology, terminate_on_sigterm

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

RECEIVER = """
import json, sys
from aiohttp import web
out = open(sys.argv[2], "a")
async def hook(request):
    body = await request.read()
    out.write(json.dumps({"headers": dict(request.headers), "body": body.decode()}) + "\\n")
    out.flush()
    return web.Response(status=204)
app = web.Application()
app.router.add_post("/hook", hook)
web.run_app(app, host="0.0.0.0", port=int(sys.argv[1]), print=None)
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Topology]:
    with terminate_on_sigterm(), Topology("cwla-") as topology:
        yield topology


def _in_internet(lab: Topology, argv: list[str]) -> list[str]:
    return in_netns(lab.ns.internet, ["env", f"PYTHONPATH={REPO}", *argv])


@pytest.fixture
async def newsroom(lab: Topology, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A webhook receiver on the internet side; what it receives goes to a file."""
    port = free_port()
    received = tmp_path / "received.jsonl"
    received.touch()
    process = await asyncio.create_subprocess_exec(
        *_in_internet(lab, [sys.executable, "-c", RECEIVER, str(port), str(received)])
    )
    try:
        yield f"http://{plan.INTERNET_UP_IP}:{port}/hook", received
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
async def collector(lab: Topology, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``censorwatch serve`` on the internet side; every address maps to a Kazakh network."""
    port = free_port()
    db = f"sqlite:///{tmp_path / 'collector.sqlite3'}"
    asn_table = tmp_path / "ip2asn.tsv"
    asn_table.write_text("0.0.0.0\t255.255.255.255\t9198\tKZ\tKAZTELECOM-AS\n")
    argv = [
        "env", "CENSORWATCH_RATE_PER_SECOND=0", "CENSORWATCH_ALERT_INTERVAL_SECONDS=1",
        "CENSORWATCH_ALERT_SETTLE_SECONDS=0.5", sys.executable, "-m", "collector", "serve",
        "--db", db, "--listen", f"0.0.0.0:{port}", "--data-dir", str(tmp_path / "data"),
        "--open-enrolment", "--ip-asn-db", str(asn_table),
    ]  # fmt: skip
    with (tmp_path / "collector.log").open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *_in_internet(lab, argv), stdout=out, stderr=out, cwd=REPO
        )
    try:
        await until(lambda: (tmp_path / "data" / "admin-token").exists(), 60, "collector start")
        await asyncio.sleep(2)
        yield f"http://{plan.INTERNET_UP_IP}:{port}", db
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


def _cli(db: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "collector", *args, "--db", db],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _vet_all(db: str) -> int:
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as connection:
        with connection:
            connection.execute("UPDATE probes SET vetted = 1")
        return int(connection.execute("SELECT count(*) FROM probes").fetchone()[0])


def _probe_config(lab: Topology, path: Path) -> Path:
    path.write_text(
        f'targets = "{scenarios.TARGETS_FILE}"\n'
        f'control_resolvers = ["{lab.control_resolver_url}"]\n'
        f'ca_file = "{lab.ca_file}"\ntimeout = 1.0\ncheck_in_seconds = 5.0\n'
        "[schedule]\ninterval_seconds = 3.0\njitter_seconds = 0.0\n"
        "[upload]\nidle_seconds = 0.5\nbackoff_base_seconds = 0.5\nbackoff_cap_seconds = 2.0\n"
    )
    return path


def _opened(received: Path) -> list[dict[str, Any]]:
    found = []
    for line in received.read_text().splitlines():
        delivery = json.loads(line)
        if json.loads(delivery["body"])["type"] == "incident.opened":
            found.append(delivery)
    return found


async def test_blocking_after_a_livestream_reaches_the_newsroom_signed_and_linked(
    lab: Topology, collector: tuple[str, str], newsroom: tuple[str, Path], tmp_path: Path
) -> None:
    url, db = collector
    hook, received = newsroom
    added = _cli(db, "subscribers", "add", "--url", hook, "--format", "json", "--country", "KZ")
    secret = re.search(r"whsec_\S+", added)
    assert secret, added
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _cli(db, "events", "add", "--kind", "livestream", "--title", "Evening stream",
         "--country", "KZ", "--start", start.isoformat(), "--duration", "120")  # fmt: skip
    config = _probe_config(lab, tmp_path / "probe.toml")
    # The lab's collector is plain HTTP on a lab address: allowed only by the loud flag.
    probes = [Probe(url, tmp_path / f"volunteer-{n}", config, "--insecure-http") for n in range(2)]
    for probe in probes:
        probe.argv = in_netns(lab.ns.client, ["env", f"PYTHONPATH={REPO}", *probe.argv])
        await probe.start()
    # Two probes enrolled openly within one hour are one voice: the operator vouches for
    # them (what PATCH /api/v1/probes/{id} {"vetted": true} does), so they count as two.
    await until(lambda: _vet_all(db) == 2, 120, "both probes registered")
    blocking = scenarios.load(scenarios.SCENARIO_DIR / "dns-nxdomain.toml", lab.plan)
    try:
        await until(lambda: all(p.history() for p in probes), 120, "first uploads")
        for action in blocking.actions:
            lab.censor.apply(action)
        await until(lambda: bool(_opened(received)), 180, "incident.opened webhook")
    finally:
        lab.censor.clear_all()
        for probe in probes:
            await probe.stop()
    telegram = [
        d for d in _opened(received) if json.loads(d["body"])["data"]["service"] == "telegram"
    ]
    assert telegram, received.read_text()
    delivery = telegram[0]
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    payload = Webhook(secret.group(0)).verify(delivery["body"], headers)
    assert payload["data"]["cc"] == "KZ"
    assert "dns.nxdomain" in payload["data"]["methods"]
    assert payload["data"]["status"] == "open"
    assert payload["data"]["rules_version"] == RULES_VERSION
    assert set(payload["data"]["rules"]) & {"block.open.strong", "block.open.pattern"}
    assert [e["title"] for e in payload["data"]["events"]] == ["Evening stream"]
