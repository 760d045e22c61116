"""A wheel built from this checkout, and a fresh virtual environment with only the probe's
dependencies installed from it (as ``pip install censorwatch`` does for a volunteer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.paths import REPO_ROOT

# The collector extra's distributions; none of them belongs in a probe-only install.
SERVER_STACK = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "jinja2")


def clean_env() -> dict[str, str]:
    """This environment without anything that would let a subprocess import the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=300, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("censorwatch-*.whl")
    return built


@pytest.fixture(scope="session")
def probe_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("probe-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True, capture_output=True, timeout=600, cwd=venv, env=clean_env(),
    )  # fmt: skip
    return venv
