"""Fixtures for the lab servers' own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.demo.servers.pki import PKI


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def pki_dir(pki: PKI) -> Path:
    return pki.directory
