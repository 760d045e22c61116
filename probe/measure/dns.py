"""DNS queries over UDP, TCP, DoT and DoH, recording every response that arrives.

On UDP the socket stays open for a short window after the first response, because an
on-path injector answers first and the real resolver a little later: two different
responses to one query are the evidence of injection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import msgspec

from probe import vocabulary
from probe.measure import failures
from probe.measure import raw as packet_capture
from probe.measure.network import Resolution, Resolver, parse_network_resolver
from probe.model import DNSAnswer, DNSObservation, DNSResponse, Role

RESOLV_CONF: Final = Path("/etc/resolv.conf")
_RCODE_FAILURE: Final[dict[str, str]] = {
    "NXDOMAIN": vocabulary.DNS_NXDOMAIN,
    "SERVFAIL": vocabulary.DNS_SERVFAIL,
    "REFUSED": vocabulary.DNS_REFUSED,
}
Clock = Callable[[], float]


def system_resolver(path: Path = RESOLV_CONF) -> Resolver | None:
    """The network's own resolver: the first ``nameserver`` line of resolv.conf."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return Resolver("udp", fields[1], 53, system=True)  # keeps an IPv6 scope (%eth0)
    return None


def network_resolver(spec: str | None, resolv_conf: Path = RESOLV_CONF) -> Resolver | None:
    """The network's resolver the probe measures: ``spec`` (``--resolver`` or the daemon's
    ``resolver`` setting, parsed by ``parse_network_resolver``), else resolv.conf's.
    Raises ``ResolverSpecError`` for a spec that is not plain DNS to an address."""
    return system_resolver(resolv_conf) if spec is None else parse_network_resolver(spec)


EDNS_PAYLOAD: Final = 1232  # the DNS flag day 2020 size: no fragmentation, rarely truncated


def make_query(hostname: str, rdtype: str = "A") -> dns.message.QueryMessage:
    query = dns.message.make_query(hostname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
    query.flags |= dns.flags.RD
    return query


def response_fact(message: dns.message.Message, t: float, transmission: int = 0) -> DNSResponse:
    answers = [
        DNSAnswer(rrtype=dns.rdatatype.to_text(rrset.rdtype), data=rdata.to_text(), ttl=rrset.ttl)
        for rrset in message.answer
        for rdata in rrset
    ]
    return DNSResponse(
        t=round(t, 6),
        rcode=dns.rcode.to_text(message.rcode()),
        answers=answers[:64],
        transmission=transmission,
    )


def failure_of(response: DNSResponse, rdtype: str) -> str | None:
    """What a response means for a client that wanted addresses."""
    if response.rcode in _RCODE_FAILURE:
        return _RCODE_FAILURE[response.rcode]
    if response.rcode != "NOERROR":
        return vocabulary.DNS_BOGUS_RESPONSE
    if not any(a.rrtype == rdtype for a in response.answers):
        return vocabulary.DNS_NO_ANSWER
    return None


@dataclass
class _Listener(asyncio.DatagramProtocol):
    """Collects every well-formed response to a UDP query and its retransmissions.

    Each transmission carries its own ID, so that two different answers to one ID (an
    injector racing the resolver) are told apart from a slow resolver answering a
    retransmission differently.
    """

    clock: Clock
    first: asyncio.Future[None]
    query: dns.message.Message
    sent: list[int] = field(default_factory=list)  # the ID of each transmission
    responses: list[tuple[float, int, dns.message.Message]] = field(default_factory=list)
    _wire: bytes = b""

    def transmission(self) -> bytes:
        """The query's wire form under a fresh ID (built once, only the ID changes)."""
        if not self.sent:
            self._wire = self.query.to_wire()
        query_id = secrets.randbits(16)
        self.sent.append(query_id)
        return query_id.to_bytes(2, "big") + self._wire[2:]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            message = dns.message.from_wire(data)
        except Exception:  # a malformed datagram is noise, not a response
            return
        if not message.flags & dns.flags.QR or message.question != self.query.question:
            return
        if message.id in self.sent:
            self.responses.append((self.clock(), self.sent.index(message.id), message))
            if not self.first.done():
                self.first.set_result(None)

    def error_received(self, exc: Exception) -> None:
        if not self.first.done():
            self.first.set_exception(exc)

    def truncated(self) -> bool:
        return bool(self.responses) and bool(self.responses[0][2].flags & dns.flags.TC)


@dataclass(frozen=True)
class QueryContext:
    hostname: str
    role: Role
    resolver: Resolver
    origin: float
    timeout: float
    window: float
    rdtype: str = "A"
    raw: bool = False  # capture the responses' datagrams (IP TTL and ID), see probe.measure.raw

    def observation(
        self, t0: float, t: float, failure: str | None, responses: list[DNSResponse]
    ) -> DNSObservation:
        return DNSObservation(
            hostname=self.hostname,
            query_type=self.rdtype,
            resolver=self.resolver.label,
            role=self.role,
            t0=round(max(t0, 0.0), 6),
            t=round(max(t, 0.0), 6),
            failure=failure,
            responses=responses,
        )

    def failed(self, t0: float, failure: str) -> DNSObservation:
        now = asyncio.get_running_loop().time() - self.origin
        return self.observation(t0, now, failure, [])

    def from_responses(
        self,
        t0: float,
        messages: list[tuple[float, int, dns.message.Message]],
        datagrams: Sequence[packet_capture.DNSPacket] = (),
    ) -> DNSObservation:
        facts = [response_fact(m, when - self.origin, n) for when, n, m in messages]
        if datagrams:
            facts = with_ip_fields(facts, [m for _, _, m in messages], datagrams)
        t = messages[0][0] - self.origin
        return self.observation(t0, t, failure_of(facts[0], self.rdtype), facts)


async def query_udp(ctx: QueryContext) -> Resolution:
    loop = asyncio.get_running_loop()
    t0 = loop.time() - ctx.origin
    first: asyncio.Future[None] = loop.create_future()
    listener = _Listener(loop.time, first, make_query(ctx.hostname, ctx.rdtype))
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: listener, remote_addr=(ctx.resolver.host, ctx.resolver.port)
        )
    except OSError as exc:
        return Resolution(ctx.failed(t0, failures.from_exception(exc)))
    capture = await _capture(ctx, transport)
    try:
        await _send_until_answered(transport, ctx, listener)
    except Exception as exc:  # translated into a failure string at this edge
        transport.close()
        if capture is not None:
            await capture.stop()
        return Resolution(ctx.failed(t0, failures.from_exception(exc)))
    if listener.truncated():
        transport.close()
        if capture is not None:
            await capture.stop()
        return await query_stream(ctx, None)  # the full answer needs TCP (RFC 7766)
    first_obs = ctx.from_responses(t0, list(listener.responses))
    late = asyncio.ensure_future(_linger(transport, listener, ctx, t0, first_obs, capture))
    return Resolution(first_obs, late)


