"""The probe's Debian package, built by ``scripts/build-deb`` for amd64 (the script builds arm64
and armhf the same way): lintian-clean, and on this machine installed offline, configured
through debconf, run as its unit runs it against a loopback collector, upgraded, removed and
purged."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.demo.servers import PKI
from lab.harness.daemons import Collector, probe_config, until
from lab.harness.loopback import world
from lab.paths import REPO_ROOT
from probe.daemon.consent import TEXT as CONSENT

from .conftest import SERVER_STACK

pytestmark = pytest.mark.slow

PACKAGE = "censorwatch-probe"
UNIT_SOURCE = REPO_ROOT / "deploy" / "systemd" / f"{PACKAGE}.service"
UNIT = Path("/lib/systemd/system") / f"{PACKAGE}.service"
VENV = Path("/opt/censorwatch-probe")
STATE = Path("/var/lib/censorwatch-probe")
ENV_FILE = Path("/etc/censorwatch/probe.env")
TOKEN_FILE = Path("/etc/censorwatch/enrolment-token")
SETTINGS = Path("/etc/censorwatch/probe.toml")
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not found")


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two versions of the amd64 package, 0.1.0-1 and 0.1.0-2, to upgrade from one to the other."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not found: not a Debian machine")
    out = tmp_path_factory.mktemp("debs")
    done = subprocess.run(
        [sys.executable, "scripts/build-deb", "--arch", "amd64", "--revision", "1,2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / f"{PACKAGE}_0.1.0-1_amd64.deb", out / f"{PACKAGE}_0.1.0-2_amd64.deb"


def contents(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True)
    return [line.split()[5].removeprefix(".") for line in listing.stdout.splitlines()]


def control_file(deb: Path, name: str, tmp_path: Path) -> str:
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "DEBIAN")], check=True)
    return (tmp_path / "DEBIAN" / name).read_text()


@needs_dpkg
def test_package_carries_the_probe_its_unit_and_no_server_stack(
    debs: tuple[Path, Path], tmp_path: Path
) -> None:
    deb, _ = debs
    files = contents(deb)
    wheels = [Path(f).name.lower() for f in files if f.endswith(".whl")]
    assert any(w.startswith("censorwatch-0") for w in wheels)
    for needed in ("aiohttp-", "cryptography-", "msgspec-", "dnspython-", "pip-"):
        assert any(w.startswith(needed) for w in wheels), needed
    assert not [w for w in wheels if w.startswith(SERVER_STACK)]
    assert str(UNIT) in files
    assert "/usr/bin/censorwatch-probe" in files
    assert not [f for f in files if f.startswith("/opt")]  # built by postinst
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    assert (tmp_path / "root" / UNIT.relative_to("/")).read_bytes() == UNIT_SOURCE.read_bytes()
    templates = control_file(deb, "templates", tmp_path)
    assert "Your IP address is not in any measurement" in templates
    assert CONSENT.splitlines()[2].strip() in templates
    control = control_file(deb, "control", tmp_path)
    assert "Architecture: amd64" in control
    assert "python3 (>= 3.11), python3 (<< 3.12)" in control


@needs_dpkg
def test_package_is_lintian_clean(debs: tuple[Path, Path]) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (scripts/install-test-deps installs it as root)")
    for deb in debs:
        done = subprocess.run(
            ["lintian", "--fail-on", "error,warning", "--pedantic", str(deb)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:", "P:")]
        assert done.returncode == 0, done.stdout + done.stderr
        assert tags == []


def dpkg(*args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["unshare", "--net", *args] if offline else list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def preseed(**answers: tuple[str, str]) -> None:
    lines = "".join(
        f"{PACKAGE} {PACKAGE}/{name} {kind} {value}\n" for name, (kind, value) in answers.items()
    )
    subprocess.run(["debconf-set-selections"], input=lines, text=True, check=True)


def debconf_value(question: str) -> str | None:
    """The answer debconf holds, None when it has no such question."""
    done = subprocess.run(
        ["debconf-communicate", PACKAGE], input=f"GET {PACKAGE}/{question}\n",
        capture_output=True, text=True,
    )  # fmt: skip
    code, _, value = done.stdout.strip().partition(" ")
    return value if code == "0" else None


def installed_version() -> str | None:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status} ${Version}", PACKAGE], capture_output=True, text=True
    )
    status = done.stdout.split()
    return status[-1] if done.returncode == 0 and "installed" in status[:3] else None


def unit_command(settings: dict[str, str]) -> tuple[str, list[str]]:
    """The unit's User= and ExecStart=, with its environment file's values put in."""
    text = UNIT.read_text().replace("\\\n", " ")
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    argv = shlex.split(lines["ExecStart"])
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: settings[m.group(1)], a) for a in argv]
    found = shutil.which(argv[0], path="/usr/local/bin:/usr/bin")
    assert found is not None, f"{argv[0]} is not where systemd looks"
    return lines["User"], [found, *argv[1:]]


def unit_argv(user: str) -> tuple[str, list[str]]:
    """The unit's command, with its environment file and its credential as systemd gives
    them: LoadCredential= copies the token file into a directory only the unit can read."""
    settings = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    credentials = Path(tempfile.mkdtemp(prefix="cw-credentials-"))
    shutil.copy(TOKEN_FILE, credentials / "enrolment-token")
    account = pwd.getpwnam(user)
    for path in (credentials, credentials / "enrolment-token"):
        os.chown(path, account.pw_uid, account.pw_gid)
    settings["CREDENTIALS_DIRECTORY"] = str(credentials)
    return unit_command(settings)


def read_log(log: Path) -> str:
    return log.read_text(errors="replace")


async def run_as_unit(collector: Collector, until_count: int, log: Path) -> None:
    """The unit's command as its user, until the collector holds ``until_count`` measurements."""
    user, argv = await asyncio.to_thread(unit_argv, PACKAGE)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, user=user, group=user, extra_groups=[], cwd="/", stdout=out, stderr=out,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )  # fmt: skip
    try:

        async def arrived() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"the probe exited: {read_log(log)}")
            return len(await collector.measurements()) >= until_count

        await until(arrived, 90, f"{until_count} measurements at the collector", interval=0.5)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)


