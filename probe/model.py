"""The measurement wire format, declared once for the probe and the collector.

A measurement is one service tested from one probe at one time: the facts each step
recorded (observations) and the analysis drawn from them. Field names follow OONI where a
concept exists there (``t0``/``t``, ``failure``, ``probe_asn``). The probe's IP address has
no field here on purpose.

Times inside observations are seconds relative to the measurement's ``start_time``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Final, Literal

import msgspec

from probe.vocabulary import METHODS as METHODS
from probe.vocabulary import VERDICTS as VERDICTS
from probe.vocabulary import Method as Method
from probe.vocabulary import Verdict as Verdict

FORMAT_VERSION: Final = "1.1.0"
"""1.1.0: a DNS observation's ``resolver`` names only a well-known public resolver; any other
is one of ``probe.measure.public_resolvers.CLASSES`` (1.0.0 probes sent any resolver's
address); ``probe.attestation`` carries the network the collector attested at check-in.
TLS observations may carry the presented ``chain``, analyses the ``fingerprints_version``
they were judged with, and ``throughput`` observations their download samples. AAAA answers sit
beside A ones, endpoints carry per-family verdicts, and observations may carry captured
packets. ``trace`` observations hold TTL-limited sends of a blocked endpoint's triggering
packet (service name and control name), and endpoint analyses the censoring hop drawn from
them (``location``). Readers accept every 1.x."""

Role = Literal["network", "control"]
"""``network``: what this network gives a user; ``control``: a trusted comparison path."""

ServiceName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,64}$")]
ShortText = Annotated[str, msgspec.Meta(max_length=512)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86400)]
Confidence = Annotated[float, msgspec.Meta(ge=0, le=1)]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2}|ZZ)$")]
ASN = Annotated[int, msgspec.Meta(ge=0, le=4294967295)]


class Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False):
    """Base of every wire type: immutable, and unknown fields are an error."""


class Software(Strict, frozen=True, kw_only=True):
    name: ShortText
    version: ShortText


class ProbeInfo(Strict, frozen=True, kw_only=True):
    """Who measured, without saying where from beyond network and country."""

    id: ShortText | None = None
    asn: ASN | None = None
    cc: CountryCode | None = None
    network_resolver_asn: ASN | None = None
    raw_evidence: bool = False
    missing_evidence: list[ShortText] = []
    # 1.1.0: the collector's signed word on the network this was measured from (from
    # check-in); the collector takes country and ASN from it, not from ``asn``/``cc``.
    attestation: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    ipv6: bool | None = None
    """Whether this network routes IPv6 (None: not checked); without it only DNS is asked."""


class Endpoint(Strict, frozen=True, kw_only=True):
    """An endpoint as tested: a name to resolve or a fixed address, a port, TLS or not."""

    port: Port
    host: ShortText | None = None
    ip: ShortText | None = None
    tls: bool = True
    sni: ShortText | None = None
    http_path: ShortText | None = None
    throughput_path: ShortText | None = None  # 1.1.0

    @property
    def label(self) -> str:
        return f"{self.host or self.ip}:{self.port}"


class DNSAnswer(Strict, frozen=True, kw_only=True):
    rrtype: ShortText
    data: ShortText
    ttl: Annotated[int, msgspec.Meta(ge=0)]


class DNSResponse(Strict, frozen=True, kw_only=True):
    """One response that arrived for a query; an injected answer shows up as a second one."""

    t: Seconds
    rcode: ShortText
    answers: list[DNSAnswer] = []
    transmission: int = 0  # which (re)transmission of the query this answers
    ip_ttl: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None
    """The datagram's IP TTL (hop limit), where raw capture saw it: an injector's differs."""
    ip_id: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None


class Packet(Strict, frozen=True, kw_only=True):
    """A packet the server's side of a flow sent to the probe, as raw capture saw it: the
    fields that tell a censor's injected packet from the server's own."""

    t: Seconds
    flags: Annotated[str, msgspec.Meta(pattern=r"^[FSRPAUECN]{0,9}$")]
    ttl: Annotated[int, msgspec.Meta(ge=0, le=255)]
    window: Annotated[int, msgspec.Meta(ge=0, le=65535)]
    ip_id: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None  # IPv4 only
    payload: Annotated[int, msgspec.Meta(ge=0)] = 0


class DNSObservation(Strict, frozen=True, kw_only=True, tag="dns", tag_field="step"):
    hostname: ShortText
    query_type: ShortText
    resolver: ShortText  # a listed public resolver, or system | private | public-unlisted
    role: Role
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    responses: list[DNSResponse] = []
    attempt: int = 0
    operation: Literal["resolve"] = "resolve"
    endpoint: int | None = None

    def addresses(self) -> list[str]:
        """Addresses in the first response, which is the one a client would use."""
        if not self.responses:
            return []
        return [a.data for a in self.responses[0].answers if a.rrtype in ("A", "AAAA")]


class TCPObservation(Strict, frozen=True, kw_only=True, tag="tcp", tag_field="step"):
    ip: ShortText
    port: Port
    role: Role = "network"
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    attempt: int = 0
    operation: Literal["connect"] = "connect"
    endpoint: int | None = None
    packets: Annotated[list[Packet], msgspec.Meta(max_length=64)] = []
    """With raw capture: the flow's packets from the server side (connect and handshake)."""


