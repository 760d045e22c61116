"""Template-ready pictures assembled from what ``reading`` returned: the grid of services
and networks, the timelines with their text alternatives, the list of countries.

Pure; the handlers in ``pages`` read, call these, and render.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from alerts.model import Event
from collector.store.rollups import hour_of, hour_start
from collector.web import charts
from collector.web.i18n import Catalogue
from collector.web.picture import SEVERITY, Counts, Standing, cell_state, covers, series, worst

MAX_COLUMNS: Final = 12
EVENT_DEFAULT_LENGTH: Final = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Services:
    """Display names and order from the target list; control services are never shown."""

    titles: Mapping[str, str]
    controls: frozenset[str]

    def title(self, name: str | None) -> str:
        if name is None:
            return ""
        return self.titles.get(name, name)

    def shown(self, names: Iterable[str]) -> list[str]:
        order = {name: i for i, name in enumerate(self.titles)}
        wanted = {n for n in names if n not in self.controls}
        return sorted(wanted, key=lambda n: (order.get(n, len(order)), n))


@dataclass(frozen=True)
class Cell:
    state: str
    title: str = ""  # e.g. which networks an "other networks" cell summarises


@dataclass(frozen=True)
class GridRow:
    service: str
    title: str
    national: Cell
    cells: Sequence[Cell]

    @property
    def severity(self) -> int:
        """For picking the row to show first: the most alarming national state."""
        return SEVERITY.get(self.national.state, len(SEVERITY))


@dataclass(frozen=True)
class Grid:
    columns: Sequence[str]  # "AS9198", …, and possibly "N other networks"
    rows: Sequence[GridRow]
    hidden: int  # networks folded into the last column


def grid(
    services: Services,
    national: Mapping[str, Counts],
    networks: Mapping[tuple[str, int], Counts],
    standings: Sequence[Standing],
    c: Catalogue,
    *,
    every_network: bool,
) -> Grid:
    incident_asns = {a for s in standings if s.open for a in s.incident.asns}
    volume: dict[int, int] = {}
    for (_, asn), counts in networks.items():
        volume[asn] = volume.get(asn, 0) + counts.total
    for asn in incident_asns:
        volume.setdefault(asn, 0)
    ranked = sorted(volume, key=lambda a: (a not in incident_asns, -volume[a], a))
    shown, folded = (ranked, []) if every_network else (ranked[:MAX_COLUMNS], ranked[MAX_COLUMNS:])
    names = services.shown(
        {s for s, _ in networks} | set(national) | {
            s.incident.service for s in standings if s.open and s.incident.service
        }
    )  # fmt: skip
    by_service: dict[str, dict[int, Counts]] = {}
    for (name, asn), counts in networks.items():
        by_service.setdefault(name, {})[asn] = counts
    folded_set = set(folded)
    rows = []
    for name in names:
        covering = [s for s in standings if covers(s, name, None)]
        mine = by_service.get(name, {})
        cells = [Cell(cell_state(mine.get(asn, Counts()), covering, name, asn)) for asn in shown]
        if folded:
            involved = {a for a in mine if a in folded_set}
            involved |= {a for s in covering for a in s.incident.asns if a in folded_set}
            states = [cell_state(mine.get(a, Counts()), covering, name, a) for a in involved]
            known = [state for state in states if state != "nodata"]
            cells.append(Cell(worst(known) if known else "nodata"))
        national_cell = Cell(cell_state(national.get(name, Counts()), covering, name, None))
        rows.append(GridRow(name, services.title(name), national_cell, cells))
    columns = [f"AS{a}" for a in shown]
    if folded:
        columns.append(c.plural("other_networks", len(folded)))
    return Grid(columns, rows, len(folded))


def headline(states: Iterable[str], standings: Sequence[Standing]) -> str:
    """A country's state in one word: the worst of its services, or a shutdown."""
    if any(s.open and covers(s, None, None) and s.incident.kind == "shutdown" for s in standings):
        return "shutdown"
    known = [s for s in states if s != "nodata"]
    return worst(known) if known else "nodata"


