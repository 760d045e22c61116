"""``censorwatch demo``: the whole pipeline on one machine, no internet, no root.

A small network on loopback (collector.demo.servers: the "ISP resolver", a trusted DoH resolver, TLS
servers for Telegram and a control site), a collector with SQLite in a temporary directory,
three probes that run the real ``censorwatch-probe check`` and upload from their own
loopback addresses (the collector's IP-to-ASN table puts each in a different Kazakh test
ASN; the operator vets them, so each is a full independent voice), the newsroom's calendar (an iCalendar feed with a recurring livestream series, which
the collector subscribes to as an event source), and a webhook receiver that checks the
Standard Webhooks signature itself. Shortly after tonight's livestream starts the ISP
resolver answers NXDOMAIN for web.telegram.org; the probes see it, the collector opens one
incident linked to that occurrence, and the signed alert arrives, with the series'
history: blocking followed one of its livestreams, the others passed without any.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web

from collector.app import build_state, create_app
from collector.config import Config, Listen
from collector.demo.servers import (
    PKI,
    Answer,
    DNSOverHTTPS,
    DNSServer,
    NXDomain,
    Server,
    TLSServer,
    Zone,
)
from collector.demo.servers.base import free_port

TELEGRAM: Final = "127.0.1.1"
CONTROL: Final = "127.0.2.1"
NAMES: Final = {"web.telegram.org": TELEGRAM, "control.test": CONTROL}
PROBES: Final = (("127.10.0.1", 64510), ("127.11.0.1", 64511), ("127.12.0.1", 64512))
ASN_TABLE: Final = "".join(
    f"{ip.rsplit('.', 2)[0]}.0.0\t{ip.rsplit('.', 2)[0]}.255.255\t{asn}\tKZ\tDEMO-KZ-{asn}\n"
    for ip, asn in PROBES
) + (
    "127.0.0.0\t127.9.255.255\t64500\tKZ\tDEMO-KZ\n127.13.0.0\t127.255.255.255\t64500\tKZ\tDEMO-KZ\n"
)


def say(text: str, started: float) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {text}", flush=True)


def targets_toml(port: int) -> str:
    return f"""
[[services]]
name = "telegram"
title = "Telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = {port}

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
host = "control.test"
port = {port}
"""


SERIES_DAYS: Final = 2  # the livestream recurs every other evening …
SERIES_WEEKS: Final = 8  # … and has for eight weeks


def calendar_ics(tonight: dt.datetime) -> str:
    """The newsroom's calendar: one recurring entry, as a calendar app would publish it."""
    first = tonight - dt.timedelta(weeks=SERIES_WEEKS)
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//censorwatch demo//newsroom//EN",
            "BEGIN:VEVENT", "UID:opposition-livestream@newsroom.example",
            "SUMMARY:Opposition livestream", f"DTSTART:{first:%Y%m%dT%H%M%SZ}",
            "DURATION:PT1H", f"RRULE:FREQ=DAILY;INTERVAL={SERIES_DAYS}",
            "URL:https://example.org/live", "CATEGORIES:Livestream", "END:VEVENT",
            "END:VCALENDAR", "",
        ]
    )  # fmt: skip