class Certificate(Strict, frozen=True, kw_only=True):
    sha256: ShortText
    subject: ShortText
    issuer: ShortText
    not_before: ShortText
    not_after: ShortText
    san: list[ShortText] = []
    sha1: ShortText | None = None  # 1.1.0: published interception CAs are often named by it


class TLSObservation(Strict, frozen=True, kw_only=True, tag="tls", tag_field="step"):
    """A handshake. ``role`` is ``control`` for the innocuous control SNI."""

    ip: ShortText
    port: Port
    sni: ShortText | None
    role: Role
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    tls_version: ShortText | None = None
    certificate: Certificate | None = None
    verified: bool | None = None
    chain: list[Certificate] = []  # 1.1.0: the certificates after the leaf, as presented
    attempt: int = 0
    operation: Literal["tls_handshake"] = "tls_handshake"
    endpoint: int | None = None


class HTTPObservation(Strict, frozen=True, kw_only=True, tag="http", tag_field="step"):
    ip: ShortText
    port: Port
    host: ShortText
    path: ShortText
    role: Role
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    status: int | None = None
    body_sha256: ShortText | None = None
    body_length: int | None = None
    title: ShortText | None = None
    blockpage: ShortText | None = None
    attempt: int = 0
    operation: Literal["http_round_trip"] = "http_round_trip"
    endpoint: int | None = None


class ThroughputObservation(Strict, frozen=True, kw_only=True, tag="throughput", tag_field="step"):
    """A bounded download (1.1.0): cumulative bytes received, sampled over time.

    ``role`` is ``network`` for the service's own name, ``control`` for the control SNI on
    the same address or for a control service (``service`` names which)."""

    ip: ShortText
    port: Port
    host: ShortText
    path: ShortText
    role: Role
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    samples: Annotated[list[tuple[Seconds, int]], msgspec.Meta(max_length=256)] = []
    service: ShortText | None = None
    attempt: int = 0
    operation: Literal["http_round_trip"] = "http_round_trip"
    endpoint: int | None = None


class ControlObservation(Strict, frozen=True, kw_only=True, tag="control", tag_field="step"):
    """A check of this network's health taken between retries (the sandwich)."""

    target: ShortText
    t0: Seconds
    t: Seconds
    failure: ShortText | None = None
    operation: ShortText = "connect"
    attempt: int = 0
    endpoint: int | None = None


HopResult = Literal[
    "time_exceeded", "answer", "reset", "eof", "silence", "unreachable", "connect_failed"
]
"""What one TTL-limited send came back with: a router's ICMP time-exceeded (the packet went
that far and no farther), data (``answer``: the server's, or a censor's forged one), the
connection reset or closed, nothing within the per-hop timeout, an ICMP unreachable, or no
connection to send it on."""
TTL = Annotated[int, msgspec.Meta(ge=1, le=64)]


class Hop(Strict, frozen=True, kw_only=True):
    """One TTL-limited send of a trace. ``router`` is the address that answered ICMP
    time-exceeded (beside a reset or an answer too: an on-path device replied to a packet
    that went on to expire there), kept only for public infrastructure beyond the
    volunteer's own network:
    a hop inside the home network (private, link-local, CGNAT or the probe's own prefix)
    and every hop before the first public one keep their number and lose their address."""

    ttl: TTL
    result: HopResult
    router: ShortText | None = None
    t: Seconds = 0.0  # from the send to the result
    withheld: bool = False  # a router answered here; its address is the volunteer's side


