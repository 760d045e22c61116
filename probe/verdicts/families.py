"""Address families: an endpoint is judged over IPv4 and IPv6 apart, then the two are joined.

Censors often filter one family and forget the other, so each family's observations (its
DNS query type, the addresses its connections went to) are judged on their own, and the
endpoint's result says which family carried the verdict ("blocked over IPv4 only"). A family
with nothing to judge (a name without AAAA records anywhere) adds nothing, so an IPv4-only
service reads exactly as it did before IPv6 was measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal, TypeVar

import msgspec

from probe import vocabulary
from probe.model import (
    ControlObservation,
    DNSObservation,
    EndpointAnalysis,
    Family,
    FamilyAnalysis,
    Observation,
    ThroughputObservation,
)
from probe.vocabulary import rule

_T = TypeVar("_T")

ONE_FAMILY: Final = rule(
    "ip.one_family",
    "an endpoint fails over one address family while the other, tested the same way, works",
    "probe",
)
FAMILIES: Final[tuple[Family, ...]] = ("ipv4", "ipv6")
_LABEL: Final[dict[Family, str]] = {"ipv4": "IPv4", "ipv6": "IPv6"}


def family_of(observation: Observation) -> Family | None:
    """The family an observation belongs to; None for what every family is held against:
    the network's health checks and the control services' download rates (a yardstick
    measured over whichever family reached the control first)."""
    if isinstance(observation, ControlObservation):
        return None
    if isinstance(observation, ThroughputObservation) and observation.service:
        return None
    if isinstance(observation, DNSObservation):
        return "ipv6" if observation.query_type == "AAAA" else "ipv4"
    return "ipv6" if ":" in observation.ip else "ipv4"


def split(observations: Sequence[Observation]) -> dict[Family, list[Observation]]:
    """Each family's observations (health checks in both), leaving out a family with nothing
    to judge. IPv4 is always kept: it is what every endpoint was judged on before."""
    shared = [o for o in observations if family_of(o) is None]
    found: dict[Family, list[Observation]] = {}
    for family in FAMILIES:
        own = [o for o in observations if family_of(o) == family]
        if all(_empty_aaaa(o) for o in own if _network_dns(o)):
            own = [o for o in own if not _network_dns(o)]
        if family == "ipv4" or _judgeable(own):
            found[family] = own + shared
    if "ipv6" in found and not any(family_of(o) == "ipv4" for o in observations):
        del found["ipv4"]  # a fixed IPv6 address: there is no IPv4 side at all
    return found


def _network_dns(observation: Observation) -> bool:
    return isinstance(observation, DNSObservation) and observation.role == "network"


def _empty_aaaa(observation: Observation) -> bool:
    """A network resolver's empty AAAA answer. Many resolvers strip AAAA on IPv4-only
    networks, so when every AAAA answer was empty that is no evidence of censorship (the
    facts are kept; the rules leave them out). An NXDOMAIN, a forged AAAA answer or two
    answers to one query still count."""
    return (
        isinstance(observation, DNSObservation)
        and observation.query_type == "AAAA"
        and observation.failure == vocabulary.DNS_NO_ANSWER
        and len(observation.responses) <= 1
    )


def _judgeable(observations: Sequence[Observation]) -> bool:
    """Something happened in this family: an address was given or tested, or a resolver
    answered twice with records (an injector forging AAAA answers). Two empty answers to
    one query are a retransmission on a lossy path, not evidence: a name without AAAA
    records must not become a family to judge because a packet was lost."""
    for obs in observations:
        if not isinstance(obs, DNSObservation):
            return True
        if obs.addresses():
            return True
        if len(obs.responses) > 1 and any(r.answers for r in obs.responses):
            return True
    return False


def tested(observations: Iterable[Observation]) -> list[Literal["dns", "connect"]]:
    steps: list[Literal["dns", "connect"]] = []
    if any(isinstance(o, DNSObservation) for o in observations):
        steps.append("dns")
    if any(not isinstance(o, DNSObservation | ControlObservation) for o in observations):
        steps.append("connect")
    return steps


def join(
    results: Mapping[Family, EndpointAnalysis], observations: Mapping[Family, list[Observation]]
) -> EndpointAnalysis:
    """One endpoint result from the families' results: as bad as the worse family, saying
    which family that was. A single family's result is returned as it is."""
    if len(results) == 1:
        return next(iter(results.values()))
    summaries = [
        FamilyAnalysis(
            family=family,
            verdict=result.verdict,
            methods=result.methods,
            rules=result.rules,
            tested=tested(observations[family]),
        )
        for family, result in results.items()
    ]
    worst = max(results.values(), key=lambda r: vocabulary.SEVERITY[r.verdict]).verdict
    chosen = {f: r for f, r in results.items() if r.verdict == worst}
    evidence = [f"{_LABEL[f]}: {line}" for f, r in chosen.items() for line in r.evidence]
    rules = _unique(r for result in chosen.values() for r in result.rules)
    contrast = _one_family(summaries)
    if contrast is not None:
        evidence.insert(0, contrast)
        rules.append(ONE_FAMILY.id)
    first = next(iter(results.values()))
    return msgspec.structs.replace(
        first,
        verdict=worst,
        methods=_unique(m for r in chosen.values() for m in r.methods),
        confidence=max(r.confidence for r in chosen.values()),
        rules=rules,
        evidence=evidence,
        families=summaries,
    )


def _one_family(summaries: list[FamilyAnalysis]) -> str | None:
    """ "blocked over IPv4 only; IPv6 works" when one family failed and the other connected."""
    failed = [s for s in summaries if s.verdict in ("blocked", "anomaly")]
    working = [s for s in summaries if s.verdict == "ok" and "connect" in s.tested]
    if len(failed) != 1 or len(working) != 1:
        return None
    bad, good = failed[0], working[0]
    return f"{bad.verdict} over {_LABEL[bad.family]} only; {_LABEL[good.family]} works"


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))
