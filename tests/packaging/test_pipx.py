"""pipx, the second way in: ``pipx install`` of a built wheel gives the probe's command with
the probe's dependencies only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import clean_env

pytestmark = pytest.mark.slow


def test_pipx_installs_the_probe_from_a_wheel(wheel: Path, tmp_path: Path) -> None:
    pipx = shutil.which("pipx")
    if pipx is None:
        pytest.skip("pipx is not installed (scripts/install-test-deps installs Debian's as root)")
    env = {
        **clean_env(),
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
    }
    done = subprocess.run(
        [pipx, "install", str(wheel)], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    probe = tmp_path / "bin" / "censorwatch-probe"
    version = subprocess.run([str(probe), "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.strip() == "censorwatch-probe 0.1.0"
    helped = subprocess.run([str(probe), "run", "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0
    listed = subprocess.run(
        [pipx, "runpip", "censorwatch", "list", "--format=freeze"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "aiohttp" in names
    assert not names & {"sqlalchemy", "alembic", "asyncpg", "aiosqlite"}
    collector = subprocess.run(
        [str(tmp_path / "bin" / "censorwatch"), "serve"], capture_output=True, text=True, env=env
    )
    assert collector.returncode == 2
    assert "censorwatch[collector]" in collector.stderr
