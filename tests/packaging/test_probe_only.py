"""``pip install censorwatch`` is the probe alone: its commands run, the collector's server
stack is not there, and the collector's command says which extra it needs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from censorwatch.extras import requirements_of
from collector.demo.servers import PKI
from lab.harness.loopback import verdicts, world

from .conftest import SERVER_STACK, clean_env

pytestmark = pytest.mark.slow


def run(venv: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / command), *args],
        capture_output=True, text=True, timeout=120, cwd=venv, env=clean_env(),
    )  # fmt: skip


def wheel_requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode()).get_all("Requires-Dist") or []


def test_the_wheel_declares_the_server_stack_as_the_collector_extra(wheel: Path) -> None:
    requires = wheel_requires(wheel)
    base = [line for line in requires if ";" not in line]
    assert not [line for line in base if line.startswith(SERVER_STACK)]
    assert sorted(requirements_of("collector", requires)) == sorted(SERVER_STACK)


def test_requirements_of_reads_extras_markers_only() -> None:
    requires = [
        "aiohttp>=3.9",
        'sqlalchemy[asyncio]>=2.0.30; extra == "collector"',
        "asyncpg>=0.29 ; extra == 'collector'",
        'scapy>=2.5; extra == "raw"',
        'tomli; python_version < "3.11"',
    ]
    assert requirements_of("collector", requires) == ["sqlalchemy", "asyncpg"]
    assert requirements_of("raw", requires) == ["scapy"]
    assert requirements_of("test", requires) == []


def test_probe_only_install_holds_no_server_stack(probe_venv: Path) -> None:
    listed = run(probe_venv, "python", "-m", "pip", "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"censorwatch", "aiohttp", "dnspython", "msgspec", "cryptography"} <= names
    assert not names & {*SERVER_STACK, "greenlet", "mako"}
    for module in SERVER_STACK:
        imported = run(probe_venv, "python", "-c", f"import {module}")
        assert imported.returncode == 1
        assert f"No module named '{module}'" in imported.stderr


@pytest.mark.parametrize("command", ["check", "run", "status"])
def test_probe_commands_answer_help(probe_venv: Path, command: str) -> None:
    done = run(probe_venv, "censorwatch-probe", command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"censorwatch-probe {command}" in done.stdout


async def test_probe_only_install_checks_a_loopback_network(
    probe_venv: Path, tmp_path: Path
) -> None:
    async with world(PKI(tmp_path / "pki"), tmp_path) as w:
        assert w.network_dns is not None
        assert w.control_dns is not None
        # the servers run in this event loop: the check must not block it
        process = await asyncio.create_subprocess_exec(
            str(probe_venv / "bin" / "censorwatch-probe"), "check", "--json",
            "--targets", str(w.targets),
            "--resolver", f"127.0.0.53:{w.network_dns.port}",
            "--control-resolver", str(w.control_dns.url),
            "--ca-file", str(w.pki.ca_file), "--timeout", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=probe_venv, env=clean_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert verdicts(result)["telegram"] == ("ok", set())
    assert (
        str(probe_venv)
        in run(probe_venv, "python", "-c", "import probe; print(probe.__file__)").stdout
    )


@pytest.mark.parametrize("args", [["serve"], ["demo"], ["--help"]])
def test_collector_without_its_extra_names_the_extra(probe_venv: Path, args: list[str]) -> None:
    done = run(probe_venv, "censorwatch", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "pip install 'censorwatch[collector]'" in done.stderr
    assert "sqlalchemy" in done.stderr
