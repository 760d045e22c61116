"""One real ``censorwatch serve`` with the status-page scenario, shared by the web tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.status_server import StatusServer, running


@pytest.fixture(scope="session")
def status_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatusServer]:
    with running(tmp_path_factory.mktemp("status")) as server:
        yield server


@pytest.fixture(scope="session")
def artefacts() -> Path:
    from lab.paths import REPO_ROOT

    directory = REPO_ROOT / "build" / "test-artefacts" / "status-page"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
