"""Packet evidence: telling a censor's injected packet from the server's own.

A packet's IP TTL on arrival is its sender's initial TTL minus the hops it crossed. Every
packet of one server's flow left the same machine over the same path, so they arrive with
the same TTL, give or take a route change; a RST forged by a box a few hops away (or sent
with a TTL of its own choosing) arrives with another. The same holds for two DNS answers to
one query: the resolver's and an injector's. Pure functions over recorded packets; without
raw capture there is nothing recorded and nothing here changes a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from probe.model import DNSObservation, DNSResponse, Packet, TCPObservation
from probe.vocabulary import Rule, rule

HOPS: Final = 3
"""More than this many hops between two packets of one flow: not the same sender."""

INJECTED_RESET: Final[dict[str, Rule]] = {
    method: rule(
        f"{method}.injected_ttl",
        f"{method}: the packet that ended the connection arrived with a TTL more than "
        f"{HOPS} hops from the server's SYN-ACK: injected on the path",
        "probe",
    )
    for method in ("tcp.reset", "tls.reset", "tls.eof", "http.reset")
}
INJECTED_DNS: Final = rule(
    "dns.injection.ttl_differs",
    f"two different DNS answers to one query arrived with IP TTLs more than {HOPS} apart: "
    "they came from different senders",
    "probe",
)
_ENDING: Final = ("R", "F")


def _genuine_ttl(flows: Sequence[TCPObservation]) -> tuple[int, str] | None:
    """The server's own TTL: a SYN-ACK of this flow first, else of another flow to the
    same address (the control SNI's), with where it came from."""
    for tcp in flows:
        for packet in tcp.packets:
            if "S" in packet.flags and "A" in packet.flags:
                return packet.ttl, f"the {tcp.role} flow's SYN-ACK"
    return None


def _ending(tcp: TCPObservation) -> Packet | None:
    return next((p for p in tcp.packets if any(f in p.flags for f in _ENDING)), None)


def injected_reset(flow: TCPObservation, same_address: Sequence[TCPObservation]) -> str | None:
    """Evidence that the RST (or FIN) ending ``flow`` was not sent by the server."""
    ending = _ending(flow)
    if ending is None:
        return None
    genuine = _genuine_ttl([flow, *same_address])
    if genuine is None:
        return None
    ttl, source = genuine
    if abs(ending.ttl - ttl) <= HOPS:
        return None
    kind = "RST" if "R" in ending.flags else "FIN"
    ip_id = f", IP ID {ending.ip_id}" if ending.ip_id is not None else ""
    return (
        f"the {kind} arrived with TTL {ending.ttl} (window {ending.window}{ip_id}), "
        f"{source} with TTL {ttl}: injected {abs(ending.ttl - ttl)} hops away from the server"
    )


def injected_answer(observation: DNSObservation, transmission: int) -> str | None:
    """Evidence that two different answers to one transmission came from two senders."""
    responses = [
        r for r in observation.responses if r.transmission == transmission and r.ip_ttl is not None
    ]
    for first in responses:
        for later in responses:
            if _answers(first) != _answers(later) and _apart(first, later):
                return (
                    f"answer {_shown(first)} arrived with IP TTL {first.ip_ttl}, "
                    f"answer {_shown(later)} with {later.ip_ttl}: two senders"
                )
    return None


def _apart(a: DNSResponse, b: DNSResponse) -> bool:
    assert a.ip_ttl is not None
    assert b.ip_ttl is not None
    return abs(a.ip_ttl - b.ip_ttl) > HOPS


def _answers(response: DNSResponse) -> tuple[str, ...]:
    return (response.rcode, *sorted(a.data for a in response.answers))


def _shown(response: DNSResponse) -> str:
    return ",".join(a.data for a in response.answers) or response.rcode