@dataclass(frozen=True)
class NumberedEvent:
    number: int
    event: Event

    @property
    def end(self) -> dt.datetime:
        return self.event.end or self.event.start + EVENT_DEFAULT_LENGTH


def numbered(events: Sequence[Event]) -> list[NumberedEvent]:
    return [NumberedEvent(i, e) for i, e in enumerate(sorted(events, key=lambda e: e.start), 1)]


@dataclass(frozen=True)
class Period:
    key: str  # "24h" | "7d"
    first: dt.datetime
    buckets: int
    width: dt.timedelta
    tick_every: dt.timedelta

    @property
    def last(self) -> dt.datetime:
        return self.first + self.buckets * self.width


def periods(now: dt.datetime) -> tuple[Period, Period]:
    hour = hour_of(now)
    day = Period("24h", hour_start(hour - 23), 24, dt.timedelta(hours=1), dt.timedelta(hours=6))
    six = hour - hour % 6
    week = Period("7d", hour_start(six - 6 * 27), 28, dt.timedelta(hours=6), dt.timedelta(days=1))
    return day, week


@dataclass(frozen=True)
class TableRow:
    start: dt.datetime
    shares: Sequence[str]


@dataclass(frozen=True)
class Chart:
    period: Period
    heading: str
    svg: str
    services: Sequence[str]  # titles, the table's columns
    table: Sequence[TableRow]


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def _describe(c: Catalogue, rows: Sequence[charts.Row], clock: Callable[[dt.datetime], str]) -> str:
    sentences = []
    for row in rows:
        measured = [p for p in row.points if p.blocked_share is not None]
        if not measured:
            continue
        peak = max(measured, key=lambda p: (p.blocked_share or 0.0, p.start))
        sentences.append(
            c.text(
                "chart_rows",
                service=row.title,
                peak=_percent(peak.blocked_share),
                peak_at=clock(peak.start),
                latest=_percent(measured[-1].blocked_share),
            )
        )
    return " ".join(sentences) or c.text("chart_no_rows")


def chart(
    period: Period,
    services: Services,
    hourly: Mapping[str, Mapping[dt.datetime, Counts]],
    events: Sequence[NumberedEvent],
    standings: Sequence[Standing],
    c: Catalogue,
    clock: Callable[[dt.datetime], str],
    incident_title: Callable[[Standing], str],
) -> Chart:
    names = services.shown(
        name
        for name, hours in hourly.items()
        if any(period.first <= h < period.last for h in hours)
    )
    rows = [
        charts.Row(services.title(n), series(hourly[n], period.first, period.buckets, period.width))
        for n in names
    ]
    bands = [
        charts.Band(e.number, e.event.title, e.event.start, e.end)
        for e in events
        if e.event.start < period.last and e.end > period.first
    ]
    onsets = [charts.Onset(s.incident.onset, incident_title(s)) for s in standings]
    heading = c.text("timeline_24h" if period.key == "24h" else "timeline_7d")
    description = _describe(c, rows, clock)
    if bands:
        listed = "; ".join(f"{b.number}. {b.title} ({clock(b.start)})" for b in bands)
        description += " " + c.text("chart_events", events=listed)
    tick = "%H:%M" if period.key == "24h" else "%d.%m"
    timeline = charts.Timeline(
        chart_id=f"chart-{period.key}", title=f"{c.text('timeline_title')}: {heading}",
        description=description, first=period.first, last=period.last, width=period.width,
        rows=rows, bands=bands, onsets=onsets, tick_every=period.tick_every,
        tick_label=lambda moment: moment.strftime(tick),
    )  # fmt: skip
    table = [
        TableRow(
            period.first + i * period.width,
            [_percent(row.points[i].blocked_share) for row in rows],
        )
        for i in range(period.buckets)
    ]
    return Chart(period, heading, charts.render(timeline), [r.title for r in rows], table)
