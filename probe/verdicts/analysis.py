"""Pure rules from observations to verdicts.

Each rule has a stable id; a verdict cites the rules that produced it and ``RULES_VERSION``,
so that stored facts can be re-judged when the rules improve. The rules are conservative on
purpose: ``blocked`` needs a control that succeeded where the network failed, or a
fingerprint no ordinary failure produces. Timeouts are what packet loss looks like, so on
their own they never make ``blocked`` here; the collector, which sees other vantage points,
can confirm them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import msgspec

from probe import vocabulary
from probe.measure import failures
from probe.model import (
    Analysis,
    Certificate,
    ControlObservation,
    DNSObservation,
    Endpoint,
    EndpointAnalysis,
    HTTPObservation,
    Measurement,
    Method,
    Observation,
    TCPObservation,
    ThroughputObservation,
    TLSObservation,
    Verdict,
)
from probe.targets import Service, Target
from probe.verdicts import families, fingerprints, packets, throughput
from probe.verdicts.bogons import is_bogon_answer, scope
from probe.verdicts.rules import (
    CONNECT_FAILED,
    CONTROL_UNRETRIED,
    DNS_BOGON_CONTROL_DIFFERS,
    DNS_BOGON_NO_CONTROL,
    DNS_CENSOR_ANSWER,
    DNS_CONTROL_RESOLVES,
    DNS_FAILS_EVERYWHERE,
    DNS_HIJACK_CONTROL_WORKS,
    DNS_INJECTION,
    DNS_SERVFAIL_CONTROL_RESOLVES,
    DNS_TIMEOUT,
    DNS_TIMEOUT_CONTROL_RESOLVES,
    DNS_UNCONFIRMED,
    DNS_UNCONFIRMED_CONTROL_RESOLVES,
    FAILURE_INCONSISTENT,
    HTTP_BLOCKPAGE,
    HTTP_FAILED,
    HTTP_RESET_HOST_CONTRAST,
    NETWORK_OFFLINE,
    NETWORK_UNSTABLE,
    REACHABLE,
    RULES_VERSION,
    THROTTLED_EVERY_NAME,
    THROTTLED_SNI_CONTRAST,
    TLS_FAILED,
    TLS_FAILED_SNI_CONTRAST,
    TLS_INTERRUPTED_SNI_CONTRAST,
    TLS_INTERRUPTED_SNI_RESIDUAL,
    TLS_INVALID_CERTIFICATE,
    TLS_MITM_CONTROL_VERIFIES,
    TLS_MITM_FORGED,
    TLS_MITM_KNOWN_CA,
    TLS_TIMEOUT_SNI_CONTRAST,
    TLS_TIMEOUT_SNI_RESIDUAL,
    TLS_UNTRUSTED,
    TLS_WRONG_NAME,
)
from probe.vocabulary import Rule

__all__ = ["RULES_VERSION", "analyse", "analyse_endpoint", "combine", "rejudge"]
_T = TypeVar("_T")

_VERIFY: Final = frozenset(
    {
        vocabulary.SSL_UNKNOWN_AUTHORITY,
        vocabulary.SSL_INVALID_CERTIFICATE,
        vocabulary.SSL_INVALID_HOSTNAME,
    }
)
_REACHED_SERVER: Final = _VERIFY | {vocabulary.SSL_FAILED_HANDSHAKE}
_TCP_METHOD: Final[dict[str, Method]] = {
    vocabulary.GENERIC_TIMEOUT: "tcp.timeout",
    vocabulary.CONNECTION_RESET: "tcp.reset",
    vocabulary.CONNECTION_REFUSED: "tcp.refused",
    vocabulary.HOST_UNREACHABLE: "tcp.unreachable",
    vocabulary.NETWORK_UNREACHABLE: "tcp.unreachable",
}
_TLS_METHOD: Final[dict[str, Method]] = {
    vocabulary.GENERIC_TIMEOUT: "tls.timeout",
    vocabulary.CONNECTION_RESET: "tls.reset",
    vocabulary.EOF_ERROR: "tls.eof",
}
_HTTP_METHOD: Final[dict[str, Method]] = {
    vocabulary.GENERIC_TIMEOUT: "http.timeout",
    vocabulary.CONNECTION_RESET: "http.reset",
    vocabulary.EOF_ERROR: "http.reset",
}
_DNS_METHOD: Final[dict[str, Method]] = {
    vocabulary.DNS_NXDOMAIN: "dns.nxdomain",
    vocabulary.DNS_NO_ANSWER: "dns.nxdomain",
    vocabulary.DNS_SERVFAIL: "dns.servfail",
    vocabulary.DNS_REFUSED: "dns.refused",
    vocabulary.GENERIC_TIMEOUT: "dns.timeout",
}


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    rule: Rule
    evidence: str
    method: Method | None = None
    confidence: float = 0.0


# -- entry points ----------------------------------------------------------------------------


def analyse(service: Service, observations: Sequence[Observation], *, offline: bool) -> Analysis:
    endpoints = [
        analyse_endpoint(target, [o for o in observations if o.endpoint == i], offline=offline)
        for i, target in enumerate(service.endpoints)
    ]
    result = combine(endpoints)
    if service.is_control and result.verdict == "blocked":
        # A control is the yardstick the run is judged by, never evidence of blocking.
        return msgspec.structs.replace(
            result, verdict="anomaly", rules=[*result.rules, CONTROL_UNRETRIED.id]
        )
    return result


def rejudge(measurement: Measurement) -> Analysis:
    """The analysis today's rules and fingerprints draw from a stored measurement's facts
    (its endpoints as tested, its observations); an offline run stays offline."""
    service = Service(
        name=measurement.service,
        title=measurement.service,
        category=measurement.category,
        endpoints=tuple(_target_of(e) for e in measurement.endpoints),
    )
    offline = NETWORK_OFFLINE.id in measurement.analysis.rules
    return analyse(service, measurement.observations, offline=offline)


def _target_of(endpoint: Endpoint) -> Target:
    return Target(
        port=endpoint.port,
        host=endpoint.host,
        ip=endpoint.ip,
        tls=endpoint.tls,
        sni=endpoint.sni,
        http_path=endpoint.http_path,
        throughput_path=endpoint.throughput_path,
    )


def analyse_endpoint(
    target: Target, observations: Sequence[Observation], *, offline: bool
) -> EndpointAnalysis:
    if offline:
        finding = Finding(
            "offline", NETWORK_OFFLINE, "control services unreachable: this network is offline"
        )
        return _endpoint_result(target, [finding])
    by_family = families.split(observations)
    results = {
        family: _endpoint_result(target, list(_findings(_Facts.of(own))))
        for family, own in by_family.items()
    }
    return families.join(results, by_family)


def combine(endpoints: list[EndpointAnalysis]) -> Analysis:
    """A service is as bad as its worst endpoint; it is ``down`` only if all endpoints are."""
    version = fingerprints.load().version
    if not endpoints:
        return Analysis(verdict="ok", rules_version=RULES_VERSION, fingerprints_version=version)
    worst = max(endpoints, key=lambda e: vocabulary.SEVERITY[e.verdict]).verdict
    if worst == "down" and any(e.verdict == "ok" for e in endpoints):
        worst = "ok"
    chosen = [e for e in endpoints if e.verdict == worst]
    return Analysis(
        verdict=worst,
        methods=_unique(m for e in chosen for m in e.methods),
        confidence=max((e.confidence for e in chosen), default=0.0),
        rules=_unique(r for e in chosen for r in e.rules),
        rules_version=RULES_VERSION,
        fingerprints_version=version,
        endpoints=endpoints,
        evidence=_unique(_clip(f"{e.endpoint}: {line}") for e in chosen for line in e.evidence)[:8],
    )


def _endpoint_result(target: Target, findings: list[Finding]) -> EndpointAnalysis:
    if not findings:
        findings = [Finding("ok", REACHABLE, "all steps succeeded", confidence=0.9)]
    worst = max(findings, key=lambda f: vocabulary.SEVERITY[f.verdict]).verdict
    chosen = [f for f in findings if f.verdict == worst]
    return EndpointAnalysis(
        endpoint=target.label,
        verdict=worst,
        methods=_unique(f.method for f in chosen if f.method is not None),
        confidence=round(max(f.confidence for f in chosen), 2),
        rules=_unique(f.rule.id for f in chosen),
        evidence=_unique(_clip(f.evidence) for f in chosen),
    )


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))


# -- facts, grouped ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    network_dns: list[DNSObservation]
    control_dns: list[DNSObservation]
    tcp: list[TCPObservation]
    tls: list[TLSObservation]
    control_tls: list[TLSObservation]
    http: list[HTTPObservation]
    control_http: list[HTTPObservation]
    health: list[ControlObservation]
    downloads: list[ThroughputObservation]
    same_address_downloads: list[ThroughputObservation]
    control_downloads: list[ThroughputObservation]

    @classmethod
    def of(cls, observations: Sequence[Observation]) -> _Facts:
        dns = [o for o in observations if isinstance(o, DNSObservation)]
        tls = [o for o in observations if isinstance(o, TLSObservation)]
        http = [o for o in observations if isinstance(o, HTTPObservation)]
        down = [o for o in observations if isinstance(o, ThroughputObservation)]
        return cls(
            network_dns=[o for o in dns if o.role == "network"],
            control_dns=[o for o in dns if o.role == "control"],
            tcp=[o for o in observations if isinstance(o, TCPObservation)],
            tls=[o for o in tls if o.role == "network"],
            control_tls=[o for o in tls if o.role == "control"],
            http=[o for o in http if o.role == "network"],
            control_http=[o for o in http if o.role == "control"],
            health=[o for o in observations if isinstance(o, ControlObservation)],
            downloads=[o for o in down if o.role == "network"],
            same_address_downloads=[o for o in down if o.role == "control" and not o.service],
            control_downloads=[o for o in down if o.role == "control" and o.service],
        )

    def network_addresses(self) -> set[str]:
        return {a for o in self.network_dns for a in o.addresses()}

    def control_addresses(self) -> set[str]:
        return {a for o in self.control_dns for a in o.addresses()}

    def attempts(self, ip: str) -> list[_Attempt]:
        """The network-role attempts at one address, oldest first."""
        by_attempt: dict[int, _Attempt] = {}
        for tcp in self.tcp:
            if tcp.ip == ip and tcp.role == "network":
                by_attempt[tcp.attempt] = _Attempt(tcp)
        for tls in self.tls:
            if tls.ip == ip and tls.attempt in by_attempt:
                by_attempt[tls.attempt].tls = tls
        for page in self.http:
            if page.ip == ip and page.attempt in by_attempt:
                by_attempt[page.attempt].http = page
        return [by_attempt[k] for k in sorted(by_attempt)]

    def tested_addresses(self) -> list[str]:
        return list(dict.fromkeys(o.ip for o in self.tcp if o.role == "network"))


class _Attempt:
    def __init__(self, tcp: TCPObservation) -> None:
        self.tcp = tcp
        self.tls: TLSObservation | None = None
        self.http: HTTPObservation | None = None

    @property
    def stage(self) -> str:
        if self.http is not None and self.http.blockpage:
            return "http"  # a block page is the answer, whatever the certificate said
        if self.tcp.failure is not None:
            return "connect"
        if self.tls is not None and self.tls.failure is not None:
            return "tls"
        if self.http is not None and (self.http.failure is not None or self.http.blockpage):
            return "http"
        return "done"

    @property
    def failure(self) -> str | None:
        if self.stage == "connect":
            return self.tcp.failure
        if self.stage == "tls":
            return self.tls.failure if self.tls else None
        if self.stage == "http":
            return self.http.failure if self.http else None
        return None

    @property
    def ok(self) -> bool:
        return self.stage == "done"


# -- rules -------------------------------------------------------------------------------------


def _findings(facts: _Facts) -> Iterable[Finding]:
    if any(h.failure is not None for h in facts.health):
        yield Finding(
            "offline",
            NETWORK_UNSTABLE,
            "a control target failed between retries: this network is unreliable, no judgement",
        )
        return
    yield from _dns_findings(facts)
    yield from _interception(facts)
    yield from _address_findings(facts)
    yield from _throughput_findings(facts)


def _interception(facts: _Facts) -> Iterable[Finding]:
    """A presented chain holding a known interception CA: the state's certificate, whatever
    the control SNI saw and whether or not this machine trusts it."""
    known = fingerprints.load()
    for tls in facts.tls:
        presented = [c for c in (tls.certificate, *tls.chain) if c is not None]
        found = known.interception_ca(presented)
        if found is None:
            continue
        ca, cert = found
        yield Finding(
            "blocked",
            TLS_MITM_KNOWN_CA,
            f"{tls.ip}: for SNI {tls.sni} the chain presented holds {cert.subject} "
            f"(issuer {cert.issuer}), the interception CA {ca.about.citation()}",
            "tls.mitm",
            0.95,
        )
        return


def _censor_answers(facts: _Facts) -> Iterable[Finding]:
    """The network resolver answered with an address or name only a censor gives."""
    known = fingerprints.load()
    control = facts.control_addresses()
    for obs in facts.network_dns:
        if not obs.responses:
            continue
        for answer in obs.responses[0].answers:
            entry = known.censor_answer(answer.data)
            if entry is None or answer.data in control or is_bogon_answer(answer.data, control):
                continue  # a bogon has its own rule (dns.bogon)
            yield Finding(
                "blocked",
                DNS_CENSOR_ANSWER,
                f"network resolver answered {obs.hostname} with {answer.data}, "
                f"the censor's {entry.about.citation()}",
                "dns.hijack",
                0.95,
            )
            return


def _dns_findings(facts: _Facts) -> Iterable[Finding]:
    injected = list(_injection(facts.network_dns + facts.control_dns))
    yield from injected
    if not facts.network_dns:
        return
    if not injected:  # an injected answer is often a known one: the injection says more
        yield from _censor_answers(facts)
    control = facts.control_addresses()
    control_ok = sorted(a for a in control if scope(a) != "unspecified")
    answered = [o for o in facts.network_dns if o.failure is None]
    if not answered:
        yield from _dns_failure(facts.network_dns, facts.control_dns, control_ok)
        return
    addresses = sorted({a for o in answered for a in o.addresses()})
    lying = addresses and all(is_bogon_answer(a, control) for a in addresses)
    if not lying or len(answered) < len(facts.network_dns) or set(addresses) & control:
        return
    shown = f"network resolver answered {', '.join(addresses)}, not a public address"
    if control_ok:
        yield Finding(
            "blocked",
            DNS_BOGON_CONTROL_DIFFERS,
            f"{shown}; control resolver: {', '.join(control_ok)}",
            "dns.bogon",
            0.95,
        )
    else:
        yield Finding(
            "anomaly", DNS_BOGON_NO_CONTROL, f"{shown}; control resolver failed", "dns.bogon", 0.6
        )


def _injection(observations: list[DNSObservation]) -> Iterable[Finding]:
    for obs in observations:
        for transmission in {r.transmission for r in obs.responses}:
            responses = [r for r in obs.responses if r.transmission == transmission]
            distinct = {
                (r.rcode, tuple(sorted(a.data for a in r.answers if a.rrtype in ("A", "AAAA"))))
                for r in responses
            }
            if len(distinct) < 2:
                continue
            shown = " then ".join(
                f"{r.rcode} {','.join(a.data for a in r.answers) or '-'}" for r in responses[:3]
            )
            evidence = (
                f"{len(responses)} different responses to one query via {obs.resolver}: {shown}"
            )
            senders = packets.injected_answer(obs, transmission)
            if senders is not None:
                yield Finding(
                    "blocked", packets.INJECTED_DNS, f"{evidence}; {senders}", "dns.injection", 0.98
                )
            else:
                yield Finding("blocked", DNS_INJECTION, evidence, "dns.injection", 0.9)
            return


_CENSOR_ANSWERS: Final = frozenset(
    {vocabulary.DNS_NXDOMAIN, vocabulary.DNS_NO_ANSWER, vocabulary.DNS_REFUSED}
)
_SERVFAIL_ATTEMPTS: Final = 4  # a flaky resolver SERVFAILs now and then; a censor always


def _dns_failure(
    network: list[DNSObservation], control: list[DNSObservation], control_ok: list[str]
) -> Iterable[Finding]:
    counts = Counter(o.failure or vocabulary.UNKNOWN for o in network)
    if vocabulary.DNS_NO_RESOLVER in counts:
        return
    failure, times = counts.most_common(1)[0]
    method = _DNS_METHOD.get(failure)
    described = "network resolver: " + ", ".join(f"{k} ×{v}" for k, v in counts.most_common())
    resolved = f"; control resolver: {', '.join(control_ok)}" if control_ok else ""
    only_noise = all(
        k == failure or k == vocabulary.DNS_SERVFAIL or failures.is_timeout(k) for k in counts
    )
    if failure in _CENSOR_ANSWERS and times >= 2 and only_noise and control_ok:
        confidence = 0.9 if times == len(network) else 0.75
        yield Finding(
            "blocked",
            DNS_CONTROL_RESOLVES.of(method or ""),
            described + resolved,
            method,
            confidence,
        )
        return
    if (
        failure == vocabulary.DNS_SERVFAIL
        and times >= _SERVFAIL_ATTEMPTS
        and len(counts) == 1
        and control_ok
    ):
        yield Finding("blocked", DNS_SERVFAIL_CONTROL_RESOLVES, described + resolved, method, 0.7)
        return
    answered = [c for c in control if c.responses]
    if len(counts) == 1 and answered and all(c.failure == failure for c in answered):
        yield Finding(
            "down",
            DNS_FAILS_EVERYWHERE,
            f"{described}; control resolver: {failure} too",
            method,
            0.7,
        )
        return
    confidence = 0.6 if control_ok and len(counts) == 1 and method else 0.3
    yield Finding(
        "anomaly",
        _dns_unconfirmed(failure, bool(control_ok)),
        described + resolved,
        method,
        confidence,
    )


def _dns_unconfirmed(failure: str, control_ok: bool) -> Rule:
    if failures.is_timeout(failure):
        return DNS_TIMEOUT_CONTROL_RESOLVES if control_ok else DNS_TIMEOUT
    family = DNS_UNCONFIRMED_CONTROL_RESOLVES if control_ok else DNS_UNCONFIRMED
    return family.of(failure)


def _address_findings(facts: _Facts) -> Iterable[Finding]:
    network = facts.network_addresses()
    control = facts.control_addresses()
    hijack_suspect = bool(network) and not (network & control) and bool(control)
    results = {ip: _address_result(facts, ip) for ip in facts.tested_addresses()}
    network_side = {
        ip: f for ip, f in results.items() if not control or ip in network or not network
    }
    contrast_side = {ip: f for ip, f in results.items() if ip not in network_side}
    if hijack_suspect and network_side and all(f is not None for f in network_side.values()):
        verified_elsewhere = [ip for ip, f in contrast_side.items() if f is None]
        decisive = [
            f
            for f in network_side.values()
            if f is not None and f.verdict in ("blocked", "anomaly")
        ]
        hijack_like = all(f is not None and _hijack_shaped(f) for f in network_side.values())
        if verified_elsewhere and hijack_like:
            yield Finding(
                "blocked",
                DNS_HIJACK_CONTROL_WORKS,
                f"network resolver sent {', '.join(sorted(network))}, where "
                f"{decisive[0].evidence if decisive else 'the service failed'}; the control resolver's "
                f"{', '.join(verified_elsewhere)} works",
                "dns.hijack",
                0.9,
            )
            yield from (
                f for f in network_side.values() if f is not None and f.method == "http.blockpage"
            )
            return
    for finding in results.values():
        if finding is not None:
            yield finding


def _hijack_shaped(finding: Finding) -> bool:
    """What only a wrong address produces: another server's certificate or a block page.
    (A refusal or silence could as well be a CDN node that is down.)"""
    return finding.method in ("tls.mitm", "http.blockpage") or finding.rule == TLS_WRONG_NAME


def _address_result(facts: _Facts, ip: str) -> Finding | None:
    """None when the address worked (on at least one attempt), else what went wrong; a
    reset shown by its packets to come from elsewhere than the server is blocking."""
    finding = _address_failure(facts, ip)
    rule_ = packets.INJECTED_RESET.get(finding.method or "") if finding else None
    if finding is None or rule_ is None or finding.verdict not in ("blocked", "anomaly"):
        return finding
    controls = [t for t in facts.tcp if t.ip == ip and t.role == "control"]
    for attempt in facts.attempts(ip):
        injected = packets.injected_reset(attempt.tcp, controls)
        if injected is not None:
            return Finding(
                "blocked",
                rule_,
                f"{finding.evidence}; {injected}",
                finding.method,
                max(finding.confidence, 0.95),
            )
    return finding


def _address_failure(facts: _Facts, ip: str) -> Finding | None:
    attempts = facts.attempts(ip)
    if not attempts or any(a.ok for a in attempts):
        return None
    stages = {(a.stage, a.failure) for a in attempts}
    first = attempts[0]
    residual = _residual_timeout(facts, ip, attempts)
    if residual is not None:
        return residual
    if len(stages) > 1 and not all(
        a.http is not None and a.http.blockpage for a in attempts if a.stage == "http"
    ):
        return Finding(
            "anomaly",
            FAILURE_INCONSISTENT,
            f"{ip}: attempts failed differently: {sorted(f'{s}:{f}' for s, f in stages)}",
            _method_of(first),
            0.3,
        )
    if first.stage == "connect":
        return _connect_finding(ip, attempts)
    if first.stage == "tls":
        return _tls_finding(facts, ip, attempts)
    return _http_finding(facts, ip, attempts)


def _method_of(attempt: _Attempt) -> Method | None:
    failure = attempt.failure or ""
    table = {"connect": _TCP_METHOD, "tls": _TLS_METHOD, "http": _HTTP_METHOD}.get(
        attempt.stage, {}
    )
    return table.get(failure)


def _connect_finding(ip: str, attempts: list[_Attempt]) -> Finding:
    failure = attempts[0].failure or vocabulary.UNKNOWN
    return Finding(
        "anomaly",
        CONNECT_FAILED.of(failure),
        f"{ip}: connect failed ({failure}) ×{len(attempts)}; one probe cannot tell a blocked address "
        "from a server that is down",
        _TCP_METHOD.get(failure),
        0.5,
    )


def _tls_finding(facts: _Facts, ip: str, attempts: list[_Attempt]) -> Finding:
    tls = attempts[0].tls
    assert tls is not None
    failure = tls.failure or vocabulary.UNKNOWN
    controls = sorted((c for c in facts.control_tls if c.ip == ip), key=lambda c: c.t0)
    if failure in _VERIFY:
        return _certificate_finding(facts, ip, tls, controls)
    reached = [c for c in controls if _reached(c)]
    method = _TLS_METHOD.get(failure)
    contrast = f"control SNI {controls[0].sni if controls else '?'} reached the server {len(reached)}/{len(controls)}"
    described = (
        f"{ip}: handshake with SNI {tls.sni} failed ({failure}) ×{len(attempts)}; {contrast}"
    )
    interrupted = failure in (vocabulary.CONNECTION_RESET, vocabulary.EOF_ERROR)
    held = bool(reached) and len(reached) == len(controls) and len(controls) >= len(attempts)
    if interrupted and len(attempts) >= 2 and controls:
        if held:
            rule = TLS_INTERRUPTED_SNI_CONTRAST.of(method or "")
            return Finding("blocked", rule, described, method, 0.9)
        if _residual(controls, attempts):
            return Finding(
                "blocked",
                TLS_INTERRUPTED_SNI_RESIDUAL.of(method or ""),
                described + " (before the first handshake with the service's SNI; every "
                "connection to the address failed after it: residual censorship)",
                method,
                0.8,
            )
    if failure == vocabulary.GENERIC_TIMEOUT and held and _sandwiched(controls, attempts):
        return Finding(
            "blocked",
            TLS_TIMEOUT_SNI_CONTRAST,
            described + "; the control SNI completed before, between and after the attempts",
            method,
            0.85,
        )
    if failure == vocabulary.SSL_FAILED_HANDSHAKE:
        method = "tls.alert"
    if held:
        return Finding("anomaly", TLS_FAILED_SNI_CONTRAST.of(failure), described, method, 0.6)
    return Finding("anomaly", TLS_FAILED.of(failure), described, method, 0.4)


# Loss is blind to the server name: for it to time out every one of this many handshakes
# with the service's name, and none with the control name in between, it would have to
# drop a whole handshake's retransmissions several times running (p^k for a handshake-loss
# rate p), while every control and health check in the same seconds got through.
TIMEOUT_CONTRAST_ATTEMPTS: Final = 3


def _sandwiched(controls: list[TLSObservation], attempts: list[_Attempt]) -> bool:
    """Enough timed-out attempts, with a completed control SNI handshake before the first,
    after the last, and at least one per attempt."""
    times = [a.tls.t0 for a in attempts if a.tls is not None]
    return (
        len(attempts) >= TIMEOUT_CONTRAST_ATTEMPTS
        and any(c.t <= min(times) for c in controls)
        and any(c.t0 >= max(times) for c in controls)
    )


def _residual_timeout(facts: _Facts, ip: str, attempts: list[_Attempt]) -> Finding | None:
    """The control SNI completed, the service's SNI then timed out, and from that moment
    everything to the address went unanswered (the control SNI, new connections), while the
    health checks to other addresses in between all passed: a censor that drops the
    address for a while after seeing a forbidden name."""
    first = attempts[0]
    if first.stage != "tls" or first.failure != vocabulary.GENERIC_TIMEOUT or first.tls is None:
        return None
    if len(attempts) < TIMEOUT_CONTRAST_ATTEMPTS or not all(
        failures.is_timeout(a.failure) for a in attempts
    ):
        return None
    sent = first.tls.t0
    controls = _control_outcomes(facts, ip)
    before = [c for c in controls if c.t <= sent]
    after = [c for c in controls if c.t0 > sent]
    if not before or not all(c.reached for c in before):
        return None
    if len(after) < TIMEOUT_CONTRAST_ATTEMPTS - 1 or not all(c.timed_out for c in after):
        return None
    return Finding(
        "blocked",
        TLS_TIMEOUT_SNI_RESIDUAL,
        f"{ip}: the control SNI completed ×{len(before)} before SNI {first.tls.sni} was sent; "
        f"that handshake timed out, and then every connection to the address went unanswered: "
        f"{len(attempts) - 1} more with the service's name, {len(after)} with the control name "
        "(residual censorship)",
        "tls.timeout",
        0.8,
    )


@dataclass(frozen=True)
class _ControlOutcome:
    t0: float
    t: float
    reached: bool
    timed_out: bool


def _control_outcomes(facts: _Facts, ip: str) -> list[_ControlOutcome]:
    """Each control-SNI exchange with the address: its connect, and its handshake if any."""
    handshakes = sorted((c for c in facts.control_tls if c.ip == ip), key=lambda c: c.t0)
    outcomes = []
    for tcp in (o for o in facts.tcp if o.ip == ip and o.role == "control"):
        tls = next((c for c in handshakes if c.attempt == tcp.attempt and c.t0 >= tcp.t0), None)
        if tcp.failure is not None:
            outcomes.append(_ControlOutcome(tcp.t0, tcp.t, False, failures.is_timeout(tcp.failure)))
        elif tls is not None:
            outcomes.append(
                _ControlOutcome(tcp.t0, tls.t, _reached(tls), failures.is_timeout(tls.failure))
            )
    return sorted(outcomes, key=lambda c: c.t0)


def _reached(control: TLSObservation) -> bool:
    """The control handshake got an answer from a TLS server (verification aside)."""
    return control.failure is None or control.failure in _REACHED_SERVER


def _residual(controls: list[TLSObservation], attempts: list[_Attempt]) -> bool:
    """The control SNI completed before the service's SNI was first sent, and after that
    every connection to the address was cut: a censor that punishes the address:port for
    a while after seeing a forbidden name."""
    first_target = min(a.tls.t0 for a in attempts if a.tls is not None)
    before = [c for c in controls if c.t <= first_target]
    after = [c for c in controls if c.t0 > first_target]
    return (
        bool(before)
        and all(_reached(c) for c in before)
        and all(c.failure in (vocabulary.CONNECTION_RESET, vocabulary.EOF_ERROR) for c in after)
    )


def _certificate_finding(
    facts: _Facts, ip: str, tls: TLSObservation, controls: list[TLSObservation]
) -> Finding:
    cert = tls.certificate
    shown = (
        f"certificate issued by {cert.issuer} (sha256 {cert.sha256[:16]}…)"
        if cert
        else "a certificate"
    )
    if tls.failure == vocabulary.SSL_INVALID_HOSTNAME:
        return Finding(
            "anomaly",
            TLS_WRONG_NAME,
            f"{ip}: {shown} not valid for {tls.sni}",
            None,
            0.4,
        )
    if tls.failure != vocabulary.SSL_UNKNOWN_AUTHORITY:
        # Expired or otherwise invalid, but from a known authority: a broken server.
        return Finding(
            "anomaly",
            TLS_INVALID_CERTIFICATE,
            f"{ip}: {shown} for {tls.sni} is invalid",
            None,
            0.3,
        )
    genuine = [c for c in controls if c.failure is None and c.verified and _other_issuer(c, cert)]
    elsewhere = [
        t
        for t in facts.tls
        if t.ip != ip and t.failure is None and t.verified and _other_issuer(t, cert)
    ]
    if genuine or elsewhere:
        where = "control SNI on the same address" if genuine else f"{elsewhere[0].ip}"
        return Finding(
            "blocked",
            TLS_MITM_CONTROL_VERIFIES,
            f"{ip}: {shown} for {tls.sni} does not verify ({tls.failure}); {where} presents one that does",
            "tls.mitm",
            0.9,
        )
    forged = [c for c in controls if _minted_for(c)]
    if forged:
        return Finding(
            "blocked",
            TLS_MITM_FORGED,
            f"{ip}: {shown} for {tls.sni} does not verify; asked for {forged[0].sni}, the same address "
            "presents an untrusted certificate made out to that name too: an interception box",
            "tls.mitm",
            0.85,
        )
    return Finding(
        "anomaly",
        TLS_UNTRUSTED,
        f"{ip}: {shown} for {tls.sni} does not verify ({tls.failure}); nothing to compare with",
        "tls.mitm",
        0.4,
    )


def _minted_for(control: TLSObservation) -> bool:
    """An untrusted certificate naming the innocuous control SNI: no real server at this
    address holds one, so something forges certificates for whatever name it is asked."""
    cert = control.certificate
    if control.failure != vocabulary.SSL_UNKNOWN_AUTHORITY or cert is None or not control.sni:
        return False
    wanted = control.sni.lower()
    return wanted in (n.lower() for n in cert.san) or f"CN={wanted}" in cert.subject


def _other_issuer(genuine: TLSObservation, presented: Certificate | None) -> bool:
    """The verifying certificate comes from another issuer than the untrusted one."""
    if presented is None or genuine.certificate is None:
        return True
    return genuine.certificate.issuer != presented.issuer


# A policer, not congestion: the service gets at most this fraction of the controls' rate.
THROTTLED_FRACTION: Final = 0.1
THROTTLED_SAMPLES: Final = 2


def _throughput_findings(facts: _Facts) -> Iterable[Finding]:
    """Too slow to use, where the controls in the same run were not: on repeated samples,
    each near a constant rate. Throttled only if the same address with the control SNI is
    fast too; a slow address for every name is a rate limit on it or a slow origin, and one
    probe cannot tell which."""
    own = [d for d in facts.downloads if throughput.rate(d) is not None]
    controls = throughput.median_rate(facts.control_downloads)
    if len(own) < THROTTLED_SAMPLES or controls is None or len(facts.control_downloads) < 2:
        return
    rates = [throughput.rate(d) or 0.0 for d in own]
    steady = [d for d in own if throughput.plateau(d)]
    if max(rates) > controls * THROTTLED_FRACTION or len(steady) < THROTTLED_SAMPLES:
        return
    shown = (
        f"{own[0].ip}: {len(own)} downloads of {own[0].path} for {own[0].host} at "
        f"{', '.join(throughput.kbit(r) for r in rates)}, {len(steady)} near a constant rate; "
        f"the control services: {throughput.kbit(controls)} (median of {len(facts.control_downloads)})"
    )
    same = throughput.median_rate(facts.same_address_downloads)
    if same is not None and max(rates) <= same * THROTTLED_FRACTION:
        sni = facts.same_address_downloads[0].host
        yield Finding(
            "blocked",
            THROTTLED_SNI_CONTRAST,
            f"{shown}; the same address with SNI {sni}: {throughput.kbit(same)}",
            "throttled",
            0.85,
        )
        return
    where = (
        f"the same address with the control SNI: {throughput.kbit(same)}"
        if same
        else "no same-address contrast"
    )
    yield Finding("anomaly", THROTTLED_EVERY_NAME, f"{shown}; {where}", None, 0.4)


def _http_finding(facts: _Facts, ip: str, attempts: list[_Attempt]) -> Finding:
    page = attempts[0].http
    assert page is not None
    if page.blockpage:
        return Finding(
            "blocked",
            HTTP_BLOCKPAGE,
            f"{ip}: http://{page.host}{page.path} returned a block page ({page.blockpage}, title {page.title!r})",
            "http.blockpage",
            0.95,
        )
    failure = page.failure or vocabulary.UNKNOWN
    method = _HTTP_METHOD.get(failure)
    controls = [c for c in facts.control_http if c.ip == ip]
    answered = [c for c in controls if c.failure is None]
    described = (
        f"{ip}: GET {page.path} for {page.host} failed ({failure}) ×{len(attempts)}; "
        f"control Host answered {len(answered)}/{len(controls)}"
    )
    held = len(controls) >= len(attempts) and len(answered) == len(controls)
    if (
        held
        and failure in (vocabulary.CONNECTION_RESET, vocabulary.EOF_ERROR)
        and len(attempts) >= 2
    ):
        return Finding("blocked", HTTP_RESET_HOST_CONTRAST, described, method, 0.85)
    return Finding("anomaly", HTTP_FAILED.of(failure), described, method, 0.4)
