"""PromQL in the dashboards: every expression a panel, annotation or variable runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Values that exist in the test collector's data, for the dashboards' template variables.
VARIABLES = {
    "service": "telegram",
    "country": "KZ",
    "asn": "64500",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "5m",
}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
_METRIC = re.compile(r"\b(censorwatch_[a-z_]+|censorwatch:[a-z0-9_:]+|up)\b")


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title, annotation or variable name
    expr: str  # as Grafana would send it, variables substituted

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(_METRIC.findall(self.expr))


def substitute(expr: str, values: Mapping[str, str] = VARIABLES) -> str:
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def variable_query(definition: str) -> str:
    """``label_values(sel, label)`` as the series query Grafana's variable editor makes of it."""
    match = _LABEL_VALUES.match(definition.strip())
    assert match, f"variable query is not label_values(selector, label): {definition!r}"
    return f"group by ({match['label']}) ({match['selector']})"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def queries(path: Path) -> Iterator[Query]:
    board = json.loads(path.read_text())
    name = path.name
    for panel in _panels(board["panels"]):
        for target in panel.get("targets", []):
            yield Query(name, f"panel {panel['title']!r}", substitute(target["expr"]))
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            yield Query(name, f"annotation {annotation['name']!r}", substitute(annotation["expr"]))
    for variable in board["templating"]["list"]:
        expr = variable_query(variable["query"]["query"])
        yield Query(name, f"variable {variable['name']!r}", substitute(expr))
