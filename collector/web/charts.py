"""The timeline, drawn on the server as inline SVG: one row per service, one bar per time
bucket whose height is the blocked share, announced events as shaded bands across every
row, incident onsets as dashed lines.

Needs no script, font or file from anywhere; ``<title>``/``<desc>`` carry a text
alternative, and the page puts the same numbers in a table beside it. Colour never carries
meaning alone: heights carry the share, numbered labels the events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from collector.web.picture import Point

WIDTH: Final = 760
LABEL: Final = 132  # left column: service names
PLOT_RIGHT: Final = 706  # right of it: the latest share
ROW: Final = 40
TOP: Final = 22  # room for event numbers
AXIS: Final = 26


@dataclass(frozen=True)
class Row:
    title: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Band:
    number: int
    title: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Onset:
    moment: dt.datetime
    label: str


@dataclass(frozen=True)
class Timeline:
    chart_id: str
    title: str
    description: str
    first: dt.datetime
    last: dt.datetime
    width: dt.timedelta  # of one bucket
    rows: Sequence[Row]
    bands: Sequence[Band]
    onsets: Sequence[Onset]
    tick_every: dt.timedelta
    tick_label: Callable[[dt.datetime], str]


def _x(t: Timeline, moment: dt.datetime) -> float:
    span = (t.last - t.first).total_seconds()
    offset = min(max((moment - t.first).total_seconds(), 0.0), span)
    return LABEL + (PLOT_RIGHT - LABEL) * offset / span


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def _row(t: Timeline, index: int, row: Row) -> list[str]:
    top = TOP + index * ROW
    base = top + ROW - 8
    height = ROW - 14
    parts = [
        f'<text x="{LABEL - 8}" y="{base - 4}" text-anchor="end" class="c-label">'
        f"{escape(row.title)}</text>",
        f'<line x1="{LABEL}" y1="{base}" x2="{PLOT_RIGHT}" y2="{base}" class="c-base"/>',
    ]
    bar = (PLOT_RIGHT - LABEL) * t.width.total_seconds() / (t.last - t.first).total_seconds()
    width = max(bar - 1, 1)
    steps = []  # one path per row: far fewer bytes than a rect per bar
    for point in row.points:
        share = point.blocked_share
        if not share:
            continue
        h = max(share * height, 1.0)
        steps.append(f"M{_x(t, point.start):.1f} {base}v{-h:.1f}h{width:.1f}v{h:.1f}z")
    if steps:
        parts.append(f'<path d="{"".join(steps)}" class="c-bar"/>')
    latest = next(
        (p.blocked_share for p in reversed(row.points) if p.blocked_share is not None), None
    )
    parts.append(
        f'<text x="{PLOT_RIGHT + 6}" y="{base - 4}" class="c-value">{_percent(latest)}</text>'
    )
    return parts


def _bands(t: Timeline, bottom: float) -> list[str]:
    parts = []
    for band in t.bands:
        if band.end < t.first or band.start > t.last:
            continue
        x1, x2 = _x(t, band.start), _x(t, band.end)
        parts.append(
            f'<g class="c-event"><title>{band.number}. {escape(band.title)}</title>'
            f'<rect x="{x1:.1f}" y="{TOP - 4}" width="{max(x2 - x1, 3):.1f}" '
            f'height="{bottom - TOP + 4:.1f}" class="c-band"/>'
            f'<text x="{x1 + 2:.1f}" y="{TOP - 8}" class="c-num">{band.number}</text></g>'
        )
    return parts


def _onsets(t: Timeline, bottom: float) -> list[str]:
    parts = []
    for onset in t.onsets:
        if not t.first <= onset.moment <= t.last:
            continue
        x = _x(t, onset.moment)
        parts.append(
            f'<g><title>{escape(onset.label)}</title><line x1="{x:.1f}" y1="{TOP - 4}" '
            f'x2="{x:.1f}" y2="{bottom:.1f}" class="c-onset"/></g>'
        )
    return parts


def _ticks(t: Timeline, bottom: float) -> list[str]:
    parts = []
    step = t.tick_every.total_seconds()
    first = t.first.timestamp()
    moment = dt.datetime.fromtimestamp(-(-first // step) * step, dt.UTC)
    while moment <= t.last:
        x = _x(t, moment)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" class="c-base"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" class="c-tick">'
            f"{escape(t.tick_label(moment))}</text>"
        )
        moment += t.tick_every
    return parts


def render(t: Timeline) -> str:
    """The chart as an ``<svg>`` element to inline in the page."""
    bottom = TOP + len(t.rows) * ROW
    height = bottom + AXIS
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{t.chart_id}-t {t.chart_id}-d" class="chart" '
        f'id="{t.chart_id}" data-rows="{len(t.rows)}">',
        f'<title id="{t.chart_id}-t">{escape(t.title)}</title>',
        f'<desc id="{t.chart_id}-d">{escape(t.description)}</desc>',
        *_bands(t, bottom),
        *(part for i, row in enumerate(t.rows) for part in _row(t, i, row)),
        *_onsets(t, bottom),
        *_ticks(t, bottom),
        "</svg>",
    ]
    return "".join(parts)
