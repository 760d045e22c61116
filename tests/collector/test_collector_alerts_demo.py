"""``censorwatch demo`` shows a newcomer the signed alert, end to end, on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.paths import checkout_env


@pytest.mark.slow
def test_demo_prints_the_verified_alert(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector", "demo", "--probe-interval", "3", "--censor-after", "5"],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature valid" in done.stdout
    assert '"type": "incident.opened"' in done.stdout
    assert "Opposition livestream" in done.stdout
    assert '"status": "open"' in done.stdout  # three vetted probes: confirmed
    assert "block.open.strong" in done.stdout