async def _capture(
    ctx: QueryContext, transport: asyncio.DatagramTransport
) -> packet_capture.Capture | None:
    """With raw capture, this query's responses as datagrams (to our port, from the resolver)."""
    if not ctx.raw:
        return None
    local_port = transport.get_extra_info("sockname")[1]
    flow = packet_capture.Flow("udp", ctx.resolver.host, ctx.resolver.port, local_port)
    capture = packet_capture.Capture(flow, asyncio.get_running_loop().time)
    await capture.start()
    return capture


def with_ip_fields(
    facts: list[DNSResponse],
    messages: list[dns.message.Message],
    datagrams: Sequence[packet_capture.DNSPacket],
) -> list[DNSResponse]:
    """Each response with the IP TTL and ID of the datagram that carried it (matched by
    query ID and answer set, in arrival order)."""
    unused = list(datagrams)
    annotated: list[DNSResponse] = []
    for fact, message in zip(facts, messages, strict=True):
        addresses = tuple(
            sorted(
                str(ipaddress.ip_address(a.data)) for a in fact.answers if a.rrtype in ("A", "AAAA")
            )
        )
        match = next(
            (d for d in unused if d.query_id == message.id and d.answers == addresses), None
        )
        if match is not None:
            unused.remove(match)
            fact = msgspec.structs.replace(fact, ip_ttl=match.ttl, ip_id=match.ip_id)
        annotated.append(fact)
    return annotated


async def _send_until_answered(
    transport: asyncio.DatagramTransport, ctx: QueryContext, listener: _Listener
) -> None:
    """Send, and resend (with a new ID) about once a second, until a response arrives."""
    interval = min(1.0, max(ctx.timeout / 3, 0.05))
    async with asyncio.timeout(ctx.timeout):
        while True:
            transport.sendto(listener.transmission())
            done, _ = await asyncio.wait({listener.first}, timeout=interval)
            if done:
                listener.first.result()
                return


async def _linger(
    transport: asyncio.DatagramTransport,
    listener: _Listener,
    ctx: QueryContext,
    t0: float,
    first: DNSObservation,
    capture: packet_capture.Capture | None = None,
) -> DNSObservation:
    try:
        await asyncio.sleep(ctx.window)
    finally:
        transport.close()
        if capture is not None:
            await capture.stop()
    if capture is not None:
        return ctx.from_responses(t0, list(listener.responses), capture.dns_packets())
    if len(listener.responses) == len(first.responses):
        return first
    return ctx.from_responses(t0, list(listener.responses))


async def query_stream(ctx: QueryContext, tls_context: ssl.SSLContext | None) -> Resolution:
    """TCP or DoT: one response per query by construction."""
    loop = asyncio.get_running_loop()
    query = make_query(ctx.hostname, ctx.rdtype)
    t0 = loop.time() - ctx.origin
    try:
        address = await _address_of(ctx.resolver.host, ctx.resolver.port)
        if tls_context is None:
            answer = await dns.asyncquery.tcp(
                query, address, timeout=ctx.timeout, port=ctx.resolver.port
            )
        else:
            answer = await dns.asyncquery.tls(
                query,
                address,
                timeout=ctx.timeout,
                port=ctx.resolver.port,
                ssl_context=tls_context,
                server_hostname=ctx.resolver.host,
            )
    except Exception as exc:  # translated into a failure string at this edge
        return Resolution(
            ctx.observation(t0, loop.time() - ctx.origin, failure_of_exception(exc), [])
        )
    return Resolution(ctx.from_responses(t0, [(loop.time(), 0, answer)]))


def failure_of_exception(exc: BaseException) -> str:
    """Failure strings for the DNS transports' own exception types."""
    if isinstance(exc, dns.exception.Timeout):
        return vocabulary.GENERIC_TIMEOUT
    if isinstance(exc, dns.exception.FormError | dns.message.ShortHeader):
        return vocabulary.DNS_BOGUS_RESPONSE
    if isinstance(exc, dns.exception.DNSException):
        return vocabulary.DNS_BOGUS_RESPONSE
    return failures.from_exception(exc)


async def _address_of(host: str, port: int) -> str:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    infos = await loop.getaddrinfo(host, port, type=0)
    return str(infos[0][4][0])
