"""The dependency direction of DESIGN.md, checked on the source: probe and alerts depend on
neither each other nor the collector (alerts shares only the leaf vocabulary), and no
product module imports the lab, the harnesses or the tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.paths import REPO_ROOT
from probe import vocabulary

ALLOWED = {
    "probe": {"probe"},
    "alerts": {"alerts", "probe.vocabulary"},
    "collector": {"collector", "probe", "alerts"},
    "censorwatch": {"censorwatch", "collector.cli"},
}
OURS = ("probe", "collector", "alerts", "censorwatch", "lab", "tests", "benchmarks")


def imports_of(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _allowed(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    wrong = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if name.split(".")[0] in OURS and not _allowed(name, ALLOWED[package]):
                wrong.append(f"{path.relative_to(REPO_ROOT)}: {name}")
    assert wrong == []


def test_vocabulary_is_a_leaf() -> None:
    names = set(imports_of(Path(vocabulary.__file__)))
    assert not [n for n in names if n.split(".")[0] in OURS]


def test_every_rule_module_registers_rules_under_unique_ids() -> None:
    import importlib

    for module in vocabulary.RULE_MODULES:
        importlib.import_module(module)
    rules = vocabulary.registered()
    assert len({r.id for r in rules}) == len(rules)
    layers = {r.layer for r in rules}
    assert {"probe", "collector", "alerts"} <= layers
    assert all(r.description for r in rules)


def test_a_second_rule_under_a_known_id_is_refused() -> None:
    vocabulary.rule("test.only.once", "a rule for this test", "probe")
    with pytest.raises(vocabulary.DuplicateRule):
        vocabulary.rule("test.only.once", "something else", "probe")
