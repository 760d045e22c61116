"""What ``censorwatch-probe check --json`` prints is ingested and queried back unchanged."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from collector_harness import Collector

from collector.demo.servers import PKI, NXDomain
from lab.harness.loopback import world
from probe import model


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


async def test_check_output_round_trips_through_the_collector(
    collector: Collector, pki: PKI, tmp_path: Path
) -> None:
    async with world(pki, tmp_path) as w:
        w.network_zone.set("web.telegram.org", NXDomain())
        printed = await w.check()
    originals = [msgspec.convert(m, model.Measurement) for m in printed["measurements"]]
    _, token = await collector.register()

    status, body = await collector.ingest(token, originals)

    assert status == 200, body
    assert body["accepted"] == len(originals)
    telegram = next(r for r in body["results"] if r["id"] == str(_by(originals, "telegram").id))
    assert telegram["verdict"] == "blocked"
    status, page = await collector.get_json(
        "/api/v1/measurements", collector.admin_headers, limit="100"
    )
    assert status == 200, page
    stored = {
        item["measurement"]["id"]: model.from_builtins(item["measurement"])
        for item in page["results"]
    }
    assert stored == {str(m.id): m for m in originals}


def _by(measurements: list[model.Measurement], service: str) -> model.Measurement:
    return next(m for m in measurements if m.service == service)
