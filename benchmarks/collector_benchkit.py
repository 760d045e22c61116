"""Shared pieces of the collector benchmarks: realistic measurements and a running collector.

Benchmarks print figures and assert nothing about time. Run them from the repository root,
e.g. ``python -m benchmarks.collector_ingest``; each starts its own throwaway PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from collector.demo.servers.base import free_port
from collector.store import migrate
from collector.store.db import Database
from probe import model

SERVICES = (
    "telegram",
    "whatsapp",
    "signal",
    "instagram",
    "youtube",
    "x",
    "tiktok",
    "vk",
    "facebook",
    "viber",
)


async def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision, as ``censorwatch db upgrade``
    does."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()


def realistic(
    probe_id: str | None,
    rng: random.Random,
    start: dt.datetime,
    placed: Placement | None = None,
) -> model.Measurement:
    """About 2 KB of JSON: DNS on two resolvers, TCP, TLS with SNI and control SNI; with
    ``placed``, claiming that network and carrying its attestation, as a checked-in probe's."""
    service = rng.choice(SERVICES)
    host = f"web.{service}.org"
    verdict: model.Verdict = rng.choices(("ok", "blocked", "anomaly"), (8, 1, 1))[0]
    failure = {"ok": None, "blocked": "connection_reset", "anomaly": "generic_timeout_error"}[
        verdict
    ]
    answers = [
        model.DNSAnswer(rrtype="A", data=f"149.154.167.{rng.randrange(256)}", ttl=300)
        for _ in range(2)
    ]

    def dns(role: model.Role, resolver: str) -> model.DNSObservation:
        return model.DNSObservation(
            hostname=host, query_type="A", resolver=resolver, role=role, t0=0.001, t=0.02,
            responses=[model.DNSResponse(t=0.02, rcode="NOERROR", answers=answers)],
        )  # fmt: skip

    def tls(role: model.Role, fail: str | None) -> model.TLSObservation:
        certificate = model.Certificate(
            sha256=f"{rng.getrandbits(256):064x}", subject=f"CN={host}", issuer="CN=Example CA G2",
            not_before="2024-01-01T00:00:00Z", not_after="2026-01-01T00:00:00Z", san=[host, f"*.{host}"],
        )  # fmt: skip
        return model.TLSObservation(
            ip=answers[0].data, port=443, sni=host if role == "network" else "example.com", role=role,
            t0=0.08, t=0.16, failure=fail, tls_version=None if fail else "TLSv1.3",
            certificate=None if fail else certificate, verified=None if fail else True,
        )  # fmt: skip

    by_verdict: dict[str, list[model.Method]] = {
        "blocked": ["tls.reset"],
        "anomaly": ["tls.timeout"],
    }
    methods = by_verdict.get(verdict, [])
    endpoint = model.Endpoint(port=443, host=host)
    return model.Measurement(
        id=uuid.uuid4(), format_version=model.FORMAT_VERSION,
        software=model.Software(name="censorwatch-probe", version="0.1.0"),
        probe=model.ProbeInfo(
            id=probe_id, asn=placed.asn if placed else rng.choice((9198, 21299, 35104, 48716)),
            cc="KZ", attestation=placed.attestation if placed else None,
        ),
        service=service, category="messenger", start_time=start, runtime=0.4,
        endpoints=[endpoint],
        observations=[
            dns("network", "system"), dns("control", "https://dns.example/dns-query"),
            model.TCPObservation(ip=answers[0].data, port=443, t0=0.03, t=0.07),
            tls("network", failure), tls("control", None),
        ],
        analysis=model.Analysis(
            verdict=verdict, methods=methods, confidence=0.9, rules=[f"tls.{verdict}"], rules_version="1",
            endpoints=[model.EndpointAnalysis(endpoint=endpoint.label, verdict=verdict, methods=methods)],
            evidence=[f"{host}: {failure}"] if failure else [],
        ),
    )  # fmt: skip


def http_json(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict[str, object]:
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def listening(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4): one per ``serve`` worker."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for line in lines if line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")
    )


@dataclass(frozen=True)
class Placement:
    """Where the collector placed a probe at check-in, and the attestation saying so."""

    asn: int
    attestation: str


# The benchmark's loopback senders, placed as a real collector places probes: by its table.
ASN_TABLE: Final = "127.0.0.0\t127.255.255.255\t9198\tKZ\tTEST-KZ\n"


class Server:
    """``censorwatch serve`` as a subprocess; ``extra``: more of its flags; ``tree``: a
    source tree to run it from (another checkout's ``collector``, ``probe`` and ``lab``
    come first on the path of ``python -m``) instead of the installed one."""

    def __init__(
        self, workdir: Path, db_url: str, *extra: str, workers: int = 1, tree: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "CENSORWATCH_RATE_PER_SECOND": "0",
            "CENSORWATCH_RATE_BYTES_PER_SECOND": "0",
            "CENSORWATCH_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "collector", "serve", "--db", db_url,
                   "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(workdir), "--workers", str(workers), *extra]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=tree)
        for _ in range(600):
            try:
                http_json("GET", self.url + "/readyz")
                if listening(self.port) >= self.workers:  # the others start after the first
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not become ready")

    def probe_token(self) -> tuple[str, str]:
        admin = {"Authorization": "Bearer " + (self.workdir / "admin-token").read_text().strip()}
        enrolment = http_json("POST", self.url + "/api/v1/enrolment-tokens", b"{}", admin)["token"]
        probe = http_json(
            "POST", self.url + "/api/v1/probes", b"", {"Authorization": f"Bearer {enrolment}"}
        )
        return str(probe["probe_id"]), str(probe["token"])

    def check_in(self, token: str) -> Placement:
        """The probe's check-in: where the collector places it (``--ip-asn-db`` needed)."""
        headers = {"Authorization": f"Bearer {token}"}
        found = http_json("POST", self.url + "/api/v1/probes/check-in", b"", headers)
        attestation, asn = found.get("attestation"), found.get("asn")
        assert isinstance(attestation, str), "the collector placed no probe: give --ip-asn-db"
        return Placement(int(str(asn)), attestation)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
