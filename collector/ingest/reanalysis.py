"""The collector's second look at a verdict, with context no single probe has.

A probe judges from its own network. The collector also knows how the same service fared
recently from other vantage points: control probes on uncensored networks and probes in
other ASNs. Pure functions over plain data; every outcome names its rule and the rules'
version so a verdict can be traced and recomputed when the rules change.

- A failure while another vantage reaches the service proves the service is up, not that
  this one failure was interference: a lone failure fits a bad Wi-Fi just as well. The
  verdict stands (``anomaly`` stays ``anomaly``) and the rule says the service was
  reachable elsewhere; only the incident detector, counting independent voices against a
  baseline, may call a pattern of such failures blocking. Reanalysis never raises a
  verdict to ``blocked`` (rules version 2; version 1 did, and one flaky probe among 24
  became an incident).
- A failure while every vantage that tried fails, control probes included, is the service
  being ``down`` — unless the probe saw a fingerprint of censorship (bogon answer,
  injected packet, blockpage, rogue certificate), which no outage produces.
- Otherwise the probe's verdict stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from probe.vocabulary import VERDICTS, Verdict, rule

RULES_VERSION: Final = "2"
FAILING: Final = frozenset({"anomaly", "blocked", "down"})
FINGERPRINTS: Final = frozenset(
    {"dns.bogon", "dns.injection", "dns.hijack", "http.blockpage", "tls.mitm"}
)


KEEP: Final = rule("cw.keep", "the probe's verdict stands: no context contradicts it", "collector")
KEEP_FINGERPRINT: Final = rule(
    "cw.keep.fingerprint", "everyone fails, but the probe saw a censorship fingerprint", "collector"
)
CONTROL_REACHES: Final = rule(
    "cw.context.control_reaches",
    "a control probe reached the service while this one failed: the verdict stands",
    "collector",
)
OTHER_ASN_REACHES: Final = rule(
    "cw.context.other_asn_reaches",
    "a probe in another ASN reached the service while this one failed: the verdict stands",
    "collector",
)
ALL_FAIL: Final = rule(
    "cw.down.all_vantages_fail", "every vantage point, control probes included, fails", "collector"
)
RULES: Final = (KEEP, KEEP_FINGERPRINT, CONTROL_REACHES, OTHER_ASN_REACHES, ALL_FAIL)


@dataclass(frozen=True)
class Reading:
    """What one probe concluded about one service."""

    verdict: Verdict
    methods: tuple[str, ...]
    asn: int
    control: bool


@dataclass(frozen=True)
class Vantage:
    """Recent verdicts on the same service from one (ASN, control) group of probes."""

    asn: int
    control: bool
    ok: int
    failing: int

    @property
    def reaches(self) -> bool:
        return self.ok > 0 and self.ok >= self.failing

    @property
    def fails(self) -> bool:
        return self.failing > self.ok


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    rule: str
    rules_version: str = RULES_VERSION


def vantage_counts(rows: Iterable[tuple[int, bool, str, int]]) -> list[Vantage]:
    """Fold (asn, control, verdict, count) rows into vantages; ``offline`` says nothing."""
    counts: dict[tuple[int, bool], list[int]] = {}
    for asn, control, verdict, count in rows:
        pair = counts.setdefault((asn, control), [0, 0])
        if verdict == "ok":
            pair[0] += count
        elif verdict in FAILING:
            pair[1] += count
    return [Vantage(asn, control, ok, failing) for (asn, control), (ok, failing) in counts.items()]


_KEPT: Final = {verdict: Outcome(verdict, KEEP.id) for verdict in VERDICTS}  # the common case


def reanalyse(reading: Reading, context: Iterable[Vantage]) -> Outcome:
    if reading.verdict not in ("anomaly", "blocked"):
        return _KEPT.get(reading.verdict) or Outcome(reading.verdict, KEEP.id)
    vantages = list(context)
    if reading.control and any(v.reaches for v in vantages):
        # Control networks are uncensored by assumption: a lone failure there is local.
        return Outcome(reading.verdict, KEEP.id)
    if any(v.control and v.reaches for v in vantages):
        return Outcome(reading.verdict, CONTROL_REACHES.id)
    if any(v.asn != reading.asn and v.reaches for v in vantages):
        return Outcome(reading.verdict, OTHER_ASN_REACHES.id)
    controls_fail = any(v.control and v.fails for v in vantages)
    if controls_fail and not any(v.reaches for v in vantages):
        if FINGERPRINTS.intersection(reading.methods):
            return Outcome(reading.verdict, KEEP_FINGERPRINT.id)
        return Outcome("down", ALL_FAIL.id)
    return Outcome(reading.verdict, KEEP.id)
