"""Real processes for the daemon's tests: a ``censorwatch serve`` subprocess on SQLite, the
loopback world of ``lab.harness.loopback`` as the internet, and ``censorwatch-probe run``
as a subprocess with a short schedule. Every wait here is async, so the world's servers
keep answering while a test waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from collector.demo.servers.base import free_port
from lab.harness.loopback import World
from lab.paths import REPO_ROOT, checkout_env


class Collector:
    """``censorwatch serve`` that can be stopped and started again on the same port and DB."""

    def __init__(self, workdir: Path, settings: dict[str, str] | None = None) -> None:
        """``settings``: extra ``CENSORWATCH_*`` environment variables for the server."""
        self.workdir = workdir
        self.settings = settings or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite:///{workdir / 'collector.sqlite3'}"
        self.process: asyncio.subprocess.Process | None = None
        self.log = workdir / "collector.log"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "collector", "serve", "--db", self.db,
                "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.workdir / "data"),
                "--open-enrolment", stdout=out, stderr=out, cwd=REPO_ROOT,
                env=checkout_env({**os.environ, "CENSORWATCH_RATE_PER_SECOND": "0", **self.settings}),
            )  # fmt: skip
        await until(self._ready, 30, "collector ready")

    async def _ready(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"collector exited: {self.log.read_text()}")
        try:
            status, _ = await request("GET", self.url + "/readyz")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)
        self.process = None

    def admin(self) -> dict[str, str]:
        token = (self.workdir / "data" / "admin-token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    async def measurements(self) -> list[dict[str, Any]]:
        """Every measurement the collector holds, as sent."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            url = f"{self.url}/api/v1/measurements?{urllib.parse.urlencode(query)}"
            status, body = await request("GET", url, headers=self.admin())
            assert status == 200, body
            page = json.loads(body)
            found += [r["measurement"] for r in page["results"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return found


async def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        return response.status, await response.read()


async def until(check: Callable[[], Any], seconds: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for: {what}")


def probe_config(world: World, directory: Path, batch_size: int = 500, **schedule: float) -> Path:
    assert world.network_dns is not None
    assert world.control_dns is not None
    options = {"interval_seconds": 0.5, "jitter_seconds": 0.1, **schedule}
    lines = [
        f'targets = "{world.targets}"',
        f'resolver = "127.0.0.53:{world.network_dns.port}"',
        f'control_resolvers = ["{world.control_dns.url}"]',
        f'ca_file = "{world.pki.ca_file}"',
        "timeout = 1.0",
        "check_in_seconds = 2.0",
        # These daemons are timed in fractions of a second (kills, outages); packet capture,
        # with its own tests, would add its start-up to every round.
        "raw_packets = false",
        "[schedule]",
        *(f"{k} = {v}" for k, v in options.items()),
        "[upload]",
        "idle_seconds = 0.3",
        f"batch_size = {batch_size}",
        "backoff_base_seconds = 0.2",
        "backoff_cap_seconds = 1.0",
    ]
    path = directory / "probe.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Probe:
    """``censorwatch-probe run`` as a subprocess; its stderr kept in a file."""

    def __init__(self, collector_url: str, state: Path, config: Path, *extra: str) -> None:
        self.argv = [
            sys.executable, "-m", "probe.cli", "run", "--collector", collector_url,
            "--state-dir", str(state), "--config", str(config), "--accept-consent", *extra,
        ]  # fmt: skip
        self.state = state
        self.log = state.parent / f"{state.name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdout=out, stderr=out, cwd=REPO_ROOT, env=checkout_env()
            )

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()
                raise AssertionError(
                    f"the probe ignored SIGTERM for 30 s; its log:\n{self.output()}"
                ) from None
        return self.process.returncode

    async def wait(self, seconds: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def history(self) -> dict[str, str]:
        """id → fate for every measurement ever spooled (read straight from the spool)."""
        return self._query("SELECT id, fate FROM history")

    def pending(self) -> dict[str, str]:
        return self._query("SELECT id, verdict FROM pending")

    def start_times(self) -> dict[str, str]:
        return self._query("SELECT id, start_time FROM history")

    def _query(self, sql: str) -> dict[str, str]:
        path = self.state / "spool.sqlite3"
        if not path.exists():
            return {}
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return dict(db.execute(sql).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise  # a failed read must not look like an empty spool
            return {}
        finally:
            db.close()
