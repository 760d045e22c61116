"""The probe's rules: every id a probe verdict can cite, registered once and frozen.

Ids are stored with every measurement, so they never change meaning; a rule that changes
behaviour bumps ``RULES_VERSION``. Rules that differ only by the failure string they saw
(``tcp.connection_refused``, ``tcp.generic_timeout_error``, …) form a ``Family``: one
registered rule per failure that reaches them, and one ``other_failure`` rule for the rest,
so the list stays closed whatever the platform reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from probe import vocabulary
from probe.vocabulary import Rule, rule

RULES_VERSION: Final = "2026.12.2"  # .2: a plateau is most windows near their median


@dataclass(frozen=True)
class Family:
    members: Mapping[str, Rule]
    other: Rule

    def of(self, key: str) -> Rule:
        return self.members.get(key, self.other)


def _family(template: str, keys: Iterable[str], description: str) -> Family:
    """``template`` holds one ``{}`` for the key; the description one for the failure."""
    members = {k: rule(template.format(k), description.format(k), "probe") for k in keys}
    other = rule(template.format("other_failure"), description.format("another failure"), "probe")
    return Family(members, other)


def _probe(rule_id: str, description: str) -> Rule:
    return rule(rule_id, description, "probe")


# -- the network itself -----------------------------------------------------------------------
REACHABLE: Final = _probe("reachable", "every step succeeded")
NETWORK_OFFLINE: Final = _probe(
    "network.offline", "the control services are unreachable: this network is offline"
)
NETWORK_UNSTABLE: Final = _probe(
    "network.unstable", "a control target failed between retries: no judgement on this network"
)
CONTROL_UNRETRIED: Final = _probe(
    "control.unretried", "a control service is the yardstick, never itself evidence of blocking"
)
FAILURE_INCONSISTENT: Final = _probe(
    "failure.inconsistent", "the attempts at one address failed in different ways"
)

# -- DNS ----------------------------------------------------------------------------------------
DNS_BOGON_CONTROL_DIFFERS: Final = _probe(
    "dns.bogon.control_differs",
    "the network resolver answers a non-public address where the control resolver gives a public one",
)
DNS_BOGON_NO_CONTROL: Final = _probe(
    "dns.bogon.no_control", "a non-public answer, and the control resolver failed"
)
DNS_INJECTION: Final = _probe(
    "dns.injection.two_answers", "two different responses arrived for one query"
)
DNS_CENSOR_ANSWER: Final = _probe(
    "dns.hijack.known_censor_answer",
    "the network resolver answers with an address or name of a known censor (dns.toml)",
)
DNS_CONTROL_RESOLVES: Final = Family(
    {
        "dns.nxdomain": _probe(
            "dns.nxdomain.control_resolves",
            "the network resolver says the name does not exist, repeatedly; the control resolver resolves it",
        ),
        "dns.refused": _probe(
            "dns.refused.control_resolves",
            "the network resolver refuses the name, repeatedly; the control resolver resolves it",
        ),
    },
    _probe(
        "dns.other.control_resolves",
        "the network resolver denies the name in another way, repeatedly; the control resolver resolves it",
    ),
)
DNS_SERVFAIL_CONTROL_RESOLVES: Final = _probe(
    "dns.servfail.control_resolves",
    "the network resolver fails the name on every one of several attempts; the control resolver resolves it",
)
DNS_FAILS_EVERYWHERE: Final = _probe(
    "dns.fails_everywhere", "the control resolver fails the name the same way: the name is down"
)
DNS_TIMEOUT: Final = _probe(
    "dns.timeout", "the network resolver timed out; nothing to compare with"
)
DNS_TIMEOUT_CONTROL_RESOLVES: Final = _probe(
    "dns.timeout.control_resolves",
    "the network resolver timed out while the control resolver resolved the name (loss looks the same)",
)
_DNS_FAILURES: Final = (
    vocabulary.DNS_NXDOMAIN,
    vocabulary.DNS_SERVFAIL,
    vocabulary.DNS_REFUSED,
    vocabulary.DNS_NO_ANSWER,
    vocabulary.DNS_BOGUS_RESPONSE,
    vocabulary.CONNECTION_REFUSED,
    vocabulary.CONNECTION_RESET,
)
DNS_UNCONFIRMED: Final = _family(
    "dns.{}.unconfirmed", _DNS_FAILURES, "the network resolver failed ({}); not confirmed"
)
DNS_UNCONFIRMED_CONTROL_RESOLVES: Final = _family(
    "dns.{}.unconfirmed.control_resolves",
    _DNS_FAILURES,
    "the network resolver failed ({}) where the control resolver resolved; not confirmed",
)
DNS_HIJACK_CONTROL_WORKS: Final = _probe(
    "dns.hijack.control_address_works",
    "the network resolver's address presents another server's certificate or a block page; the control resolver's works",
)

# -- connect ----------------------------------------------------------------------------------
CONNECT_FAILED: Final = _family(
    "tcp.{}",
    (
        vocabulary.GENERIC_TIMEOUT,
        vocabulary.CONNECTION_RESET,
        vocabulary.CONNECTION_REFUSED,
        vocabulary.HOST_UNREACHABLE,
        vocabulary.NETWORK_UNREACHABLE,
    ),
    "connecting failed ({}) on every attempt; one probe cannot tell a blocked address from a down server",
)

# -- TLS ----------------------------------------------------------------------------------------
_TLS_FAILURES: Final = (
    vocabulary.GENERIC_TIMEOUT,
    vocabulary.CONNECTION_RESET,
    vocabulary.EOF_ERROR,
    vocabulary.SSL_FAILED_HANDSHAKE,
)
TLS_FAILED: Final = _family(
    "tls.{}", _TLS_FAILURES, "the handshake failed ({}) on every attempt; no same-address contrast"
)
TLS_FAILED_SNI_CONTRAST: Final = _family(
    "tls.{}.sni_contrast",
    _TLS_FAILURES,
    "the handshake failed ({}) while the control SNI reached the same server; not confirmed",
)
TLS_INTERRUPTED_SNI_CONTRAST: Final = Family(
    {
        "tls.reset": _probe(
            "tls.reset.sni_contrast",
            "the handshake with the service's SNI is reset on every attempt; the control SNI to the same address completes each time",
        ),
        "tls.eof": _probe(
            "tls.eof.sni_contrast",
            "the handshake with the service's SNI is cut (EOF) on every attempt; the control SNI to the same address completes each time",
        ),
    },
    _probe(
        "tls.interrupted.sni_contrast",
        "the handshake with the service's SNI is cut on every attempt; the control SNI completes",
    ),
)
TLS_INTERRUPTED_SNI_RESIDUAL: Final = Family(
    {
        "tls.reset": _probe(
            "tls.reset.sni_residual",
            "the control SNI completed before the service's SNI was sent; after it, every connection to the address is reset",
        ),
        "tls.eof": _probe(
            "tls.eof.sni_residual",
            "the control SNI completed before the service's SNI was sent; after it, every connection to the address is cut",
        ),
    },
    _probe(
        "tls.interrupted.sni_residual",
        "the control SNI completed before the service's SNI; after it, every connection is cut",
    ),
)
TLS_TIMEOUT_SNI_CONTRAST: Final = _probe(
    "tls.timeout.sni_contrast",
    "the handshake with the service's SNI times out on every one of several attempts, while the control SNI "
    "to the same address completes before, between and after them: loss is blind to the name",
)
TLS_TIMEOUT_SNI_RESIDUAL: Final = _probe(
    "tls.timeout.sni_residual",
    "the control SNI completed before the service's SNI was sent; from then on every connection to the "
    "address, the control SNI's too, goes unanswered while the network's health checks pass",
)
TLS_WRONG_NAME: Final = _probe(
    "tls.wrong_name", "the certificate is not valid for the name (a CDN node or a hijack)"
)
TLS_INVALID_CERTIFICATE: Final = _probe(
    "tls.invalid_certificate", "the certificate is expired or otherwise invalid: a broken server"
)
TLS_MITM_CONTROL_VERIFIES: Final = _probe(
    "tls.mitm.control_verifies",
    "an untrusted certificate where the same or another address presents one that verifies",
)
TLS_MITM_FORGED: Final = _probe(
    "tls.mitm.forged_for_any_name",
    "the address presents untrusted certificates made out to any name asked, the control SNI's too",
)
TLS_MITM_KNOWN_CA: Final = _probe(
    "tls.mitm.known_interception_ca",
    "the presented chain holds a known interception CA's certificate (tls.toml)",
)
TLS_UNTRUSTED: Final = _probe(
    "tls.untrusted_certificate", "a certificate from an unknown authority; nothing to compare with"
)

# -- HTTP ---------------------------------------------------------------------------------------
HTTP_BLOCKPAGE: Final = _probe(
    "http.blockpage.fingerprint", "the response is a known block page (http.toml, or a hint)"
)
HTTP_RESET_HOST_CONTRAST: Final = _probe(
    "http.reset.host_contrast",
    "the request for the service's Host is cut on every attempt; the control Host on the same address answers",
)
HTTP_FAILED: Final = _family(
    "http.{}",
    (
        vocabulary.GENERIC_TIMEOUT,
        vocabulary.CONNECTION_RESET,
        vocabulary.EOF_ERROR,
        vocabulary.HTTP_BAD_RESPONSE,
    ),
    "the HTTP request failed ({}) on every attempt; not confirmed",
)

# -- throughput -------------------------------------------------------------------------------
THROTTLED_SNI_CONTRAST: Final = _probe(
    "throughput.throttled.sni_contrast",
    "repeated downloads with the service's name run at a plateau of at most a tenth of the control "
    "services' rate, and of the same address's rate with the control SNI: a policer keyed on the name",
)
THROTTLED_EVERY_NAME: Final = _probe(
    "throughput.slow_for_every_name",
    "repeated downloads run at a plateau of at most a tenth of the control services' rate, for the "
    "control SNI on the same address too: a rate limit on the address or a slow origin; not confirmed",
)
