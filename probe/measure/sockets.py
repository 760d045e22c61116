"""The real network: sockets, OpenSSL, and the DNS transports, behind the ``Network`` seam."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from probe import vocabulary
from probe.measure import dns, failures, http, throughput
from probe.measure import raw as packet_capture
from probe.measure import trace as hop_trace
from probe.measure.network import Exchange, Network, Outcome, Resolution, Resolver
from probe.measure.tls import Contexts, TLSChannel, handshake
from probe.measure.trace import TraceRequest
from probe.model import (
    Certificate,
    HTTPObservation,
    Role,
    TCPObservation,
    ThroughputObservation,
    TLSObservation,
    TraceObservation,
)

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class Timing:
    timeout: float = 5.0
    dns_window: float = 0.25
    # Before each download: let the last one's tail leave the queues (and a policer's
    # bucket refill), so one transfer never measures the one before it.
    download_pause: float = 1.0


class SocketNetwork(Network):
    def __init__(
        self, timing: Timing | None = None, ca_file: Path | None = None, raw: bool | None = None
    ) -> None:
        """``raw``: capture each flow's packets (None: whenever CAP_NET_RAW allows)."""
        self.timing = timing or Timing()
        self.contexts = Contexts.build(ca_file)
        self._session: aiohttp.ClientSession | None = None
        self.raw = packet_capture.available() if raw is None else raw
        self.trace_limits = hop_trace.TraceLimits()
        self._prepared = False
        self._drain = 0.0  # extra seconds before the next download, after one cut short

    async def prepare(self) -> None:
        if self.raw and not self._prepared:
            await asyncio.to_thread(packet_capture.prepare)
            self._prepared = True

    def raw_packets(self) -> bool:
        return self.raw

    def can_trace(self) -> bool:
        return self.raw

    async def trace(
        self, request: TraceRequest, origin: float
    ) -> tuple[TraceObservation, TraceObservation]:
        return await hop_trace.trace(request, origin, self.trace_limits, self.clock)

    async def resolve(
        self, resolver: Resolver, hostname: str, role: Role, origin: float, rdtype: str = "A"
    ) -> Resolution:
        ctx = dns.QueryContext(
            hostname,
            role,
            resolver,
            origin,
            self.timing.timeout,
            self.timing.dns_window,
            rdtype,
            raw=self.raw,
        )
        if resolver.transport == "udp":
            return await dns.query_udp(ctx)
        if resolver.transport == "tcp":
            return await dns.query_stream(ctx, None)
        if resolver.transport == "tls":
            return await dns.query_stream(ctx, self.contexts.verify_name)
        from probe.measure import doh  # aiohttp is imported only when DoH is used

        return await doh.query_https(ctx, self._http_session(), self.contexts.verify_name)

    async def ipv6_connectivity(self) -> bool:
        return has_ipv6_route()

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            from probe.measure import doh

            self._session = doh.new_session()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def exchange(self, request: Exchange, origin: float) -> Outcome:
        if not self.raw:
            return await self._exchange(_Step(request, origin, self.timing.timeout))
        sock, capture = await _captured_flow(request)
        try:
            tcp, tls, page = await self._exchange(_Step(request, origin, self.timing.timeout, sock))
            if any(o is not None and o.failure is not None for o in (tcp, tls, page)):
                await asyncio.sleep(CAPTURE_LINGER)  # the deciding RST may still be in flight
        finally:
            await capture.stop()
        return msgspec.structs.replace(tcp, packets=capture.tcp_packets(origin)), tls, page

    async def _exchange(self, step: _Step) -> Outcome:
        request = step.request
        connection = await step.connect()
        if connection is None:
            return step.tcp, None, None
        reader, writer = connection
        try:
            if not request.tls:
                return step.tcp, None, await step.http(http.PlainChannel(reader, writer))
            context = (
                self.contexts.verify_name
                if request.role == "network"
                else self.contexts.verify_chain
            )
            channel = await step.handshake(reader, writer, context)
        finally:
            if not request.tls or step.tls_failure is not None:
                _abort(writer)
        if channel is None and step.tls_failure in _VERIFY_FAILURES:
            return await self._unverified(step)
        try:
            page = await step.http(channel) if channel is not None else None
        finally:
            _abort(writer)
        return step.tcp, step.tls, page

    async def download(
        self, request: Exchange, origin: float, limits: throughput.Limits
    ) -> ThroughputObservation:
        await asyncio.sleep(self.timing.download_pause + self._drain)
        self._drain = 0.0
        step = _Step(request, origin, self.timing.timeout)
        host = request.http_host or request.sni or request.ip
        path = request.http_path or "/"
        t0 = step.now()
        observation = ThroughputObservation(
            ip=request.ip, port=request.port, host=host, path=path, role=request.role, t0=t0, t=t0
        )
        connection = await step.connect()
        if connection is None:
            return _failed(observation, step.tcp.failure, step.now())
        reader, writer = connection
        try:
            channel: throughput.Stream = http.PlainChannel(reader, writer)
            if request.tls:
                context = self.contexts.verify_chain  # a slow path, not a name, is measured
                tls_channel = await step.handshake(reader, writer, context)
                if tls_channel is None:
                    return _failed(observation, step.tls_failure, step.now())
                channel = tls_channel
            transfer = await throughput.download(channel, host, path, limits, step.now)
        except Exception as exc:  # translated into a failure string at this edge
            return _failed(observation, failures.from_exception(exc), step.now())
        finally:
            _abort(writer)
        self._drain = throughput.drain_time(transfer, step.now() - t0, limits)
        return msgspec.structs.replace(
            observation, t=step.now(), bytes=transfer.received, samples=transfer.samples
        )

    async def _unverified(self, step: _Step) -> Outcome:
        """Connect again without verification to record the certificate (and the page) that
        failed verification: the evidence of interception."""
        tcp, tls = step.tcp, step.tls
        connection = await step.connect()
        if connection is None:
            return tcp, tls, None
        reader, writer = connection
        try:
            channel = await step.handshake(reader, writer, self.contexts.insecure)
            if channel is not None and tls is not None:
                tls = _with_certificate(tls, channel)
            page = await step.http(channel) if channel is not None else None
        finally:
            _abort(writer)
        return tcp, tls, page


