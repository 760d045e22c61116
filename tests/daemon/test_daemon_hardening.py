"""The daemon as a volunteer runs it, against hostile or broken surroundings: a collector
that pushes targets on the volunteer's LAN, a revoked token, a corrupt spool."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.harness.daemons import Probe, probe_config, until
from lab.harness.loopback import DC, World
from lab.paths import REPO_ROOT
from tests.daemon.faults import FaultyCollector

pytestmark = pytest.mark.slow


@pytest.fixture
async def faulty(internet: World) -> AsyncIterator[FaultyCollector]:
    server = FaultyCollector(internet.targets.read_text(), [])
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _pushed_config(internet: World, directory: Path, allow: bool) -> Path:
    """The test settings without a local target list: the collector's list is used."""
    path = probe_config(internet, directory)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("targets =")]
    lines.insert(0, f"allow_private_targets = {'true' if allow else 'false'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _status(state: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "status", "--state-dir", str(state), *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.mark.parametrize("allow", [False, True])
async def test_pushed_targets_on_local_addresses_need_the_allowance(
    internet: World, faulty: FaultyCollector, tmp_path: Path, allow: bool
) -> None:
    probe = Probe(faulty.url, tmp_path / "state", _pushed_config(internet, tmp_path, allow))
    await probe.start()
    try:
        await until(lambda: {"telegram", "news"} <= set(faulty.services), 40, "measurements")
        await until(lambda: not allow or "telegram_dc" in faulty.services, 20, "telegram_dc")
    finally:
        assert await probe.stop() == 0, probe.output()
    # telegram_dc is a fixed address on loopback; the rest are names.
    assert ("telegram_dc" in faulty.services) == allow
    refused = json.loads(await asyncio.to_thread(_status, probe.state, "--json"))["refused_targets"]
    if allow:
        assert refused == []
    else:
        assert [r for r in refused if r.startswith(f"telegram_dc {DC}:")] == refused
        assert refused
        assert "refused 1 target(s) on local addresses" in probe.output()


async def test_a_revoked_probe_says_how_to_enrol_again_and_does(
    internet: World, faulty: FaultyCollector, tmp_path: Path
) -> None:
    config = probe_config(internet, tmp_path)
    token_file = tmp_path / "enrolment-token"
    token_file.write_text("cwe_first\n")
    state = tmp_path / "state"
    probe = Probe(faulty.url, state, config, "--token-file", str(token_file))
    await probe.start()
    await until(lambda: faulty.accepted, 40, "a first upload")
    assert faulty.enrolments == ["Bearer cwe_first"]
    faulty.revoked = True
    assert await probe.wait(30) == 3, probe.output()
    advice = f"censorwatch-probe run --collector {faulty.url} --token-file FILE"
    assert advice in probe.output()
    assert "/proc" not in probe.output()
    shown = await asyncio.to_thread(_status, state)
    assert shown.startswith("TOKEN REVOKED at ")
    assert advice in shown

    # Started again with the same enrolment token: it stops at once, asking no one.
    again = Probe(faulty.url, state, config, "--token-file", str(token_file))
    await again.start()
    assert await again.wait(30) == 3, again.output()
    assert advice in again.output()
    assert len(faulty.enrolments) == 1

    # With a new one (here on the command line, which works but warns) it enrols again.
    renewed = Probe(faulty.url, state, config, "--token", "cwe_second")
    await renewed.start()
    try:
        await until(lambda: len(faulty.enrolments) == 2, 30, "enrolling again")
        uploaded = len(faulty.accepted)
        await until(lambda: len(faulty.accepted) > uploaded, 40, "uploads as the new probe")
    finally:
        assert await renewed.stop() == 0, renewed.output()
    assert faulty.enrolments[1] == "Bearer cwe_second"
    assert "visible to every user of this machine in /proc" in renewed.output()
    facts = json.loads(await asyncio.to_thread(_status, state, "--json"))
    assert facts["revoked"] is None
    assert facts["quarantined"] >= 1  # what the revoked probe measured is not sent as the new one
    assert "of the revoked probe p-1 are quarantined" in renewed.output()


async def test_a_corrupt_spool_is_moved_aside_and_measuring_goes_on(
    internet: World, faulty: FaultyCollector, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "spool.sqlite3").write_bytes(b"this is not an SQLite database\n" * 200)
    probe = Probe(faulty.url, state, probe_config(internet, tmp_path))
    await probe.start()
    try:
        await until(lambda: faulty.accepted, 40, "uploads from a new spool")
    finally:
        assert await probe.stop() == 0, probe.output()
    aside = list(state.glob("spool.sqlite3.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not")
    assert "moved it aside" in probe.output()
    shown = await asyncio.to_thread(_status, state)
    assert "spool reset" in shown
    assert aside[0].name in shown
