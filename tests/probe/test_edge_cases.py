"""Censorship (and non-censorship) set-ups at the edges of the rules.

Scripted cases drive the real engine and rules through ``tests.probe.fakes``; loopback
cases run ``censorwatch-probe check`` against real servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from collector.demo.servers import PKI
from collector.demo.servers import Answer as ZoneAnswer
from collector.demo.servers.base import StreamServer, reset
from collector.demo.servers.pages import http_response
from lab.harness.loopback import TRUTH, verdicts, world
from probe import model, vocabulary
from probe.measure import http
from probe.measure.engine import Engine, Settings
from probe.measure.network import Exchange, Resolver
from probe.measure.sockets import SocketNetwork, Timing
from probe.targets import parse
from tests.probe.fakes import (
    GOOD_CERT,
    Answer,
    Result,
    ScriptedNetwork,
    how_the_client_ended,
    measure,
)

# -- scripted network -------------------------------------------------------------------------

TARGETS = parse(
    """
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443

[[services]]
name = "news_tls"
category = "news"
[[services.endpoints]]
host = "news.example"
port = 443
http_path = "/"

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
host = "control-a.example"
port = 443
""",
    "edge-case targets",
)
ADDRESSES = {
    "web.telegram.org": "149.154.167.99",
    "news.example": "151.101.1.1",
    "control-a.example": "93.184.216.34",
}
TG, NEWS = "149.154.167.99", "151.101.1.1"


def scripted(**kw: Any) -> ScriptedNetwork:
    return ScriptedNetwork(default_address=lambda host: ADDRESSES[host], **kw)


async def run_engine(network: ScriptedNetwork) -> dict[str, model.Measurement]:
    return await measure(network, TARGETS)


def verdict(m: model.Measurement) -> tuple[str, set[str]]:
    return m.analysis.verdict, set(m.analysis.methods)


# 1. flaky resolver: two SERVFAILs in a row for one name are not censorship
async def test_two_transient_servfails_are_not_blocked() -> None:
    network = scripted(
        dns={
            ("network", "web.telegram.org"): [
                Answer(failure=vocabulary.DNS_SERVFAIL),
                Answer(failure=vocabulary.DNS_SERVFAIL),
                Answer((TG,)),
            ]
        }
    )
    got = await run_engine(network)
    assert got["telegram"].analysis.verdict != "blocked", verdict(got["telegram"])


# 1b. a censor's NXDOMAIN on a resolver that also SERVFAILs now and then
async def test_nxdomain_block_with_an_intermittent_servfail_is_still_found() -> None:
    network = scripted(
        dns={
            ("network", "web.telegram.org"): [
                Answer(failure=vocabulary.DNS_NXDOMAIN),
                Answer(failure=vocabulary.DNS_SERVFAIL),
                Answer(failure=vocabulary.DNS_NXDOMAIN),
            ]
        }
    )
    got = await run_engine(network)
    assert verdict(got["telegram"]) == ("blocked", {"dns.nxdomain"})


# 2. an expired certificate for the service's name is a broken server, not interception
async def test_expired_certificate_is_not_interception() -> None:
    network = scripted(
        exchanges={
            (TG, 443, "network"): [
                Result(tls=vocabulary.SSL_INVALID_CERTIFICATE, certificate=GOOD_CERT)
            ]
        }
    )
    got = await run_engine(network)
    assert got["telegram"].analysis.verdict != "blocked", verdict(got["telegram"])


# 3. geo-DNS: the network resolver's CDN node is unreachable, the control resolver's works
async def test_unreachable_cdn_node_is_not_a_dns_hijack() -> None:
    other_node = "149.154.167.200"  # a public address of the same service, another node
    network = scripted(
        dns={("network", "web.telegram.org"): [Answer((other_node,))]},
        exchanges={(other_node, 443, "network"): [Result(connect=vocabulary.HOST_UNREACHABLE)]},
    )
    got = await run_engine(network)
    assert got["telegram"].analysis.verdict != "blocked", verdict(got["telegram"])


# 4. a TLS alert for one SNI, while the control SNI completes on the same address: a
#    misconfigured virtual host does the same, so one probe says anomaly, naming tls.alert
async def test_tls_alert_for_one_sni_with_control_completing_is_an_anomaly() -> None:
    network = scripted(
        exchanges={
            (TG, 443, "network"): [Result(tls=vocabulary.SSL_FAILED_HANDSHAKE, certificate=None)]
        }
    )
    got = await run_engine(network)
    assert verdict(got["telegram"]) == ("anomaly", {"tls.alert"})


# 5. a block page over HTTPS, certificate valid for another name, same address (no DNS lie)
async def test_https_blockpage_with_wrong_name_certificate_is_blocked() -> None:
    network = scripted(
        exchanges={
            (NEWS, 443, "network"): [
                Result(tls=vocabulary.SSL_INVALID_HOSTNAME, blockpage="generic.authorities")
            ]
        }
    )
    got = await run_engine(network)
    assert verdict(got["news_tls"]) == ("blocked", {"http.blockpage"})


# 6. residual censorship: after a blocked ClientHello the censor resets everything to that
#    address:port for a while, control SNI included (GFW, Iran, TSPU)
async def test_residual_censorship_still_gets_an_sni_contrast() -> None:
    network = scripted()
    triggered = False

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal triggered
        if kind != "exchange" or key[0] != TG:
            return None
        if key[2] == "network":
            triggered = True
            return Result(tls=vocabulary.CONNECTION_RESET)
        return Result(tls=vocabulary.CONNECTION_RESET) if triggered else None

    network.interfere = interfere
    got = await run_engine(network)
    assert verdict(got["telegram"]) == ("blocked", {"tls.reset"})


# 7. a target list without control services gets the default ones, or nothing could tell
#    an offline network from blocking
def test_a_target_list_without_controls_gets_the_default_controls(tmp_path: Path) -> None:
    import argparse

    from probe.cli import _targets
    from probe.targets import load_default

    path = tmp_path / "no-controls.toml"
    path.write_text(
        '[[services]]\nname = "telegram"\ncategory = "messenger"\n'
        '[[services.endpoints]]\nhost = "web.telegram.org"\nport = 443\n'
    )
    targets = _targets(argparse.Namespace(targets=path, service=[]))
    assert {s.name for s in targets.controls} == {s.name for s in load_default().controls}


# 8. a local error on the DNS path is not censorship, and `blocked` always names a method
async def test_local_dns_error_is_not_blocked_without_a_method() -> None:
    network = scripted(dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.UNKNOWN)]})
    got = await run_engine(network)
    analysis = got["telegram"].analysis
    assert analysis.verdict != "blocked" or analysis.methods, analysis


# 9. what the probe measures must be what the collector accepts (ShortText <= 512)
async def test_measurements_decode_under_the_wire_format() -> None:
    many = tuple(f"10.10.{i}.{j}" for i in range(3) for j in range(1, 20))
    network = scripted(dns={("network", "web.telegram.org"): [Answer(many)]})
    got = await run_engine(network)
    for m in got.values():
        model.decode(model.encode(m))


# 10. ordinary pages that mention the regulator are not block pages
@pytest.mark.parametrize(
    "body",
    [
        # Turkish sites carry a Law 5651 notice in their footer
        "<html><title>Haberler</title><footer>Bu internet sitesi 5651 sayılı kanun "
        "kapsamında yer sağlayıcı olarak hizmet vermektedir.</footer></html>",
        # Russian news front page
        "<html><title>Новости</title><p>Роскомнадзор потребовал от Telegram удалить "
        "каналы.</p></html>",
    ],
    ids=["tr_footer", "ru_news"],
)
def test_ordinary_page_mentioning_the_regulator_is_not_a_blockpage(body: str) -> None:
    raw = ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body).encode()
    assert http.parse(raw).blockpage is None


# -- loopback: real command, real servers ---------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


Reply = Callable[[dns.message.Message, str, int], list[tuple[float, dns.message.Message]]]


class ScriptedResolver(asyncio.DatagramProtocol):
    """A UDP resolver whose replies a test decides, per query and per datagram count."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.count: dict[str, int] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.handles: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text(omit_final_dot=True)
        n = self.count.get(name, 0)
        self.count[name] = n + 1
        loop = asyncio.get_running_loop()
        for delay, message in self.reply(query, name, n):
            self.handles.append(loop.call_later(delay, self._send, message.to_wire(), addr))

    def _send(self, wire: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


@contextlib.asynccontextmanager
async def scripted_resolver(reply: Reply, host: str = "127.0.0.55") -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: ScriptedResolver(reply), local_addr=(host, 0)
    )
    try:
        yield int(transport.get_extra_info("sockname")[1])
    finally:
        for handle in protocol.handles:
            handle.cancel()
        transport.close()


