"""An embeddable SVG badge: "Telegram · KZ | Blocked", drawn with the page's state colours.

Widths are estimated from the text (no font is shipped or fetched); the badge names its
state in words, so its colour never carries the meaning alone.
"""

from __future__ import annotations

from html import escape
from typing import Final

# background, text: each pair has a contrast ratio of at least 4.5:1
COLOURS: Final = {
    "blocked": ("#a4111b", "#ffffff"),
    "shutdown": ("#1f1f1f", "#ffffff"),
    "throttled": ("#8a4b00", "#ffffff"),
    "unconfirmed": ("#6b5300", "#ffffff"),
    "ok": ("#1d6b34", "#ffffff"),
}
NEUTRAL: Final = ("#545b62", "#ffffff")
LABEL_BACKGROUND: Final = "#2f3b45"


def _width(text: str) -> int:
    return 12 + round(sum(7.4 if c.isupper() else 6.2 for c in text))


def render(label: str, value: str, state: str) -> str:
    background, foreground = COLOURS.get(state, NEUTRAL)
    left, right = _width(label), _width(value)
    total = left + right
    words = escape(f"{label}: {value}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" '
        f'viewBox="0 0 {total} 20" role="img" aria-label="{words}"><title>{words}</title>'
        f'<rect width="{left}" height="20" fill="{LABEL_BACKGROUND}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{background}"/>'
        f'<g font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14" fill="#ffffff" text-anchor="middle">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14" fill="{foreground}" text-anchor="middle">'
        f"{escape(value)}</text></g></svg>"
    )
