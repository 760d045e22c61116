"""The collector under test, in process or as a real ``censorwatch serve`` subprocess."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient, TestServer

from collector.app import build_state, create_app
from collector.auth import AuthError, utc_now
from collector.config import Config
from collector.demo.servers.base import free_port
from collector.enrolment import attestation, probes
from collector.state import STATE, State
from probe import model


@dataclass
class Collector:
    """A collector under test and the calls a probe or an admin makes to it."""

    client: TestClient[Any, Any]
    state: State
    issued: dict[tuple[str, str, int, dt.datetime], str] = field(default_factory=dict)

    @property
    def admin_headers(self) -> dict[str, str]:
        token = self.state.config.admin_token_path.read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    async def enrolment_token(self, **options: Any) -> str:
        response = await self.client.post(
            "/api/v1/enrolment-tokens", json=options, headers=self.admin_headers
        )
        assert response.status == 201, await response.text()
        return str((await response.json())["token"])

    async def register(self, *, control: bool = False) -> tuple[str, str]:
        """A new probe's (id, token)."""
        token = await self.enrolment_token(control=control)
        response = await self.client.post(
            "/api/v1/probes", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 201, await response.text()
        body = await response.json()
        return body["probe_id"], body["token"]

    async def attestation(
        self, token: str, cc: str, asn: int, at: dt.datetime | None = None
    ) -> str | None:
        """What check-in at ``at`` (default now) would have given this probe had it checked
        in from that network; None for a token the collector refuses."""
        hour = (at or utc_now()).replace(minute=0, second=0, microsecond=0)
        if (token, cc, asn, hour) in self.issued:
            return self.issued[(token, cc, asn, hour)]
        async with self.state.db.writing() as connection:
            try:
                probe = await probes.authenticate(connection, f"Bearer {token}")
            except AuthError:
                return None
            key = await attestation.ensure_key(self.state.db, connection, utc_now())
        text = attestation.issue(probe.id, cc, asn, hour, key)
        self.issued[(token, cc, asn, hour)] = text
        return text

    async def attested(
        self, token: str, items: Sequence[model.Measurement]
    ) -> list[model.Measurement]:
        """Each measurement with an attestation for the network it claims, as a probe that
        checked in from there when it measured would send it."""
        out = []
        for m in items:
            info = m.probe
            if info.attestation is None and info.cc is not None and info.asn is not None:
                text = await self.attestation(token, info.cc, info.asn, m.start_time)
                m = msgspec.structs.replace(
                    m, probe=msgspec.structs.replace(info, attestation=text)
                )
            out.append(m)
        return out

    async def vet(self, probe_id: str, vetted: bool = True) -> dict[str, Any]:
        response = await self.client.patch(
            f"/api/v1/probes/{probe_id}", json={"vetted": vetted}, headers=self.admin_headers
        )
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def ingest(
        self,
        token: str,
        items: Sequence[model.Measurement] | bytes,
        *,
        gzipped: bool = False,
        content_type: str = "application/json",
        attest: bool = True,
    ) -> tuple[int, Any]:
        """Upload a batch; unless ``attest`` is False, each claim comes with an attestation."""
        if not isinstance(items, bytes) and attest:
            items = await self.attested(token, items)
        if isinstance(items, bytes):
            body = items
        elif content_type == "application/x-ndjson":
            body = b"\n".join(model.encode(m) for m in items)
        else:
            body = b"[" + b",".join(model.encode(m) for m in items) + b"]"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        response = await self.client.post(
            "/api/v1/measurements", data=io.BytesIO(body), headers=headers
        )
        return response.status, await response.json()

    async def get_json(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> tuple[int, Any]:
        response = await self.client.get(path, params=params, headers=headers)
        return response.status, await response.json()


async def start_collector(config: Config) -> Collector:
    state = build_state(config)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(state)))
    await client.start_server()
    return Collector(client, client.app[STATE] if client.app else state)


class ServerProcess:
    """``censorwatch serve`` in a real subprocess, with its output kept in files."""

    def __init__(
        self, workdir: Path, db_url: str, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = workdir / f"serve-{self.port}.out"
        self.stderr = workdir / f"serve-{self.port}.err"
        command = [
            sys.executable, "-m", "collector", "serve", "--db", db_url,
            "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(workdir / "data"), *extra,
        ]  # fmt: skip
        environment = {**os.environ, "CENSORWATCH_RATE_PER_SECOND": "0", **(env or {})}
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=environment)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited {self.process.returncode}: {self.output()}")
            with contextlib.suppress(OSError):
                if http("GET", self.url + "/readyz")[0] == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"collector not ready in {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def admin_headers(self) -> dict[str, str]:
        token = (self.workdir / "data" / "admin-token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def register(self) -> str:
        """A new probe's token."""
        status, body = http(
            "POST", self.url + "/api/v1/enrolment-tokens", b"{}", self.admin_headers()
        )
        assert status == 201, body
        enrolment = json.loads(body)["token"]
        status, body = http(
            "POST", self.url + "/api/v1/probes", headers={"Authorization": f"Bearer {enrolment}"}
        )
        assert status == 201, body
        return str(json.loads(body)["token"])

    def enrol_vetted(self) -> tuple[str, dict[str, Any]]:
        """A new probe, vetted by the operator, and its first check-in (network, attestation)."""
        status, body = http(
            "POST", self.url + "/api/v1/enrolment-tokens", b"{}", self.admin_headers()
        )
        assert status == 201, body
        enrolment = json.loads(body)["token"]
        status, body = http(
            "POST", self.url + "/api/v1/probes", headers={"Authorization": f"Bearer {enrolment}"}
        )
        assert status == 201, body
        probe = json.loads(body)
        headers = {**self.admin_headers(), "Content-Type": "application/json"}
        vet = json.dumps({"vetted": True}).encode()
        status, body = http("PATCH", f"{self.url}/api/v1/probes/{probe['probe_id']}", vet, headers)
        assert status == 200, body
        token = probe["token"]
        auth = {"Authorization": f"Bearer {token}"}
        status, body = http("POST", self.url + "/api/v1/probes/check-in", b"", auth)
        assert status == 200, body
        return token, json.loads(body)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()
