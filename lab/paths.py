"""Where the checkout is, for everything that starts censorwatch's own commands as
subprocesses (the lab, the daemon and alert-chain harnesses, tests and benchmarks).

A path counted in ``parents[N]`` breaks silently when a module moves: the subprocess then
runs with a working directory outside the checkout and imports whatever ``probe`` happens
to be installed. The root is found instead by looking for the project's own
``pyproject.toml``, and a test checks that it holds the code being run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

PROJECT_NAME: Final = "censorwatch"


class CheckoutNotFound(RuntimeError):
    """No directory above ``start`` holds censorwatch's ``pyproject.toml``."""

    def __init__(self, start: Path) -> None:
        self.start = start
        super().__init__(f"no censorwatch checkout above {start}")


def _is_checkout(directory: Path) -> bool:
    manifest = directory / "pyproject.toml"
    if not manifest.is_file():
        return False
    with manifest.open("rb") as stream:
        project = tomllib.load(stream).get("project", {})
    return bool(project.get("name") == PROJECT_NAME)


def find_root(start: Path) -> Path:
    for directory in [start, *start.parents]:
        if _is_checkout(directory):
            return directory
    raise CheckoutNotFound(start)


REPO_ROOT: Final = find_root(Path(__file__).resolve().parent)


def checkout_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the checkout first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env
