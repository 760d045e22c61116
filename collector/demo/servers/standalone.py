"""Running a config's servers in one process (``python -m collector.demo.servers CONFIG``).

On start the process prints one JSON line, ``{"ready": [{"kind", "host", "port", "url"}…]}``,
with the real ports, once every server listens. SIGHUP re-reads the config and applies new
rules (zones, TLS rules and download rate, HTTP mode, TCP banner) to the running servers, then prints
``{"reloaded": true}`` — or ``{"reloaded": false, "error": …}`` and keeps the old rules; the
servers themselves (kind, host, port, zone) cannot change without a restart. SIGTERM or SIGINT
closes every server and exits 0. A bad config exits 2 with a message, a bind failure exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from collector.demo.servers import config as cfg
from collector.demo.servers.base import Server
from collector.demo.servers.dns import DNSOverTLS, DNSServer
from collector.demo.servers.doh import DNSOverHTTPS
from collector.demo.servers.http import HTTPServer
from collector.demo.servers.pki import PKI
from collector.demo.servers.tcp import ClosedPort, TCPAcceptServer, TCPResetServer
from collector.demo.servers.tls import TLSServer
from collector.demo.servers.zone import Zone


@dataclass
class Running:
    """The servers a config describes, with the zones they share."""

    config: cfg.Config
    zones: dict[str, Zone]
    servers: list[Server]


def build(config: cfg.Config, pki_directory: Path | None) -> Running:
    pki = PKI(pki_directory) if pki_directory is not None else None
    zones = {name: cfg.zone(spec) for name, spec in config.zones.items()}
    return Running(config, zones, [_server(spec, zones, pki) for spec in config.servers])


def _server(spec: cfg.ServerSpec, zones: dict[str, Zone], pki: PKI | None) -> Server:
    server: TLSServer | HTTPServer | TCPAcceptServer
    match spec:
        case cfg.DNSSpec():
            return DNSServer(zones[spec.zone], spec.host, spec.port)
        case cfg.DoTSpec():
            assert pki is not None
            return DNSOverTLS(zones[spec.zone], pki, spec.host, spec.port, spec.names)
        case cfg.DoHSpec():
            assert pki is not None
            return DNSOverHTTPS(zones[spec.zone], pki, spec.host, spec.port, spec.names, spec.path)
        case cfg.TLSSpec():
            assert pki is not None
            server = TLSServer(pki, spec.host, spec.port)
        case cfg.HTTPSpec():
            server = HTTPServer(spec.host, spec.port)
        case cfg.TCPAcceptSpec():
            server = TCPAcceptServer(spec.host, spec.port)
        case cfg.TCPResetSpec():
            return TCPResetServer(spec.host, spec.port)
        case cfg.TCPRefusedSpec():
            return ClosedPort(spec.host, spec.port)
    _apply_rules(server, spec)
    return server


def reconfigure(running: Running, config: cfg.Config) -> None:
    """Give the running servers the rules of ``config``; raises ``ServerSpecError`` if it would
    need different servers."""
    if _layout(config) != _layout(running.config):
        raise cfg.ServerSpecError("servers changed (kind, host, port or zone): restart instead")
    for name, zone in running.zones.items():
        zone.replace(cfg.zone(config.zones[name]))
    for server, spec in zip(running.servers, config.servers, strict=True):
        _apply_rules(server, spec)
    running.config = config


def _layout(config: cfg.Config) -> list[tuple[str, str, int, str | None]]:
    return [(cfg.kind(s), s.host, s.port, getattr(s, "zone", None)) for s in config.servers]


def _apply_rules(server: Server, spec: cfg.ServerSpec) -> None:
    if isinstance(server, TLSServer) and isinstance(spec, cfg.TLSSpec):
        server.rules = {name: cfg.tls_rule(rule) for name, rule in spec.rules.items()}
        server.default = cfg.tls_rule(spec.default)
        server.default_names = tuple(spec.default_names)
        server.download_rate = spec.download_rate or None
    elif isinstance(server, HTTPServer) and isinstance(spec, cfg.HTTPSpec):
        server.mode, server.status = spec.mode, spec.status
    elif isinstance(server, TCPAcceptServer) and isinstance(spec, cfg.TCPAcceptSpec):
        server.banner, server.echo = spec.banner.encode(), spec.echo


async def serve(path: Path) -> None:
    config, pki_directory = cfg.load(path)
    running = build(config, pki_directory)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        for server in running.servers:
            await stack.enter_async_context(server)
        loop.add_signal_handler(signal.SIGHUP, _reload, path, running)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        _say(
            ready=[
                _describe(spec, server)
                for spec, server in zip(config.servers, running.servers, strict=True)
            ]
        )
        await stop.wait()


def _reload(path: Path, running: Running) -> None:
    try:
        config, _ = cfg.load(path)
        reconfigure(running, config)
    except cfg.ServerSpecError as exc:
        _say(reloaded=False, error=str(exc))
    else:
        _say(reloaded=True)


def _describe(spec: cfg.ServerSpec, server: Server) -> dict[str, object]:
    return {"kind": cfg.kind(spec), "host": server.host, "port": server.port, "url": server.url}


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collector.demo.servers", description="Run lab servers from a config."
    )
    parser.add_argument("config", type=Path, help="TOML (.toml) or JSON config")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.config))
    except cfg.ServerSpecError as exc:
        print(f"collector.demo.servers: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"collector.demo.servers: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