def answer(query: dns.message.Message, ips: tuple[str, ...]) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    if ips:
        response.answer.append(
            dns.rrset.from_text_list(query.question[0].name, 60, dns.rdataclass.IN, "A", ips)
        )
    return response


# 11. a slow resolver behind a load balancer: a retransmitted query is answered by two
#     back-ends with different (both genuine) address sets. No injector anywhere.
@pytest.mark.slow
async def test_retransmitted_query_answered_twice_is_not_injection(
    pki: PKI, tmp_path: Path
) -> None:
    def reply(query: dns.message.Message, name: str, n: int) -> list[tuple[float, Any]]:
        ips = (TRUTH[name],) if name in TRUTH else ()
        if name == "web.telegram.org" and n % 2 == 1:
            ips = (TRUTH[name], "127.0.1.44")  # the other back-end's cached RRset
        return [(0.25, answer(query, ips))]  # RTT 250 ms

    async with world(pki, tmp_path) as w, scripted_resolver(reply) as port:
        result = await w.check(
            "--service", "telegram", "--resolver", f"127.0.0.55:{port}", step_timeout=0.6
        )
    assert verdicts(result)["telegram"][0] != "blocked", verdicts(result)["telegram"]


# 12. a response truncated over UDP (TC=1, answer too big for 512 bytes) must be retried
#     over TCP, not read as "no such name"
@pytest.mark.slow
async def test_truncated_udp_answer_is_not_nxdomain(pki: PKI, tmp_path: Path) -> None:
    def reply(query: dns.message.Message, name: str, n: int) -> list[tuple[float, Any]]:
        if name == "web.telegram.org":
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.RA | dns.flags.TC
            return [(0.0, truncated)]
        return [(0.0, answer(query, (TRUTH[name],) if name in TRUTH else ()))]

    async with world(pki, tmp_path) as w, scripted_resolver(reply) as port:
        result = await w.check("--service", "telegram", "--resolver", f"127.0.0.55:{port}")
    assert verdicts(result)["telegram"][0] != "blocked", verdicts(result)["telegram"]


