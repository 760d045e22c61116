"""``censorwatch demo --keep`` prints the status page's address and serves it until Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.paths import REPO_ROOT, checkout_env
from tests.web.status_server import get


def _interruptible() -> None:
    """Ctrl-C's default in the demo, whatever this run inherited: a shell starts background
    jobs with SIGINT ignored, and an ignored SIGINT stays ignored across exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_kept_demo_serves_the_status_page_until_interrupted(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "demo", "--keep",
             "--probe-interval", "3", "--censor-after", "5"],
            cwd=REPO_ROOT, env=checkout_env(), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_interruptible,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        url = None
        while time.monotonic() < deadline and process.poll() is None:
            for line in output.read_text().splitlines():
                if line.startswith("status page: http://") and "Ctrl-C" in line:
                    url = line.split()[2]
            if url:
                break
            time.sleep(0.3)
        assert url is not None, output.read_text()
        assert "signature valid" in output.read_text()
        status, _, body = get(url)
        assert status == 200
        html = body.decode()
        assert "Telegram blocked in Kazakhstan" in html
        assert "Opposition livestream" in html
        time.sleep(1)
        assert process.poll() is None  # still serving
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
