"""Fingerprints of known block pages, matched against HTTP response bodies.

A fingerprint match is the strongest evidence a single probe can have: the censor said so.
Patterns are deliberately specific; a generic word such as "blocked" would catch ordinary
error pages. Each has a stable id that analyses cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Fingerprint:
    id: str
    pattern: re.Pattern[str]


def _fp(id_: str, pattern: str) -> Fingerprint:
    return Fingerprint(id_, re.compile(pattern, re.IGNORECASE | re.MULTILINE))


FINGERPRINTS: Final[tuple[Fingerprint, ...]] = (
    _fp(
        "generic.authorities",
        r"(has been|is) blocked (by|on) (the )?(decision|order|request) of (the )?(authorit|court|government|regulator)",
    ),
    _fp("generic.access_restricted", r"<title>\s*access (restricted|denied by order)"),
    _fp("ru.rkn_registry", r"eais\.rkn\.gov\.ru|blocklist\.rkn\.gov\.ru"),
    _fp("ru.restricted", r"доступ к (информационному )?ресурсу (ограничен|заблокирован)"),
    _fp("ru.warning_redirect", r"^location:\s*https?://(warning\.rt\.ru|blocked\.|block\.)"),
    _fp(
        "kz.restricted",
        r"доступ к (данному )?(интернет-)?ресурсу (временно )?(ограничен|приостановлен)",
    ),
    _fp("ir.peyvandha", r"<iframe[^>]+(peyvandha\.ir|10\.10\.34\.3[4-6])"),
    _fp("tr.tib", r"hakk[ıi]nda.{0,200}tedbiri? karar[ıi].{0,200}uygulanmaktad[ıi]r"),
    _fp("id.internet_positif", r"internet ?positif|internetsehat\.id"),
    _fp(
        "in.dot_order",
        r"has been blocked as per (the )?instructions? (of|from) (the )?(competent authority|department of telecommunications)",
    ),
    _fp(
        "pk.pta",
        r"this site is not accessible\.?\s*pta|pakistan telecommunication authority.{0,80}block",
    ),
)
# Block pages are small; a long page that quotes a block notice is a news article.
MAX_PAGE: Final = 16 * 1024

# Wording many national block pages share. Too plain to trust anywhere in a page, so it
# counts only as a page's headline (title, h1, h2) or in a page of a few lines.
HEADLINE_PHRASES: Final = re.compile(
    r"(this|the|requested) (web ?site|site|page|resource|url) (has been|is|was) "
    r"(blocked|restricted|banned)|access (to this (web ?site|site|page|resource) )?"
    r"(has been|is) (blocked|restricted|denied)|(web ?site|site|page|resource) blocked"
    r"|доступ (к ресурсу )?(ограничен|заблокирован)|сайт заблокирован",
    re.IGNORECASE,
)
_HEADLINES: Final = re.compile(r"<(title|h1|h2)[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
SHORT_PAGE: Final = 2048


def match(body: str, hints: tuple[str, ...] = ()) -> str | None:
    """The id of the first fingerprint (or list-provided hint) found in a response's
    headers and (short) body."""
    if len(body) > MAX_PAGE:
        return None
    for fingerprint in FINGERPRINTS:
        if fingerprint.pattern.search(body):
            return fingerprint.id
    headlines = " ".join(m.group(2) for m in _HEADLINES.finditer(body))
    if HEADLINE_PHRASES.search(headlines) or (
        len(body) <= SHORT_PAGE and HEADLINE_PHRASES.search(body)
    ):
        return "generic.headline"
    lowered = body.lower()
    for number, hint in enumerate(hints):
        if hint.lower() in lowered:
            return f"hint.{number}"
    return None
