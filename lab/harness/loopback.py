"""A small internet on loopback for the probe's command, used by tests and benchmarks: real
DNS, DoH, TLS, TCP and HTTP servers from ``collector.demo.servers``, each "host" on its own 127.0.x.y
address.

Names and addresses:

- ``web.telegram.org`` → 127.0.1.1, a TLS server (port ``tls_port``)
- ``149.154.167.51``-like data-centre endpoint → 127.0.1.2, plain TCP (``tcp_port``)
- ``news.test`` → 127.0.1.3, plain HTTP (``http_port``)
- ``control-a.test`` → 127.0.2.1, ``control-b.test`` → 127.0.2.2, TLS
- 127.0.9.9 is a block-page server on the TLS and HTTP ports, a hijack destination

The network's resolver (UDP) and the control resolver (DoH) answer from separate zones,
so a scenario can make the network lie while the control tells the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.demo.servers import (
    PKI,
    Answer,
    DNSOverHTTPS,
    DNSServer,
    HTTPServer,
    Server,
    TCPAcceptServer,
    TLSRule,
    TLSServer,
    Zone,
)
from collector.demo.servers.base import StreamServer, free_port, reset

TELEGRAM, DC, NEWS, BLOCKPAGE = "127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.9.9"
CONTROL_A, CONTROL_B = "127.0.2.1", "127.0.2.2"
TRUTH = {
    "web.telegram.org": TELEGRAM,
    "news.test": NEWS,
    "control-a.test": CONTROL_A,
    "control-b.test": CONTROL_B,
}


def targets_toml(tls_port: int, tcp_port: int, http_port: int) -> str:
    return f"""
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = {tls_port}
tls = true

[[services]]
name = "telegram_dc"
category = "messenger"
[[services.endpoints]]
ip = "{DC}"
port = {tcp_port}
tls = false

[[services]]
name = "news"
category = "news"
[[services.endpoints]]
host = "news.test"
port = {http_port}
tls = false
http_path = "/"

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
host = "control-a.test"
port = {tls_port}

[[services]]
name = "control_b"
category = "control"
[[services.endpoints]]
host = "control-b.test"
port = {tls_port}
"""


class HostResetHTTP(StreamServer):
    """Answers HTTP for any Host but one, whose requests it resets (a Host-filtering box)."""

    def __init__(self, host: str, port: int, blocked: str) -> None:
        super().__init__(host, port)
        self.blocked = blocked

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if f"host: {self.blocked}".encode() in request.lower():
            reset(writer)
            return
        body = b"<html><title>ok</title></html>"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()


class SilentHTTP(StreamServer):
    """Accepts, reads the request, never answers."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(3600)


class FullBacklog(Server):
    """A listening socket whose accept queue is full: SYNs are dropped, connects time out."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._sockets: list[socket.socket] = []

    async def start(self) -> None:
        listener = socket.socket()
        listener.bind((self.host, self.port))
        listener.listen(0)
        self._sockets.append(listener)
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((self.host, self.port))
            self._sockets.append(filler)
        await asyncio.sleep(0.05)

    async def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@dataclass
class World:
    pki: PKI
    directory: Path
    tls_port: int = field(default_factory=free_port)
    tcp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    network_zone: Zone = field(
        default_factory=lambda: Zone({n: Answer((ip,)) for n, ip in TRUTH.items()})
    )
    truth_zone: Zone = field(
        default_factory=lambda: Zone({n: Answer((ip,)) for n, ip in TRUTH.items()})
    )
    telegram_tls: dict[str, TLSRule] = field(default_factory=dict)
    telegram_default: TLSRule = field(default_factory=TLSRule)
    dc: str = "accept"  # accept | refuse | timeout
    news: str = "normal"  # normal | blockpage | reset | silent
    controls_up: bool = True
    servers: list[Server] = field(default_factory=list)
    network_dns: DNSServer | None = None
    control_dns: DNSOverHTTPS | None = None

    @property
    def targets(self) -> Path:
        path = self.directory / "targets.toml"
        path.write_text(targets_toml(self.tls_port, self.tcp_port, self.http_port))
        return path

    async def start(self) -> None:
        self.network_dns = DNSServer(self.network_zone, "127.0.0.53", 0)
        self.control_dns = DNSOverHTTPS(self.truth_zone, self.pki, "127.0.0.54", 0)
        self.servers += [self.network_dns, self.control_dns]
        names = tuple(TRUTH)
        self.servers.append(
            TLSServer(
                self.pki,
                TELEGRAM,
                self.tls_port,
                rules=self.telegram_tls,
                default=self.telegram_default,
                default_names=names,
            )
        )
        self.servers.append(
            TLSServer(self.pki, BLOCKPAGE, self.tls_port, default=TLSRule("complete", "blockpage"))
        )
        self.servers.append(HTTPServer(BLOCKPAGE, self.http_port, mode="blockpage"))
        if self.controls_up:
            self.servers += [
                TLSServer(self.pki, ip, self.tls_port, default_names=names)
                for ip in (CONTROL_A, CONTROL_B)
            ]
        if self.dc == "accept":
            self.servers.append(TCPAcceptServer(DC, self.tcp_port))
        elif self.dc == "timeout":
            self.servers.append(FullBacklog(DC, self.tcp_port))
        if self.news in ("normal", "blockpage"):
            self.servers.append(HTTPServer(NEWS, self.http_port, mode=self.news))  # type: ignore[arg-type]
        elif self.news == "reset":
            self.servers.append(HostResetHTTP(NEWS, self.http_port, "news.test"))
        else:
            self.servers.append(SilentHTTP(NEWS, self.http_port))
        for server in self.servers:
            await server.start()

    async def close(self) -> None:
        for server in reversed(self.servers):
            await server.close()

    async def check(
        self, *extra: str, step_timeout: float = 1.0, first_control: str | None = None
    ) -> dict[str, Any]:
        """Run ``censorwatch-probe check --json`` against this world and parse what it prints."""
        assert self.network_dns is not None
        assert self.control_dns is not None
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "probe.cli",
            "check",
            "--json",
            "--targets",
            str(self.targets),
            "--resolver",
            f"127.0.0.53:{self.network_dns.port}",
            *(["--control-resolver", first_control] if first_control else []),
            "--control-resolver",
            str(self.control_dns.url),
            "--ca-file",
            str(self.pki.ca_file),
            "--timeout",
            str(step_timeout),
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out)
        return result


@contextlib.asynccontextmanager
async def world(pki: PKI, directory: Path, **options: Any) -> AsyncIterator[World]:
    w = World(pki, directory, **options)
    try:
        await w.start()
        yield w
    finally:
        await w.close()


def verdicts(result: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    return {s["service"]: (s["verdict"], set(s["methods"])) for s in result["services"]}