CAPTURE_LINGER: Final = 0.05
IPV6_ROUTE_PROBE: Final = ("2001:4860:4860::8888", 53)
"""A global IPv6 address: a UDP ``connect`` to it sends nothing, it only asks for a route."""


def has_ipv6_route(target: tuple[str, int] = IPV6_ROUTE_PROBE) -> bool:
    """Whether the kernel has a route to the global IPv6 internet from here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            local = sock.getsockname()[0]
    except OSError:
        return False
    return not local.startswith("fe80") and local != "::1"


_VERIFY_FAILURES = frozenset(
    {
        vocabulary.SSL_UNKNOWN_AUTHORITY,
        vocabulary.SSL_INVALID_HOSTNAME,
        vocabulary.SSL_INVALID_CERTIFICATE,
    }
)


async def _captured_flow(request: Exchange) -> tuple[socket.socket, packet_capture.Capture]:
    """A socket bound to its local port before it connects, and a capture of exactly that
    flow, started before the SYN leaves."""
    family = socket.AF_INET6 if ":" in request.ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    flow = packet_capture.Flow("tcp", request.ip, request.port, sock.getsockname()[1])
    capture = packet_capture.Capture(flow, asyncio.get_running_loop().time)
    await capture.start()
    return sock, capture


def _with_certificate(tls: TLSObservation, channel: TLSChannel) -> TLSObservation:
    return msgspec.structs.replace(
        tls, certificate=channel.certificate(), chain=channel.chain(), tls_version=channel.version
    )


def _failed(
    observation: ThroughputObservation, failure: str | None, t: float
) -> ThroughputObservation:
    return msgspec.structs.replace(observation, t=t, failure=failure or vocabulary.UNKNOWN)


_LINGER_RESET: Final = struct.pack("ii", 1, 0)


def _abort(writer: asyncio.StreamWriter) -> None:
    """End a connection with a RST, not a FIN, whatever state it is in. A closed socket
    whose last data went unacknowledged is the kernel's to deliver: it retransmits a dropped
    ClientHello for minutes after the probe gave up, and under residual censorship every
    copy of the forbidden name punishes the address again (the next measurement, even the
    control SNI, then finds it dark). After a download stopped at its limit, a FIN would let
    the server go on sending (a half-close is legal), and behind a policer that tail queues
    for seconds: the volunteer pays for bytes nobody reads, and the next transfer measures it."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(Exception):
        writer.transport.abort()


