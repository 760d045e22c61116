"""The one vocabulary every layer speaks: verdicts, methods, operations, failures, rules.

A leaf module: it imports nothing of censorwatch, so the probe, the collector and the alert
engine can all use it without depending on one another. Verdicts and methods are DESIGN.md's
contract; failure strings follow OONI's df-007 data format so researchers can read them
without a glossary (``probe.measure.failures`` maps platform errors onto them).

Every rule that can produce a verdict, a flag or an incident, in any layer, is a frozen
``Rule`` registered here under a stable id; outputs cite rule ids, and
``python -m probe.vocabulary`` prints the table of them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Verdict = Literal["ok", "blocked", "anomaly", "down", "offline"]
VERDICTS: Final[tuple[Verdict, ...]] = ("ok", "blocked", "anomaly", "down", "offline")
# Which verdict wins when several findings or address families disagree: the strongest claim.
SEVERITY: Final[dict[Verdict, int]] = {"ok": 0, "down": 1, "offline": 2, "anomaly": 3, "blocked": 4}

Method = Literal[
    "dns.nxdomain",
    "dns.bogon",
    "dns.hijack",
    "dns.injection",
    "dns.timeout",
    "dns.servfail",
    "dns.refused",
    "tcp.timeout",
    "tcp.reset",
    "tcp.refused",
    "tcp.unreachable",
    "tls.reset",
    "tls.timeout",
    "tls.eof",
    "tls.mitm",
    "tls.alert",
    "http.blockpage",
    "http.reset",
    "http.timeout",
    "throttled",
]
METHODS: Final[tuple[str, ...]] = Method.__args__  # type: ignore[attr-defined]

Operation = Literal["resolve", "connect", "tls_handshake", "http_round_trip"]

GENERIC_TIMEOUT: Final = "generic_timeout_error"
CONNECTION_REFUSED: Final = "connection_refused"
CONNECTION_RESET: Final = "connection_reset"
CONNECTION_ABORTED: Final = "connection_aborted"
HOST_UNREACHABLE: Final = "host_unreachable"
NETWORK_UNREACHABLE: Final = "network_unreachable"
EOF_ERROR: Final = "eof_error"
SSL_UNKNOWN_AUTHORITY: Final = "ssl_unknown_authority"
SSL_INVALID_HOSTNAME: Final = "ssl_invalid_hostname"
SSL_INVALID_CERTIFICATE: Final = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE: Final = "ssl_failed_handshake"
DNS_NXDOMAIN: Final = "dns_nxdomain_error"
DNS_SERVFAIL: Final = "dns_servfail_error"
DNS_REFUSED: Final = "dns_refused_error"
DNS_NO_ANSWER: Final = "dns_no_answer"
DNS_BOGUS_RESPONSE: Final = "dns_bogus_response"
DNS_NO_RESOLVER: Final = "dns_no_resolver"
HTTP_BAD_RESPONSE: Final = "http_bad_response"
UNKNOWN: Final = "unknown_failure"

FAILURES: Final = frozenset(
    {
        GENERIC_TIMEOUT,
        CONNECTION_REFUSED,
        CONNECTION_RESET,
        CONNECTION_ABORTED,
        HOST_UNREACHABLE,
        NETWORK_UNREACHABLE,
        EOF_ERROR,
        SSL_UNKNOWN_AUTHORITY,
        SSL_INVALID_HOSTNAME,
        SSL_INVALID_CERTIFICATE,
        SSL_FAILED_HANDSHAKE,
        DNS_NXDOMAIN,
        DNS_SERVFAIL,
        DNS_REFUSED,
        DNS_NO_ANSWER,
        DNS_BOGUS_RESPONSE,
        DNS_NO_RESOLVER,
        HTTP_BAD_RESPONSE,
        UNKNOWN,
    }
)


Layer = Literal["probe", "collector", "alerts"]
_RULE_ID: Final = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")  # "reachable" predates dots


@dataclass(frozen=True)
class Rule:
    """A decision rule: a stable id cited by what it produces, and what it says in words."""

    id: str
    description: str
    layer: Layer


class DuplicateRule(ValueError):
    """Two rules claim one id; carries both."""

    def __init__(self, first: Rule, second: Rule) -> None:
        self.first = first
        self.second = second
        super().__init__(f"rule id {first.id!r} registered twice: {first} and {second}")


_REGISTRY: Final[dict[str, Rule]] = {}


def rule(rule_id: str, description: str, layer: Layer) -> Rule:
    """Declare and register a rule; ids are unique across every layer."""
    if not _RULE_ID.match(rule_id):
        raise ValueError(f"rule id {rule_id!r} is not (dotted) snake_case")
    made = Rule(rule_id, description, layer)
    known = _REGISTRY.get(rule_id)
    if known is not None and known != made:
        raise DuplicateRule(known, made)
    _REGISTRY[rule_id] = made
    return made


def registered() -> tuple[Rule, ...]:
    """Every rule registered so far, by id (import the rule modules first)."""
    return tuple(_REGISTRY[k] for k in sorted(_REGISTRY))


def lookup(rule_id: str) -> Rule | None:
    return _REGISTRY.get(rule_id)


def rules_table() -> str:
    """The registered rules as a Markdown table (for the README)."""
    rows = ["| rule | layer | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{r.id}` | {r.layer} | {r.description} |" for r in registered()]
    return "\n".join(rows)


RULE_MODULES: Final = (
    "probe.verdicts.rules",
    "probe.verdicts.analysis",
    "probe.verdicts.location",
    "collector.ingest.reanalysis",
    "alerts.incidents",
)


if __name__ == "__main__":
    import importlib

    # run as a script this module is __main__, not the registry the rule modules fill
    registry = importlib.import_module("probe.vocabulary")
    for module in registry.RULE_MODULES:
        importlib.import_module(module)
    print(registry.rules_table())
