"""What the lab's DNS says about each name: behaviours, and the replies they plan (sans-I/O).

A ``Zone`` maps names (exact, or ``*.suffix``) to a behaviour and can be changed while servers
answer from it. ``Zone.plan(query, stream=...)`` turns a query into the replies to send, each
with the delay after the query; the UDP, TCP, DoT and DoH servers only carry them out.

Behaviours: ``Answer`` (A/AAAA records), ``NXDomain``, ``ServFail``, ``Refused``, ``Silent``
(never reply), ``Double`` (a forged answer, then ``gap`` seconds later the real one, as an
on-path injector looks to the client) and ``Delay`` (another behaviour, ``seconds`` late).
Injection is a datagram phenomenon: over a stream (TCP, DoT, DoH) ``Double`` gives only the
real reply.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from collector.demo.servers.names import match, normalise


@dataclass(frozen=True)
class Answer:
    ips: tuple[str, ...]
    ttl: int = 60

    def __post_init__(self) -> None:
        for ip in self.ips:
            ipaddress.ip_address(ip)  # a typo in a scenario should fail loudly, here


@dataclass(frozen=True)
class NXDomain:
    pass


@dataclass(frozen=True)
class ServFail:
    pass


@dataclass(frozen=True)
class Refused:
    pass


@dataclass(frozen=True)
class Silent:
    pass


@dataclass(frozen=True)
class Double:
    forged: Answer
    real: Behaviour
    gap: float = 0.005


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Behaviour


Behaviour = Answer | NXDomain | ServFail | Refused | Silent | Double | Delay

_RCODES: Final[dict[type[Behaviour], dns.rcode.Rcode]] = {
    NXDomain: dns.rcode.NXDOMAIN,
    ServFail: dns.rcode.SERVFAIL,
    Refused: dns.rcode.REFUSED,
}


@dataclass(frozen=True)
class Reply:
    """A response to send ``delay`` seconds after the query arrived."""

    delay: float
    message: dns.message.Message


@dataclass(frozen=True)
class Query:
    """A question the zone was asked, for tests that check what a client did."""

    transport: str
    name: str
    rdtype: str


@dataclass
class Zone:
    """Names and their behaviours; ``default`` covers every name without a rule."""

    rules: dict[str, Behaviour] = field(default_factory=dict)
    default: Behaviour = NXDomain()
    seen: list[Query] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules = {normalise(name): rule for name, rule in self.rules.items()}

    def replace(self, other: Zone) -> None:
        """Take ``other``'s rules and default, keeping what was seen; servers keep answering."""
        self.rules, self.default = dict(other.rules), other.default

    def set(self, name: str, behaviour: Behaviour) -> None:
        self.rules[normalise(name)] = behaviour

    def remove(self, name: str) -> None:
        self.rules.pop(normalise(name), None)

    def behaviour(self, name: str) -> Behaviour:
        rule = match(self.rules, name)
        return self.default if rule is None else rule

    def plan(self, query: dns.message.Message, *, transport: str = "udp") -> list[Reply]:
        """The replies to ``query``; streams (anything but ``udp``) never get a forged one."""
        if len(query.question) != 1 or query.opcode() != dns.opcode.QUERY:
            return [Reply(0.0, _response(query, dns.rcode.FORMERR))]
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True)
        self.seen.append(Query(transport, normalise(name), dns.rdatatype.to_text(question.rdtype)))
        return list(_plan(self.behaviour(name), query, stream=transport != "udp"))


def _plan(behaviour: Behaviour, query: dns.message.Message, *, stream: bool) -> Iterable[Reply]:
    match behaviour:
        case Silent():
            return []
        case Answer():
            return [Reply(0.0, _answer(query, behaviour))]
        case Delay(seconds, then):
            return [Reply(r.delay + seconds, r.message) for r in _plan(then, query, stream=stream)]
        case Double(forged, real, gap):
            later = [Reply(r.delay + gap, r.message) for r in _plan(real, query, stream=stream)]
            return later if stream else [Reply(0.0, _answer(query, forged)), *later]
        case _:
            return [Reply(0.0, _response(query, _RCODES[type(behaviour)]))]


def _response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    response.set_rcode(rcode)
    return response


def _answer(query: dns.message.Message, answer: Answer) -> dns.message.Message:
    response = _response(query, dns.rcode.NOERROR)
    question = query.question[0]
    wanted = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
    ips = [ip for ip in answer.ips if ipaddress.ip_address(ip).version == wanted]
    if ips:
        response.answer.append(
            dns.rrset.from_text_list(
                question.name, answer.ttl, dns.rdataclass.IN, question.rdtype, ips
            )
        )
    return response


def parse_query(wire: bytes) -> dns.message.Message | None:
    """A query from the wire, or ``None`` for anything that is not one."""
    try:
        message = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    return None if message.flags & dns.flags.QR else message
