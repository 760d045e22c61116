"""Which of an extra's requirements are missing, read from the installed distribution's own
metadata (pyproject.toml declares them once), and the collector's guarded entry point."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from typing import Final, NoReturn

DISTRIBUTION: Final = "censorwatch"
COLLECTOR: Final = "collector"
EXIT_MISSING: Final = 2
OURS: Final = frozenset({"probe", "collector", "alerts", "censorwatch"})

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)[^;]*;\s*(.*)$")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def requirements_of(extra: str, requires: list[str]) -> list[str]:
    """The distribution names that ``requires`` (``Requires-Dist`` lines) lists for ``extra``."""
    names = []
    for line in requires:
        match = _REQUIREMENT.match(line)
        if match and extra in _EXTRA.findall(match.group(2)):
            names.append(match.group(1))
    return names


def missing(extra: str, distribution: str = DISTRIBUTION) -> list[str]:
    """The requirements of ``extra`` that are not installed (none when its metadata is absent)."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    absent = []
    for name in requirements_of(extra, requires):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def refuse(extra: str, absent: list[str]) -> NoReturn:
    print(
        f"censorwatch: the collector needs the '{extra}' extra, which is not installed here "
        f"(missing: {', '.join(absent)}). Install it with: "
        f"pip install '{DISTRIBUTION}[{extra}]'. A probe needs only censorwatch-probe.",
        file=sys.stderr,
    )
    raise SystemExit(EXIT_MISSING)


def collector_main() -> NoReturn:
    """``censorwatch``: the collector's command, once its extra is known to be installed."""
    absent = missing(COLLECTOR)
    if absent:
        refuse(COLLECTOR, absent)
    try:
        from collector.cli import main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OURS:
            raise  # our own module is missing: a bug, not a missing extra
        # Metadata and site-packages disagree (a half-removed install): still no traceback.
        refuse(COLLECTOR, [exc.name or str(exc)])
    raise SystemExit(main())