class SNIBox(StreamServer):
    """A TLS server (lab CA) that, for one SNI, either sends a handshake_failure alert or
    completes the handshake and then resets the connection at once."""

    def __init__(self, pki: PKI, host: str, port: int, blocked: str, action: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        files = pki.leaf([blocked, "default.lab"])
        context.load_cert_chain(files.chain, files.key)
        self.blocked_sni = blocked
        self.action = action

        self.names: dict[int, str | None] = {}

        def on_sni(obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> int | None:
            self.names[id(obj)] = name  # a server-side SSLObject has no server_hostname
            if action == "alert" and name == blocked:
                return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
            return None

        context.sni_callback = on_sni  # type: ignore[assignment]
        super().__init__(host, port, context)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        if (
            self.action == "reset_after"
            and obj is not None
            and self.names.get(id(obj)) == self.blocked_sni
        ):
            reset(writer)
            return
        await reader.read(65536)


BOX = "127.0.1.7"


@pytest.mark.slow
async def test_sni_reset_right_after_the_handshake_is_not_ok(pki: PKI, tmp_path: Path) -> None:
    action = "reset_after"
    async with world(pki, tmp_path) as w:
        for zone in (w.network_zone, w.truth_zone):
            zone.set("web.telegram.org", ZoneAnswer((BOX,)))
        box = SNIBox(pki, BOX, w.tls_port, "web.telegram.org", action)
        await box.start()
        try:
            result = await w.check("--service", "telegram")
        finally:
            await box.close()
    got = verdicts(result)["telegram"]
    # Every connection with the service's SNI dies at once; the control SNI's does not.
    assert got[0] != "ok", got


class KeepOpenBlockpage(StreamServer):
    """An injected block page with Content-Length, the connection then left open."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(http_response("blockpage", "news.test").replace(b"Connection: close", b"X: y"))
        await writer.drain()
        await asyncio.sleep(3600)


@pytest.mark.slow
async def test_blockpage_without_connection_close_is_seen(pki: PKI, tmp_path: Path) -> None:
    async with world(pki, tmp_path) as w:
        for zone in (w.network_zone, w.truth_zone):
            zone.set("news.test", ZoneAnswer(("127.0.1.8",)))
        page = KeepOpenBlockpage("127.0.1.8", w.http_port)
        await page.start()
        try:
            result = await w.check("--service", "news")
        finally:
            await page.close()
    assert verdicts(result)["news"] == ("blocked", {"http.blockpage"})


def test_timeout_nan_is_a_usage_error() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "check", "--timeout", "nan", "--service", "nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "timeout" in done.stderr, done.stderr


# 4b. the same TLS alert from a real OpenSSL server, through the real SocketNetwork
def _alerting_server(
    pki: PKI, blocked: str
) -> tuple[socket.socket, threading.Thread, threading.Event]:
    files = pki.leaf(["default.lab", blocked])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.chain, files.key)
    context.sni_callback = lambda obj, name, ctx: (  # type: ignore[assignment]
        ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE if name == blocked else None
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                # The probe resets a connection it is done with; one reset before it is
                # wrapped would make wrap_socket raise and leak its half-built SSLSocket.
                conn.recv(1, socket.MSG_PEEK)
            except OSError:
                conn.close()
                continue
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls_conn:
                        tls_conn.recv(1)
                except (OSError, ssl.SSLError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, stop


async def test_real_tls_alert_for_one_sni_is_an_anomaly_naming_tls_alert(pki: PKI) -> None:
    listener, thread, stop = _alerting_server(pki, "web.telegram.org")
    port = listener.getsockname()[1]
    targets = parse(
        f"""
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
ip = "127.0.0.1"
port = {port}
sni = "web.telegram.org"
tls = true

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
ip = "127.0.0.1"
port = {port}
sni = "default.lab"
tls = true
""",
        "alert targets",
    )
    network = SocketNetwork(Timing(timeout=1.0), pki.ca_file)
    try:
        engine = Engine(network, None, [Resolver("udp", "127.0.0.1", 9)], Settings())
        report = await engine.run(targets)
    finally:
        await network.close()
        stop.set()
        await asyncio.to_thread(thread.join)
        listener.close()
    got = {m.service: m for m in report.measurements}["telegram"]
    observed = {o.failure for o in got.observations if isinstance(o, model.TLSObservation)}
    assert vocabulary.SSL_FAILED_HANDSHAKE in observed  # the alert, as the probe records it
    assert (got.analysis.verdict, got.analysis.methods) == ("anomaly", ["tls.alert"])


# 13. a certificate cryptography cannot parse lazily must not escape as an exception
def test_certificate_facts_never_raise() -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example")]), False)
        .add_extension(x509.IssuerAlternativeName([x509.DNSName("b.example")]), False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    # issuerAltName -> a second subjectAltName: a duplicate extension
    patched = der.replace(bytes.fromhex("0603551d12"), bytes.fromhex("0603551d11"))
    from probe.measure.tls import certificate_facts

    certificate_facts(patched)


# 14. a connection given up on is reset, not left to the kernel: a closed socket whose
# ClientHello went unanswered would be retransmitted for minutes, and under residual
# censorship each copy of the forbidden name punishes the address again
async def test_a_handshake_given_up_on_is_reset_so_nothing_is_retransmitted() -> None:
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the ClientHello, never answered
        ended.set_result(await how_the_client_ended(reader))
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        request = Exchange(ip="127.0.0.1", port=port, tls=True, sni="www.instagram.com")
        network = SocketNetwork(Timing(timeout=0.5), raw=False)
        _, tls, _ = await network.exchange(request, asyncio.get_running_loop().time())
        assert tls is not None
        assert tls.failure == vocabulary.GENERIC_TIMEOUT
        assert await asyncio.wait_for(ended, 5.0) == "reset"
