"""A full disk, made real: the state directory on a 2 MiB tmpfs, filled to the last byte.
Measuring goes on, the drops are counted and written once there is room again, ``status``
says so, and a restart on the full disk does not crash-loop. Mounting a tmpfs needs root."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.harness.daemons import Probe, probe_config, until
from lab.harness.loopback import World
from lab.harness.samples import measurement
from lab.paths import REPO_ROOT
from probe.daemon import consent
from probe.daemon.spool import Spool
from probe.daemon.state import StateDir
from tests.daemon.faults import FaultyCollector

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_drops_and_counts_instead_of_raising(small_disk: Path) -> None:
    state = StateDir(small_disk / "state").ensure()
    spool = Spool(state.spool_path)
    try:
        assert spool.add([measurement()]) == 1
        filler = fill(small_disk)
        offered, kept = 0, 0
        while spool.disk_full_since is None and offered < 500:
            offered += 1
            kept += spool.add([measurement()])
        assert spool.disk_full_since is not None
        spool.set_status({"next_run": 1.0})  # best effort, no exception
        spool.acknowledge({})
        with pytest.raises(OSError, match="No space left") as caught:
            state.write_json("check-in.json", {"probe_id": "p"})
        assert caught.value.errno == errno.ENOSPC
        assert not list(state.path.glob("*.tmp"))
        dropped = spool.counters()["dropped_disk_full"]
        assert dropped == offered - kept >= 1
        filler.unlink()
        assert spool.add([measurement()]) == 1
        assert spool.disk_full_since is None
    finally:
        spool.close()
    again = Spool(state.spool_path)
    try:
        assert again.counters()["dropped_disk_full"] == dropped  # written once there was room
        assert again.depth() == 2 + kept
    finally:
        again.close()


def _status(state: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "status", "--state-dir", str(state), *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


async def _facts(state: Path) -> dict[str, Any]:
    """``status --json``, off the event loop (the loopback world keeps answering)."""
    value = json.loads(await asyncio.to_thread(_status, state, "--json"))
    assert isinstance(value, dict)
    return value


@pytest.fixture
async def faulty(internet: World) -> AsyncIterator[FaultyCollector]:
    server = FaultyCollector(internet.targets.read_text(), [])
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.mark.slow
async def test_the_daemon_keeps_measuring_on_a_full_disk(
    internet: World, faulty: FaultyCollector, small_disk: Path, tmp_path: Path
) -> None:
    state = small_disk / "state"
    probe = Probe(faulty.url, state, probe_config(internet, tmp_path))
    probe.log = tmp_path / "probe.log"  # the log is not on the full disk
    await probe.start()
    await until(lambda: faulty.accepted, 40, "a first upload")
    filler = fill(small_disk)
    await until(lambda: "is full" in probe.output(), 40, "the daemon noticing the full disk")
    rounds = probe.output().count(" round: ")
    await until(lambda: probe.output().count(" round: ") >= rounds + 3, 40, "three more rounds")
    assert probe.process is not None
    assert probe.process.returncode is None, probe.output()
    assert (await _facts(state))["disk_full"] is True
    shown = await asyncio.to_thread(_status, state)
    assert shown.startswith("DISK FULL (0 bytes free): measuring goes on")
    assert await probe.stop() == 0, probe.output()

    # A restart while the disk is still full measures on; it does not crash-loop.
    await probe.start()
    rounds = probe.output().count(" round: ")
    await until(
        lambda: probe.output().count(" round: ") >= rounds + 3, 40, "rounds after a restart"
    )
    assert probe.process.returncode is None, probe.output()

    filler.unlink()

    async def drops_written() -> bool:
        return bool((await _facts(state))["dropped"].get("dropped_disk_full", 0) > 0)

    await until(drops_written, 40, "the drops written down once there is room")
    uploaded = len(faulty.accepted)
    await until(lambda: len(faulty.accepted) > uploaded, 40, "uploads after the disk has room")
    assert await probe.stop() == 0, probe.output()
    assert "Traceback" not in probe.output()


def test_a_first_start_on_a_full_disk_is_one_clear_line(small_disk: Path) -> None:
    state = StateDir(small_disk / "state").ensure()
    consent.ensure(state, True, sys.stdin, sys.stderr)
    fill(small_disk)
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "run", "--collector", "http://127.0.0.1:9",
         "--state-dir", str(state.path), "--accept-consent"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1  # not 2 or 3: systemd tries again, and room may come back
    assert "the spool cannot be opened: database or disk is full" in done.stderr
    assert "Traceback" not in done.stderr
