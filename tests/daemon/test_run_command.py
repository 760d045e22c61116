"""``censorwatch-probe run`` refuses to start without consent or with bad settings: one clear
line and exit status 2; the state directory and credentials are private."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from lab.paths import REPO_ROOT as REPO
from probe.daemon import consent
from probe.daemon.state import Credentials, StateDir, default_dir


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe.cli", "run", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        timeout=60,
    )


def test_no_consent_no_measurement(tmp_path: Path) -> None:
    done = _run("--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "s"))
    assert done.returncode == 2
    assert "--accept-consent" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "s" / "consent.json").exists()


def test_bad_settings_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "probe.toml"
    config.write_text("[schedule]\nintervall_seconds = 5\n")
    done = _run(
        "--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "s"),
        "--config", str(config), "--accept-consent",
    )  # fmt: skip
    assert done.returncode == 2
    assert "schedule.intervall_seconds" in done.stderr
    assert "Traceback" not in done.stderr


def test_consent_recorded_once_and_files_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state").ensure()
    consent.ensure(state, True, sys.stdin, sys.stderr)
    assert consent.recorded(state)
    state.save_credentials(Credentials("http://c", "p", "cwp_secret"))
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    assert stat.S_IMODE((state.path / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((state.path / "consent.json").stat().st_mode) == 0o600
    assert state.credentials("http://other") is None


def test_default_state_directory() -> None:
    assert default_dir({"STATE_DIRECTORY": "/var/lib/x"}, 1000) == Path("/var/lib/x")
    assert default_dir({}, 0) == Path("/var/lib/censorwatch-probe")
    assert default_dir({"XDG_STATE_HOME": "/h/s"}, 1000) == Path("/h/s/censorwatch-probe")