async def serve_calendar(text: str) -> tuple[web.AppRunner, str]:
    async def calendar(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/calendar")

    app = web.Application()
    app.router.add_get("/newsroom.ics", calendar)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/newsroom.ics"


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks, checked here with nothing but hmac (not the sender's code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, o) for o in offered)


@dataclass
class Network:
    """The simulated internet: an ISP resolver that can be told to lie, and the truth."""

    pki: PKI
    directory: Path
    tls_port: int = field(default_factory=free_port)
    isp_zone: Zone = field(
        default_factory=lambda: Zone({n: Answer((ip,)) for n, ip in NAMES.items()})
    )
    servers: list[Server] = field(default_factory=list)

    async def start(self) -> None:
        truth = Zone({n: Answer((ip,)) for n, ip in NAMES.items()})
        self.isp = DNSServer(self.isp_zone, "127.0.0.53", 0)
        self.doh = DNSOverHTTPS(truth, self.pki, "127.0.0.54", 0)
        self.servers = [
            self.isp,
            self.doh,
            *(
                TLSServer(self.pki, ip, self.tls_port, default_names=tuple(NAMES))
                for ip in NAMES.values()
            ),
        ]
        for server in self.servers:
            await server.start()
        self.targets = self.directory / "targets.toml"
        self.targets.write_text(targets_toml(self.tls_port))

    def censor(self) -> None:
        self.isp_zone.set("web.telegram.org", NXDomain())

    async def close(self) -> None:
        for server in reversed(self.servers):
            await server.close()

    async def check(self) -> list[dict[str, Any]]:
        """``censorwatch-probe check --json`` against this network: its measurements."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "probe.cli", "check", "--json", "--targets", str(self.targets),
            "--resolver", f"127.0.0.53:{self.isp.port}", "--control-resolver", str(self.doh.url),
            "--ca-file", str(self.pki.ca_file), "--timeout", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"probe check failed: {err.decode()[-500:]}")
        measurements: list[dict[str, Any]] = json.loads(out)["measurements"]
        return measurements


@dataclass
class Probe:
    """A volunteer's probe: its own source address, so the collector sees its own ASN."""

    address: str
    collector: str
    token: str = ""

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(self.address, 0)))

    async def register(self, enrolment: str) -> dict[str, Any]:
        async with (
            self.session() as s,
            s.post(
                self.collector + "/api/v1/probes", headers={"Authorization": f"Bearer {enrolment}"}
            ) as r,
        ):
            body: dict[str, Any] = await r.json()
        self.token = body["token"]
        return body

    async def upload(self, measurements: list[dict[str, Any]]) -> None:
        async with (
            self.session() as s,
            s.post(
                self.collector + "/api/v1/measurements",
                json=measurements,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as r,
        ):
            if r.status != 200:
                raise RuntimeError(f"upload failed: {r.status} {await r.text()}")


class Inbox:
    """The newsroom's webhook receiver."""

    def __init__(self, started: float) -> None:
        self.port = free_port()
        self.secret = ""
        self.started = started
        self.alert: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(self.secret, request.headers, body)
        payload = json.loads(body)
        say(
            f"webhook {request.headers['webhook-id']} received, signature {'valid' if ok else 'INVALID'}",
            self.started,
        )
        if ok and not self.alert.done():
            self.alert.set_result(payload)
        return web.Response(status=204 if ok else 400)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/alerts", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner


async def admin(session: aiohttp.ClientSession, url: str, token: str, body: Any) -> dict[str, Any]:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        answer: dict[str, Any] = await r.json()
        if r.status >= 300:
            raise RuntimeError(f"{url}: {r.status} {answer}")
        return answer


async def _subscribe(session: aiohttp.ClientSession, base: str, token: str, url: str) -> int:
    """Register the calendar as an event source and wait for the collector's first poll."""
    body = {"url": url, "cc": "KZ", "keywords": {"livestream": "livestream"}}
    source = await admin(session, base + "/api/v1/event-sources", token, body)
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(100):
        async with session.get(f"{base}/api/v1/event-sources/{source['id']}", headers=headers) as r:
            state: dict[str, Any] = await r.json()
        if state["polls"]:
            if state["last_error"]:
                raise RuntimeError(f"calendar poll failed: {state['last_error']}")
            return int(state["event_count"])
        await asyncio.sleep(0.2)
    raise RuntimeError("the collector never polled the calendar")


async def vet(session: aiohttp.ClientSession, url: str, token: str) -> None:
    """New probes weigh half a voice; the operator knows these three and vouches for them."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.patch(url, json={"vetted": True}, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status} {await r.text()}")


async def run(
    probe_interval: float = 5.0,
    censor_after: float = 12.0,
    give_up_after: float = 120.0,
    keep: bool = False,
) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="censorwatch-demo-") as tmp:
        directory = Path(tmp)
        (directory / "ip2asn.tsv").write_text(ASN_TABLE)
        config = Config(
            data_dir=directory / "data", listen=Listen("127.0.0.1", free_port()),
            ip_asn_db=directory / "ip2asn.tsv", rate_per_second=0,
            targets=directory / "targets.toml",  # the demo's services, written by Network
            alert_interval_seconds=1.0, alert_settle_seconds=0.5,
            delivery_interval_seconds=0.5, metrics_refresh_seconds=2.0, log_level="WARNING",
            source_poll_seconds=0.5, source_allow_private=True,  # the calendar is on loopback
        )  # fmt: skip
        network = Network(PKI(directory / "pki"), directory)
        await network.start()
        runner = web.AppRunner(create_app(build_state(config)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.listen.host, config.listen.port).start()
        inbox = Inbox(started)
        inbox_runner = await inbox.start()
        try:
            code = await _story(
                config, network, inbox, started, probe_interval, censor_after, give_up_after
            )
            if code == 0 and keep:
                await _keep_serving(config)
            return code
        finally:
            await inbox_runner.cleanup()
            await runner.cleanup()
            await network.close()


async def _keep_serving(config: Config) -> None:
    """Leave the collector and its status page up until the user presses Ctrl-C."""
    print(
        f"status page: http://{config.listen}/country/KZ stays up; press Ctrl-C to stop",
        flush=True,
    )
    await asyncio.Event().wait()


async def _story(
    config: Config, network: Network, inbox: Inbox, started: float,
    probe_interval: float, censor_after: float, give_up_after: float,
) -> int:  # fmt: skip
    base = f"http://{config.listen}"
    token = config.admin_token_path.read_text().strip()
    say(f"collector on {base} (SQLite in {config.data_dir})", started)
    say(f"status page: {base}/country/KZ", started)
    async with aiohttp.ClientSession() as session:
        sub = await admin(
            session,
            base + "/api/v1/subscribers",
            token,
            {"url": f"http://127.0.0.1:{inbox.port}/alerts"},
        )
        inbox.secret = sub["secret"]
        say(f"newsroom subscribed: signed JSON to port {inbox.port}", started)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start += dt.timedelta(seconds=censor_after - 2)
        calendar, url = await serve_calendar(calendar_ics(start))
        try:
            count = await _subscribe(session, base, token, url)
        finally:
            await calendar.cleanup()
        say(
            f"newsroom calendar subscribed: {count} occurrences of 'Opposition livestream' "
            f"(every {SERIES_DAYS} days for {SERIES_WEEKS} weeks, and ahead); "
            f"tonight's at {start:%H:%M:%S} UTC",
            started,
        )
        probes = [Probe(ip, base) for ip, _ in PROBES]
        for probe in probes:
            enrolment = (await admin(session, base + "/api/v1/enrolment-tokens", token, {}))[
                "token"
            ]
            info = await probe.register(enrolment)
            await vet(session, f"{base}/api/v1/probes/{info['probe_id']}", token)
            say(
                f"probe {info['probe_id'][:8]} from {probe.address}: AS{info['asn']} {info['cc']}, "
                "vetted by the operator",
                started,
            )
    censor_at = started + censor_after
    deadline = started + give_up_after
    while not inbox.alert.done() and time.monotonic() < deadline:
        if time.monotonic() >= censor_at and censor_at > 0:
            network.censor()
            say("censorship ON: the ISP resolver answers NXDOMAIN for web.telegram.org", started)
            censor_at, switched = 0, time.monotonic()
        round_started = time.monotonic()
        results = await asyncio.gather(*(network.check() for _ in probes))
        for probe, measurements in zip(probes, results, strict=True):
            await probe.upload(measurements)
        verdicts = {m["service"]: m["analysis"]["verdict"] for m in results[0]}
        say(f"probes measured and uploaded: {verdicts}", started)
        left = max(0.1, probe_interval - (time.monotonic() - round_started))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await asyncio.shield(inbox.alert)
    if not inbox.alert.done():
        print("censorwatch demo: no alert arrived in time", file=sys.stderr)
        return 1
    payload = inbox.alert.result()
    say(f"ALERT {time.monotonic() - switched:.1f} s after censorship began:", started)
    print(json.dumps(payload, indent=2, default=str), flush=True)
    return 0
