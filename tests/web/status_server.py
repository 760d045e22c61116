"""A real ``censorwatch serve`` process holding the status-page scenario."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from collector.demo.servers.base import free_port
from lab.paths import REPO_ROOT, checkout_env
from tests.web.scenario import Scenario, asn_table, load, seed_store

SETTINGS: Final = {
    "CENSORWATCH_RATE_PER_SECOND": "0",
    "CENSORWATCH_ALERT_INTERVAL_SECONDS": "0.3",
    "CENSORWATCH_ALERT_SETTLE_SECONDS": "0",
    "CENSORWATCH_DELIVERY_INTERVAL_SECONDS": "0",
    "CENSORWATCH_METRICS_REFRESH_SECONDS": "1",
}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


class StatusServer:
    def __init__(self, workdir: Path, db_url: str | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url or f"sqlite:///{workdir / 'collector.sqlite3'}"
        self.scenario = Scenario(dt.datetime.now(dt.UTC))
        self.log = workdir / "serve.log"

    def start(self) -> None:
        (self.workdir / "ip2asn.tsv").write_text(asn_table())
        asyncio.run(seed_store(self.db_url, self.scenario))
        command = [
            sys.executable, "-m", "collector.cli", "serve", "--db", self.db_url,
            "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.workdir / "data"),
            "--ip-asn-db", str(self.workdir / "ip2asn.tsv"),
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env={**checkout_env(), **SETTINGS},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._wait(lambda: get(self.url + "/readyz")[0] == 200, "ready")
        token = (self.workdir / "data" / "admin-token").read_text().strip()
        asyncio.run(load(self.url, token, self.scenario))
        self._wait(self._blocked, "the Telegram incident")

    def _blocked(self) -> bool:
        status, _, body = get(self.url + "/api/v1/incidents?cc=KZ&status=open")
        return status == 200 and any(
            i["service"] == "telegram" for i in json.loads(body)["incidents"]
        )

    def _wait(self, done: object, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"collector exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if done():  # type: ignore[operator]
                    return
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(workdir: Path, db_url: str | None = None) -> Iterator[StatusServer]:
    server = StatusServer(workdir, db_url)
    try:
        server.start()
        yield server
    finally:
        if hasattr(server, "process"):
            server.stop()
