"""Domain names as rule keys: normalised, and matched exactly or by a ``*.`` wildcard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def match(rules: Mapping[str, T], name: str) -> T | None:
    """The rule for ``name``: an exact key first, then the closest ``*.suffix`` key."""
    name = normalise(name)
    if name in rules:
        return rules[name]
    labels = name.split(".")
    for i in range(1, len(labels)):
        rule = rules.get("*." + ".".join(labels[i:]))
        if rule is not None:
            return rule
    return None
