"""Plain words for newsrooms: one incident change, its linked events and history, as text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.correlation import Link, Stats
from alerts.model import Change, Incident

SERVICE_TITLES = {
    "whatsapp": "WhatsApp",
    "youtube": "YouTube",
    "tiktok": "TikTok",
    "vk": "VK",
    "x": "X",
    "facebook_messenger": "Facebook Messenger",
    "messenger": "Facebook Messenger",
    "linkedin": "LinkedIn",
}

COUNTRIES = {
    "AF": "Afghanistan", "AM": "Armenia", "AZ": "Azerbaijan", "BD": "Bangladesh",
    "BR": "Brazil", "BY": "Belarus", "CN": "China", "CU": "Cuba", "DE": "Germany",
    "EG": "Egypt", "ET": "Ethiopia", "FR": "France", "GB": "the United Kingdom",
    "GE": "Georgia", "ID": "Indonesia", "IN": "India", "IQ": "Iraq", "IR": "Iran",
    "KG": "Kyrgyzstan", "KZ": "Kazakhstan", "MM": "Myanmar", "NG": "Nigeria",
    "NL": "the Netherlands", "PK": "Pakistan", "RU": "Russia", "SA": "Saudi Arabia",
    "SD": "Sudan", "SY": "Syria", "TJ": "Tajikistan", "TM": "Turkmenistan", "TR": "Turkey",
    "UA": "Ukraine", "UG": "Uganda", "US": "the United States", "UZ": "Uzbekistan",
    "VE": "Venezuela", "VN": "Vietnam", "ZW": "Zimbabwe",
}  # fmt: skip

KIND_SINGULARS = {"livestream": "livestream", "protest": "protest call", "election": "election"}

METHOD_WORDS = {
    "dns.nxdomain": "DNS NXDOMAIN",
    "dns.bogon": "DNS bogon answer",
    "dns.hijack": "DNS hijack",
    "dns.injection": "DNS injection",
    "dns.timeout": "DNS timeout",
    "dns.servfail": "DNS SERVFAIL",
    "dns.refused": "DNS refused",
    "tcp.timeout": "TCP timeout",
    "tcp.reset": "TCP reset",
    "tcp.refused": "TCP refused",
    "tls.reset": "TLS reset",
    "tls.timeout": "TLS timeout",
    "tls.eof": "TLS cut off",
    "tls.mitm": "TLS interception",
    "http.blockpage": "block page",
    "http.reset": "HTTP reset",
    "http.timeout": "HTTP timeout",
    "throttled": "throttling",
}


def service_title(service: str | None) -> str:
    if service is None:
        return "Internet access"
    return SERVICE_TITLES.get(service, service.replace("_", " ").title())


def country_name(cc: str) -> str:
    return COUNTRIES.get(cc.upper(), cc.upper())


def headline(change: Change) -> str:
    inc = change.incident
    where = f"in {country_name(inc.cc)}{_on(inc)}"
    what = service_title(inc.service)
    if change.kind == "incident.resolved":
        assert inc.resolved_at is not None
        never = "" if inc.confirmed else "UNCONFIRMED report: "
        lost = "shut down" if inc.kind == "shutdown" else "blocked"
        return (
            f"{never}{what} back {where} since {_clock(inc.resolved_at)}, "
            f"after being {lost} from {_clock(inc.onset)} ({_span(inc)})."
        )
    prefix = "Update: " if change.kind == "incident.updated" else ""
    if not inc.confirmed:
        prefix = f"UNCONFIRMED ({inc.voices:g} independent voices): {prefix}"
    if inc.kind == "shutdown":
        return (
            f"{prefix}Internet shutdown {where} since {_clock(inc.onset)} "
            f"({inc.probes} probes offline or silent)."
        )
    methods = ", ".join(METHOD_WORDS.get(m, m) for m in inc.methods)
    detail = f"{methods}; {inc.probes} probes" if methods else f"{inc.probes} probes"
    return f"{prefix}{what} blocked {where} since {_clock(inc.onset)} ({detail})."


def lines(change: Change, links: Sequence[Link], stats: Sequence[Stats]) -> list[str]:
    """The headline, then a sentence per linked event and per history line."""
    out = [headline(change)]
    out.extend(_link_sentence(lk) for lk in links)
    out.extend(f"Blocking {s.line}." for s in stats if s.line)
    return out


def _link_sentence(lk: Link) -> str:
    kind = KIND_SINGULARS.get(lk.kind, "event")
    name = f"the announced {kind} '{lk.title}'" if lk.title else f"event {lk.event_id}"
    minutes = round(abs(lk.delay_seconds) / 60)
    if minutes == 0:
        return f"Began as {name} started."
    side = "after" if lk.delay_seconds > 0 else "before"
    return f"Began {_duration(minutes)} {side} {name}."


def _on(inc: Incident) -> str:
    if not inc.asns:
        return ""
    return " on " + ", ".join(f"AS{a}" for a in inc.asns)


def _clock(t: datetime) -> str:
    return f"{t:%H:%M} UTC on {t.day} {t:%b %Y}"


def _span(inc: Incident) -> str:
    end = inc.resolved_at or inc.last_seen
    return _duration(max(0, round((end - inc.onset).total_seconds() / 60)))


def _duration(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
