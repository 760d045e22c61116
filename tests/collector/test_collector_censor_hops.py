"""Censoring hops: drawn at ingest from the traces a measurement carries, shown per network
in ``GET /api/v1/censor-hops``, on both databases."""

from __future__ import annotations

import msgspec
from collector_harness import Collector

from lab.harness.samples import measurement, traced
from probe import model
from probe.model import HopLocation


def located(cc: str = "KZ", asn: int = 64500) -> model.Measurement:
    """Blocked, with traces that end after hop 2 (router 1.0.0.1); the probe's own stated
    location says hop 7, which the collector must not take on trust."""
    sample = traced(
        measurement(service="telegram", verdict="blocked", cc=cc, asn=asn),
        2,
        ("1.0.0.9", "1.0.0.1", "95.56.1.1"),
    )
    endpoint = msgspec.structs.replace(
        sample.analysis.endpoints[0], location=HopLocation(hop=7, router="95.56.1.1")
    )
    analysis = msgspec.structs.replace(sample.analysis, endpoints=[endpoint])
    return msgspec.structs.replace(sample, analysis=analysis)


async def test_a_located_hop_is_shown_per_network_with_the_routers_asn(
    collector: Collector,
) -> None:
    _, token = await collector.register()  # the harness's address table puts it in KZ, AS64500
    first = located()
    status, _ = await collector.ingest(token, [first, measurement(verdict="blocked", asn=64500)])
    assert status == 200
    status, _ = await collector.ingest(token, [first])  # a duplicate counts once
    assert status == 200
    status, body = await collector.get_json("/api/v1/censor-hops", cc="KZ")
    assert status == 200, body
    hour = first.start_time.replace(minute=0, second=0, microsecond=0)
    assert body["networks"] == [
        {
            "asn": 64500,
            "hops": [
                {
                    "hop": 2,
                    "router_asn": 13335,
                    "summary": "2 hops from the subscriber, inside AS13335",
                    "services": ["telegram"],
                    "measurements": 1,
                    "last_seen": hour.isoformat().replace("+00:00", "Z"),
                }
            ],
        }
    ]
    status, other = await collector.get_json("/api/v1/censor-hops", cc="RU")
    assert (status, other["networks"]) == (200, [])
    status, none = await collector.get_json("/api/v1/censor-hops", cc="KZ", service="youtube")
    assert (status, none["networks"]) == (200, [])


async def test_a_measurement_whose_network_is_contradicted_places_no_hop(
    collector: Collector,
) -> None:
    _, token = await collector.register()  # in KZ, claiming RU: stored, flagged, not counted
    status, _ = await collector.ingest(token, [located(cc="RU", asn=64501)], attest=False)
    assert status == 200
    status, body = await collector.get_json("/api/v1/censor-hops", cc="RU")
    assert (status, body["networks"]) == (200, [])
    status, body = await collector.get_json("/api/v1/censor-hops", cc="KZ")
    assert (status, body["networks"]) == (200, [])


async def test_bad_parameters_are_a_400(collector: Collector) -> None:
    for params in ({}, {"cc": "K1"}, {"cc": "KZ", "service": "Bad!"}, {"cc": "KZ", "x": "1"},
                   {"cc": "KZ", "since": "yesterday"}):  # fmt: skip
        status, body = await collector.get_json("/api/v1/censor-hops", **params)
        assert status == 400, (params, body)
