"""Censoring hops: drawn at ingest from the traces a measurement carries, shown per network
in ``GET /api/v1/censor-hops``, on both databases."""

from __future__ import annotations

import msgspec
from collector_harness import Collector

from collector.ingest import locations
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


async def test_a_router_beside_the_uploaders_own_address_is_withheld(
    collector: Collector,
) -> None:
    """A home router that answers time-exceeded from its WAN address names the volunteer:
    the probe cannot tell, the collector sees the uploader's address and withholds every
    router in its /24 before anything is stored (the harness uploads from 127.0.0.1)."""
    _, token = await collector.register()
    sample = traced(
        measurement(service="telegram", verdict="blocked", asn=64500),
        2,
        ("1.0.0.9", "127.0.0.77", "95.56.1.1"),
    )
    status, _ = await collector.ingest(token, [sample])
    assert status == 200
    status, page = await collector.get_json(
        "/api/v1/measurements", collector.admin_headers, limit="10"
    )
    assert status == 200, page
    (item,) = page["results"]
    routers = [
        (hop["ttl"], hop.get("router"), hop.get("withheld", False))
        for observation in item["measurement"]["observations"]
        if observation["step"] == "trace"
        for hop in observation["hops"]
        if hop["result"] == "time_exceeded"
    ]
    assert routers
    assert all(router != "127.0.0.77" for _, router, _ in routers)
    assert {(ttl, router, withheld) for ttl, router, withheld in routers if ttl == 2} == {
        (2, None, True)
    }
    assert (1, "1.0.0.9", False) in routers  # a router elsewhere is kept
    status, body = await collector.get_json("/api/v1/censor-hops", cc="KZ")
    assert (status, body["networks"]) == (200, [])  # no router, no placed hop


def test_uploader_network_is_the_neighbourhood_of_the_address() -> None:
    assert str(locations.uploader_network("203.0.113.7")) == "203.0.113.0/24"
    assert str(locations.uploader_network("2001:db8:1:2::5")) == "2001:db8:1::/48"
    assert str(locations.uploader_network("::ffff:203.0.113.7")) == "203.0.113.0/24"
    assert locations.uploader_network(None) is None
    assert locations.uploader_network("not an address") is None
