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
    _fp("generic.authorities", r"blocked (by|on) (the )?(decision|order|request) of"),
    _fp("generic.access_restricted", r"<title>\s*access (restricted|denied by order)"),
    _fp("ru.rkn", r"роскомнадзор|eais\.rkn\.gov\.ru|доступ (к ресурсу )?ограничен"),
    _fp("kz.restricted", r"доступ к (данному )?(интернет-)?ресурсу (ограничен|заблокирован)"),
    _fp("ir.peyvandha", r"peyvandha\.ir|10\.10\.34\.3[4-6]"),
    _fp("tr.btk", r"bu internet sitesi.*(hakk[ıi]nda|tedbir)|5651 say[ıi]l[ıi] kanun"),
    _fp("id.internet_positif", r"internet ?positif|internetsehat"),
    _fp(
        "in.dot_order",
        r"has been blocked as per (the )?instructions? (of|from) (the )?(competent authority|department of telecommunications)",
    ),
    _fp("ru.warning_redirect", r"^location:\s*https?://(warning\.rt\.ru|blocked\.|block\.)"),
    _fp("pk.pta", r"this site is not accessible\.?\s*pta|pakistan telecommunication authority"),
)


def match(body: str, hints: tuple[str, ...] = ()) -> str | None:
    """The id of the first fingerprint (or list-provided hint) found in a body."""
    for fingerprint in FINGERPRINTS:
        if fingerprint.pattern.search(body):
            return fingerprint.id
    lowered = body.lower()
    for number, hint in enumerate(hints):
        if hint.lower() in lowered:
            return f"hint.{number}"
    return None
