"""``censorwatch demo`` shows a newcomer the signed alert, end to end, on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.paths import REPO_ROOT, checkout_env


@pytest.mark.slow
def test_demo_prints_the_verified_alert() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "collector", "demo", "--probe-interval", "3", "--censor-after", "5"],
        cwd=REPO_ROOT, env=checkout_env(), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature valid" in done.stdout
    assert '"type": "incident.opened"' in done.stdout
    assert "Opposition livestream" in done.stdout
    # correlation over the calendar's recurring series, with what the figure rests on
    assert "livestreams of this series; p = " in done.stdout
    assert "comparable windows without one" in done.stdout
    assert "of the last 1 livestream" not in done.stdout
    assert '"status": "open"' in done.stdout  # three vetted probes: confirmed
    assert "block.open.strong" in done.stdout
