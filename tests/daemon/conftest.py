from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collector.demo.servers import PKI
from lab.harness.daemons import Collector
from lab.harness.loopback import World, world


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def internet(pki: PKI, tmp_path: Path) -> AsyncIterator[World]:
    async with world(pki, tmp_path) as w:
        yield w


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    server = Collector(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
