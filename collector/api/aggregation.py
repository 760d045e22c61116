"""``GET /api/v1/aggregation``: counts over up to two axes, read from rollups only.

Axes: ``time`` (grain ``hour`` or ``day``), ``service``, ``cc``, ``asn``, ``verdict`` and
``method``. A query that involves a method reads the per-method rollup, where a
measurement with two methods counts once under each. Time filters apply to whole hours:
``since`` rounds down, ``until`` rounds up.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from sqlalchemy import ColumnElement, Select, Table, and_, case, func, select

from collector.api.bodies import json_response
from collector.api.errors import bad_request, unprocessable
from collector.api.filters import FILTER_KEYS, Filters, check_keys, parse_filters
from collector.state import STATE
from collector.store import schema
from collector.store.rollups import EPOCH, hour_of, hour_start
from collector.store.rows import equal_where_given
from probe.model import VERDICTS

AXES: Final = ("time", "service", "cc", "asn", "verdict", "method")
_ALIASES: Final = {"country": "cc", "probe_cc": "cc", "probe_asn": "asn"}
GRAINS: Final = ("hour", "day")
MAX_ROWS: Final = 100_000
_KEYS: Final = FILTER_KEYS | {"axis_x", "axis_y", "grain", "format"}
COUNT_COLUMNS: Final = ("measurement_count", *(f"{v}_count" for v in VERDICTS))


@dataclass(frozen=True)
class Aggregation:
    axes: tuple[str, ...]
    grain: str
    filters: Filters
    csv: bool

    def uses(self, dimension: str) -> bool:
        return dimension in self.axes or getattr(self.filters, dimension) is not None

    @property
    def table(self) -> Table:
        """The smallest rollup that can answer: per method, per ASN, or per country."""
        if self.uses("method"):
            return schema.rollup_methods
        if self.uses("asn"):
            return schema.rollups
        return schema.rollup_countries


def _axis(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    value = _ALIASES.get(value, value)
    if value not in AXES:
        raise bad_request(f"{name}: {value[:64]!r} is not one of {', '.join(AXES)}")
    return value


def parse_aggregation(params: Mapping[str, str]) -> Aggregation:
    check_keys(params, _KEYS)
    axes = tuple(a for a in (_axis(params, "axis_x"), _axis(params, "axis_y")) if a)
    if len(set(axes)) != len(axes):
        raise unprocessable("axis_x and axis_y must differ")
    grain = params.get("grain", "hour")
    if grain not in GRAINS:
        raise bad_request(f"grain: expected hour or day, got {grain[:64]!r}")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise bad_request(f"format: expected json or csv, got {fmt[:64]!r}")
    return Aggregation(axes, grain, parse_filters(params), fmt == "csv")


def _axis_column(table: Table, axis: str, grain: str) -> ColumnElement[Any]:
    if axis == "time":
        expression = table.c.hour if grain == "hour" else table.c.hour // 24
        return expression.label("time")
    return table.c[axis].label(axis)


def _conditions(table: Table, f: Filters) -> list[ColumnElement[bool]]:
    names = ("service", "cc", "asn", "verdict", "method")
    conditions = equal_where_given(table, **{name: getattr(f, name) for name in names})
    if f.since is not None:
        conditions.append(table.c.hour >= hour_of(f.since))
    if f.until is not None:
        hours = (f.until - EPOCH).total_seconds() / 3600
        conditions.append(table.c.hour < math.ceil(hours))
    return conditions


def statement(a: Aggregation) -> Select[Any]:
    table = a.table
    groups = [_axis_column(table, axis, a.grain) for axis in a.axes]
    counts = [func.sum(table.c.count).label("measurement_count")]
    for verdict in VERDICTS:
        only = case((table.c.verdict == verdict, table.c.count), else_=0)
        counts.append(func.sum(only).label(f"{verdict}_count"))
    query = select(*groups, *counts)
    conditions = _conditions(table, a.filters)
    if conditions:
        query = query.where(and_(*conditions))
    if groups:
        query = query.group_by(*groups).order_by(*groups)
    return query.limit(MAX_ROWS + 1)


def _time_label(value: int, grain: str) -> str:
    hour = value if grain == "hour" else value * 24
    return hour_start(hour).strftime("%Y-%m-%dT%H:%M:%SZ")


def shape(a: Aggregation, rows: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = dict(row._mapping)
        if item.get("measurement_count") is None:
            continue  # SUM over no rows
        if "time" in item:
            item["time"] = _time_label(int(item["time"]), a.grain)
        for column in COUNT_COLUMNS:
            item[column] = int(item[column] or 0)
        out.append(item)
    return out


def to_csv(a: Aggregation, rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*a.axes, *COUNT_COLUMNS])
    for row in rows:
        writer.writerow([row[c] for c in (*a.axes, *COUNT_COLUMNS)])
    return buffer.getvalue()


async def get_aggregation(request: web.Request) -> web.Response:
    state = request.app[STATE]
    a = parse_aggregation(request.query)
    async with state.db.reading() as connection:
        rows = (await connection.execute(statement(a))).all()
    if len(rows) > MAX_ROWS:
        raise unprocessable(f"more than {MAX_ROWS} rows: narrow the filters or coarsen the grain")
    result = shape(a, rows)
    if a.csv:
        return web.Response(text=to_csv(a, result), content_type="text/csv")
    body = {
        "axis_x": a.axes[0] if a.axes else None,
        "axis_y": a.axes[1] if len(a.axes) > 1 else None,
        "grain": a.grain,
        "result": result,
    }
    return json_response(body)


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/aggregation", get_aggregation)]