class TraceObservation(Strict, frozen=True, kw_only=True, tag="trace", tag_field="step"):
    """The triggering packet (a ClientHello naming ``name``, an HTTP request with that
    Host over an established connection, or a DNS query for it to a listed public resolver)
    sent with IP TTL 1, 2, … (1.1.0). ``role`` is ``network`` for the service's own name and
    ``control`` for the innocuous one."""

    ip: ShortText
    port: Port
    name: ShortText
    protocol: Literal["tls", "http", "dns"]
    role: Role
    t0: Seconds
    t: Seconds
    hops: Annotated[list[Hop], msgspec.Meta(max_length=64)] = []
    failure: ShortText | None = None
    attempt: int = 0
    operation: Literal["trace"] = "trace"
    endpoint: int | None = None


Observation = (
    DNSObservation
    | TCPObservation
    | TLSObservation
    | HTTPObservation
    | ThroughputObservation
    | ControlObservation
    | TraceObservation
)


Family = Literal["ipv4", "ipv6"]


class FamilyAnalysis(Strict, frozen=True, kw_only=True):
    """One address family's verdict for an endpoint: "blocked over IPv4 only" shows here."""

    family: Family
    verdict: Verdict
    methods: list[Method] = []
    rules: list[ShortText] = []
    tested: list[Literal["dns", "connect"]] = []


class HopLocation(Strict, frozen=True, kw_only=True):
    """Where the censoring device sits on the path, from a blocked endpoint's traces (1.1.0).

    ``hop`` is the last hop the censored flow was seen passing (its router answered at that
    TTL) while one TTL more ended it and let the control flow go on; None: not located, and
    ``reason`` says why (never a guessed hop)."""

    hop: TTL | None = None
    router: ShortText | None = None
    ended: HopResult | None = None  # how the censored flow ended one hop later
    on_path: bool = False
    """The device answered a packet that still went on to expire at ``hop`` (an on-path
    copy, as DNS injectors are): it sits at ``hop``, not after it."""
    ip: ShortText | None = None  # the server address traced towards
    rule: ShortText = ""
    reason: ShortText = ""


class EndpointAnalysis(Strict, frozen=True, kw_only=True):
    endpoint: ShortText
    verdict: Verdict
    methods: list[Method] = []
    confidence: Confidence = 0.0
    rules: list[ShortText] = []
    evidence: list[ShortText] = []
    families: list[FamilyAnalysis] = []
    location: HopLocation | None = None  # 1.1.0: for a blocked endpoint traced


class Analysis(Strict, frozen=True, kw_only=True):
    verdict: Verdict
    methods: list[Method] = []
    confidence: Confidence = 0.0
    rules: list[ShortText] = []
    rules_version: ShortText = ""
    fingerprints_version: ShortText = ""  # 1.1.0: the fingerprint files the verdict used
    endpoints: list[EndpointAnalysis] = []
    evidence: list[ShortText] = []


class Measurement(Strict, frozen=True, kw_only=True):
    id: uuid.UUID
    format_version: ShortText
    software: Software
    probe: ProbeInfo
    service: ServiceName
    category: ShortText
    start_time: dt.datetime
    runtime: Seconds
    endpoints: list[Endpoint]
    observations: list[Observation]
    analysis: Analysis


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Measurement)


def encode(measurement: Measurement) -> bytes:
    return _encoder.encode(measurement)


def decode(data: bytes | str) -> Measurement:
    """Parse one measurement strictly; raises ``msgspec.ValidationError`` naming the path."""
    measurement = _decoder.decode(data)
    check_invariants(measurement)
    return measurement


def to_builtins(measurement: Measurement) -> dict[str, object]:
    value = msgspec.to_builtins(measurement)
    assert isinstance(value, dict)
    return value


def from_builtins(value: object) -> Measurement:
    measurement = msgspec.convert(value, Measurement)
    check_invariants(measurement)
    return measurement


def check_invariants(measurement: Measurement) -> None:
    """Rules the types alone cannot say."""
    if measurement.start_time.tzinfo is None or measurement.start_time.utcoffset() != dt.timedelta(
        0
    ):
        raise msgspec.ValidationError("start_time must be UTC - at `$.start_time`")
    if measurement.format_version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise msgspec.ValidationError(
            f"unsupported format_version {measurement.format_version!r} - at `$.format_version`"
        )
