"""Fixtures for the censorship lab: a topology per session, clean censor between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.topology import Topology, terminate_on_sigterm

TEST_PREFIX = os.environ.get("CENSORWATCH_LAB_PREFIX", "cwlt-")
"""Not the interactive lab's prefix, so a test run never tears down a lab someone is using;
two checkouts testing at once on one machine each set their own."""


@pytest.fixture(scope="session")
def lab() -> Iterator[Topology]:
    with terminate_on_sigterm(), Topology(TEST_PREFIX) as topology:
        yield topology


@pytest.fixture
def censored(lab: Topology) -> Iterator[Topology]:
    """The shared lab, with every censor action cleared (and the ISP resolver in use) after."""
    yield lab
    lab.censor.clear_all()
    lab.set_client_resolver("isp")
