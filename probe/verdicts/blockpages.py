"""Known block pages, matched against HTTP response headers and bodies.

A fingerprint match is the strongest evidence a single probe can have: the censor said so.
The fingerprints themselves live in ``probe/data/fingerprints/http.toml`` (each with its
scope and source, loaded by ``probe.verdicts.fingerprints``); this module adds the generic
headline rule and the target list's hints. Each match has a stable id that analyses cite.
"""

from __future__ import annotations

import re
from typing import Final

from probe.verdicts import fingerprints

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
    page = fingerprints.load().block_page(body)
    if page is not None:
        return page.about.id
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