@pytest.fixture
def clean_machine() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("installing a Debian package needs root (CI runs as root)")
    if shutil.which("unshare") is None or shutil.which("debconf-set-selections") is None:
        pytest.skip("unshare or debconf-set-selections is missing")
    if installed_version() is not None:
        pytest.skip(f"{PACKAGE} is installed on this machine already; the test would purge it")
    subprocess.run(
        ["debconf-communicate", PACKAGE], input="PURGE\n", capture_output=True, text=True
    )
    yield
    dpkg("dpkg", "--purge", PACKAGE)


def readable_copy(path: Path, into: Path) -> Path:
    target = into / path.name
    shutil.copy2(path, target)
    target.chmod(0o644)
    return target


def install_offline_unattended(deb: Path) -> pwd.struct_passwd:
    """Nobody answers debconf: installed, but without consent it may not measure."""
    done = dpkg("dpkg", "-i", str(deb), offline=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version() == "0.1.0-1"
    assert "dpkg-reconfigure censorwatch-probe" in done.stderr
    assert not ENV_FILE.exists()  # the unit's ConditionPathExists= keeps it from starting
    user = pwd.getpwnam(PACKAGE)
    assert user.pw_uid < 1000
    assert user.pw_shell == "/usr/sbin/nologin"
    assert STATE.stat().st_uid == user.pw_uid
    assert STATE.stat().st_mode & 0o777 == 0o700
    assert (VENV / "bin" / "python3").resolve() == Path("/usr/bin/python3").resolve()
    version = subprocess.run(["/usr/bin/censorwatch-probe", "--version"], capture_output=True)
    assert version.stdout.decode().strip() == "censorwatch-probe 0.1.0"
    for module in SERVER_STACK:
        imported = subprocess.run([str(VENV / "bin" / "python3"), "-c", f"import {module}"])
        assert imported.returncode == 1, module
    if shutil.which("systemd-analyze"):
        verified = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True)
        assert verified.returncode == 0, verified.stderr.decode()
    return user


