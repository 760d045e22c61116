from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.message
import pytest

from collector.demo.servers import PKI
from collector.demo.servers.standalone import main
from lab.paths import REPO_ROOT

from .clients import tls_client

ROOT = REPO_ROOT
HOST = "127.0.3.1"

CONFIG = """
pki = "{pki}"

[zones.main]
default = "nxdomain"
[zones.main.names]
"web.telegram.org" = {{ action = "answer", ips = ["10.0.1.10"], ttl = 300 }}
"x.com" = {{ action = "double", forged = ["10.10.34.35"], real = "servfail" }}
"vk.com" = {{ action = "delay", seconds = 0.01, then = "refused" }}

[[servers]]
kind = "dns"
host = "{host}"
zone = "main"

[[servers]]
kind = "tls"
host = "{host}"
rules = {{ "web.telegram.org" = "{tls_action}" }}

[[servers]]
kind = "doh"
host = "{host}"
zone = "main"

[[servers]]
kind = "tcp-refused"
host = "{host}"
"""


class Lab:
    def __init__(self, process: asyncio.subprocess.Process, ready: list[dict[str, object]]):
        self.process = process
        self.ready = ready

    def port(self, kind: str) -> int:
        port = next(server["port"] for server in self.ready if server["kind"] == kind)
        assert isinstance(port, int)
        return port

    async def line(self) -> dict[str, object]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 10)
        value = json.loads(line)
        assert isinstance(value, dict)
        return value


async def start(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector.demo.servers",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def write(path: Path, pki: PKI, tls_action: str = "complete") -> Path:
    path.write_text(CONFIG.format(pki=pki.directory, host=HOST, tls_action=tls_action))
    return path


@pytest.fixture
async def lab(tmp_path: Path, pki: PKI) -> AsyncIterator[Lab]:
    process = await start(write(tmp_path / "lab.toml", pki))
    try:
        lab = Lab(process, [])
        ready = (await lab.line())["ready"]
        assert isinstance(ready, list)
        lab.ready = ready
        yield lab
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 10)


async def test_serves_the_config_and_reports_real_ports(lab: Lab, pki: PKI) -> None:
    query = dns.message.make_query("web.telegram.org", "A")
    response = await dns.asyncquery.udp(query, HOST, port=lab.port("dns"), timeout=2)
    await tls_client((HOST, lab.port("tls")), "web.telegram.org", pki.client_context())

    assert [rd.to_text() for rd in response.answer[0]] == ["10.0.1.10"]
    assert [s["kind"] for s in lab.ready] == ["dns", "tls", "doh", "tcp-refused"]
    assert lab.ready[2]["url"] == f"https://{HOST}:{lab.port('doh')}/dns-query"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, lab.port("tcp-refused"))


async def test_sighup_keeps_the_rules_when_the_new_config_is_bad(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "lab.toml").write_text("servers = []\n")
    lab.process.send_signal(signal.SIGHUP)

    reply = await lab.line()
    assert reply["reloaded"] is False
    assert "restart instead" in str(reply["error"])


async def test_sighup_applies_new_rules(lab: Lab, pki: PKI, tmp_path: Path) -> None:
    write(tmp_path / "lab.toml", pki, tls_action="reset")
    lab.process.send_signal(signal.SIGHUP)

    assert await lab.line() == {"reloaded": True}
    with pytest.raises(ConnectionResetError):
        await tls_client((HOST, lab.port("tls")), "web.telegram.org", pki.client_context())


async def test_sigterm_stops_cleanly(lab: Lab) -> None:
    lab.process.send_signal(signal.SIGTERM)

    assert await asyncio.wait_for(lab.process.wait(), 10) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[servers]]\nkind = "dns"\nhost = "127.0.0.1"\nzone = "nope"\n', "unknown zone 'nope'"),
        ('[[servers]]\nkind = "dsn"\nhost = "127.0.0.1"\n', "$.servers[0].kind"),
        ('[[servers]]\nkind = "tls"\nhost = "127.0.0.1"\n', "needs `pki`"),
        ('[[servers]]\nkind = "http"\nhost = "127.0.0.1"\nprot = 80\n', "`prot`"),
        ("servers = [", "lab.toml"),
    ],
)
def test_a_bad_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(text)

    assert main([str(path)]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