class _Step:
    """The observations of one exchange as it proceeds."""

    def __init__(
        self, request: Exchange, origin: float, timeout: float, sock: socket.socket | None = None
    ) -> None:
        self.sock = sock  # bound in advance for a captured flow; used by the first connect
        self.request = request
        self.origin = origin
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.tcp = TCPObservation(
            ip=request.ip, port=request.port, role=request.role, t0=0.0, t=0.0
        )
        self.tls: TLSObservation | None = None
        self.tls_failure: str | None = None

    def now(self) -> float:
        return round(max(self.loop.time() - self.origin, 0.0), 6)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        t0 = self.now()
        sock, self.sock = self.sock, None
        try:
            async with asyncio.timeout(self.timeout):
                if sock is None:
                    reader, writer = await asyncio.open_connection(
                        self.request.ip, self.request.port
                    )
                else:
                    await self.loop.sock_connect(sock, (self.request.ip, self.request.port))
                    reader, writer = await asyncio.open_connection(sock=sock)
        except Exception as exc:  # translated into a failure string at this edge
            if sock is not None:
                sock.close()
            failure = failures.from_exception(exc)
            self.tcp = msgspec.structs.replace(self.tcp, t0=t0, t=self.now(), failure=failure)
            return None
        self.tcp = msgspec.structs.replace(self.tcp, t0=t0, t=self.now(), failure=None)
        return reader, writer

    async def handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> TLSChannel | None:
        t0 = self.now()
        try:
            async with asyncio.timeout(self.timeout):
                channel = await handshake(reader, writer, context, self.request.sni)
        except Exception as exc:  # translated into a failure string at this edge
            self.tls_failure = failures.from_exception(exc)
            verified = False if self.tls_failure in _VERIFY_FAILURES else None
            self.tls = self._tls_observation(t0, verified=verified)
            return None
        self.tls_failure = None
        if self.request.http_path is None:
            self.tls_failure = await self._settle(reader, channel)
        if self.tls is None:
            self.tls = self._tls_observation(
                t0,
                tls_version=channel.version,
                certificate=channel.certificate(),
                chain=channel.chain(),
                verified=context.verify_mode != ssl.CERT_NONE,
            )
        return channel if self.tls_failure is None else None

    def _tls_observation(
        self,
        t0: float,
        *,
        verified: bool | None,
        tls_version: str | None = None,
        certificate: Certificate | None = None,
        chain: list[Certificate] | None = None,
    ) -> TLSObservation:
        return TLSObservation(
            ip=self.request.ip,
            port=self.request.port,
            sni=self.request.sni,
            role=self.request.role,
            t0=t0,
            t=self.now(),
            failure=self.tls_failure,
            tls_version=tls_version,
            certificate=certificate,
            chain=chain or [],
            verified=verified,
        )

    async def _settle(self, reader: asyncio.StreamReader, channel: TLSChannel) -> str | None:
        """Listen briefly after the handshake: a censor that lets the handshake finish may
        reset the connection right after it (its RST raced the server's answer)."""
        rtt = max(self.tcp.t - self.tcp.t0, 0.0)
        window = min(max(2 * rtt, 0.05), 1.0)
        try:
            async with asyncio.timeout(window):
                while data := await reader.read(65536):
                    channel.incoming.write(data)  # session tickets and the like
        except TimeoutError:
            return None
        except Exception as exc:  # translated into a failure string at this edge
            return failures.from_exception(exc)
        return vocabulary.EOF_ERROR

    async def http(self, channel: http.Channel) -> HTTPObservation | None:
        request = self.request
        if request.http_path is None:
            return None
        host = request.http_host or request.sni or request.ip
        t0 = self.now()
        failure: str | None = None
        response: http.Response | None = None
        try:
            response = await http.get(
                channel, host, request.http_path, request.blockpage_hints, self.timeout
            )
        except http.BadResponse:
            failure = vocabulary.HTTP_BAD_RESPONSE
        except Exception as exc:  # translated into a failure string at this edge
            failure = failures.from_exception(exc)
        return HTTPObservation(
            ip=request.ip,
            port=request.port,
            host=host,
            path=request.http_path,
            role=request.role,
            t0=t0,
            t=self.now(),
            failure=failure,
            status=response.status if response else None,
            body_sha256=response.body_sha256 if response else None,
            body_length=response.body_length if response else None,
            title=response.title if response else None,
            blockpage=response.blockpage if response else None,
        )