def consent_through_debconf(collector_url: str) -> None:
    """Consent and the collector through debconf; the token goes to the 0600 file only."""
    preseed(consent=("boolean", "true"), collector=("string", collector_url),
            token=("password", "cwe_only_in_the_file"))  # fmt: skip
    done = dpkg("dpkg-reconfigure", PACKAGE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ENV_FILE.stat().st_mode & 0o777 == 0o600
    assert ENV_FILE.read_text() == f"CENSORWATCH_COLLECTOR={collector_url}\n"
    assert TOKEN_FILE.stat().st_mode & 0o777 == 0o600
    assert TOKEN_FILE.read_text() == "cwe_only_in_the_file\n"  # never in the unit's command line
    assert debconf_value("token") == ""
    # This collector has open enrolment and would refuse a token it never issued.
    TOKEN_FILE.write_text("\n")


def loopback_settings(settings: str, files: list[Path]) -> Path:
    """The volunteer's own settings: the loopback internet, in files the probe's user reads."""
    shared = Path(tempfile.mkdtemp(prefix="cw-deb-"))
    shared.chmod(0o755)
    for original in files:
        settings = settings.replace(str(original), str(readable_copy(original, shared)))
    SETTINGS.write_text(settings)
    return shared


def upgrade_keeps_what_is_the_volunteers(deb: Path, uid: int) -> None:
    kept = {path: path.read_bytes() for path in (ENV_FILE, SETTINGS, STATE / "credentials.json")}
    assert (STATE / "credentials.json").stat().st_uid == uid
    assert (VENV / ".package-version").read_text() == "0.1.0-1\n"
    done = dpkg("dpkg", "-i", str(deb), offline=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version() == "0.1.0-2"
    assert (VENV / ".package-version").read_text() == "0.1.0-2\n"  # a new venv
    assert pwd.getpwnam(PACKAGE).pw_uid == uid
    assert {path: path.read_bytes() for path in kept} == kept


def withdraw_consent() -> None:
    preseed(consent=("boolean", "false"))
    done = dpkg("dpkg-reconfigure", PACKAGE)
    assert done.returncode == 0, done.stderr
    assert not ENV_FILE.exists()
    assert not TOKEN_FILE.exists()


def remove_then_purge() -> None:
    """Remove keeps settings and measurements; purge leaves nothing behind."""
    done = dpkg("dpkg", "--remove", PACKAGE)
    assert done.returncode == 0, done.stderr
    assert not VENV.exists()
    assert not Path("/usr/bin/censorwatch-probe").exists()
    assert (STATE / "credentials.json").exists()
    assert SETTINGS.exists()
    done = dpkg("dpkg", "--purge", PACKAGE)
    assert done.returncode == 0, done.stderr
    for gone in (STATE, Path("/etc/censorwatch"), UNIT,
                 Path("/etc/systemd/system/multi-user.target.wants") / UNIT.name):  # fmt: skip
        assert not gone.exists(), gone
    with pytest.raises(KeyError):
        pwd.getpwnam(PACKAGE)
    assert debconf_value("consent") is None
    assert installed_version() is None


async def test_install_configure_run_upgrade_remove_purge(
    debs: tuple[Path, Path], clean_machine: None, tmp_path: Path
) -> None:
    first, second = debs
    user = await asyncio.to_thread(install_offline_unattended, first)
    log = tmp_path / "probe.log"
    async with world(PKI(tmp_path / "pki"), tmp_path) as w:
        collector = Collector(tmp_path)
        await collector.start()
        try:
            await asyncio.to_thread(consent_through_debconf, collector.url)
            settings = probe_config(w, tmp_path).read_text()
            shared = await asyncio.to_thread(
                loopback_settings, settings, [w.targets, w.pki.ca_file]
            )
            await run_as_unit(collector, 1, log)
            await asyncio.to_thread(upgrade_keeps_what_is_the_volunteers, second, user.pw_uid)
            before = len(await collector.measurements())
            await run_as_unit(collector, before + 1, log)
            probes = {m["probe"]["id"] for m in await collector.measurements()}
            assert len(probes) == 1  # the upgraded probe did not enrol again
            await asyncio.to_thread(withdraw_consent)
            await asyncio.to_thread(shutil.rmtree, shared)
        finally:
            await collector.stop()
    await asyncio.to_thread(remove_then_purge)
