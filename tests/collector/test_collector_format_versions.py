"""The collector takes every 1.x measurement: 1.0.0 probes named any resolver by address,
1.1.0 probes name only listed public resolvers and classes; both are valid as sent."""

from __future__ import annotations

import datetime as dt
import gc

import msgspec
import pytest

from collector.ingest.validation import Invalid, TimeWindow, Valid, check_item
from lab.harness.samples import measurement
from probe import model

WINDOW = TimeWindow(dt.timedelta(hours=1), dt.timedelta(days=30))


def _with(version: str, resolver: str) -> bytes:
    sample = measurement(probe_id="p", start=dt.datetime.now(dt.UTC))
    observations = [
        msgspec.structs.replace(o, resolver=resolver)
        if isinstance(o, model.DNSObservation) and o.role == "network"
        else o
        for o in sample.observations
    ]
    changed = msgspec.structs.replace(sample, format_version=version, observations=observations)
    return model.encode(changed)


@pytest.mark.parametrize(
    ("version", "resolver"),
    [
        ("1.0.0", "udp://192.168.1.1:53"),
        ("1.0.0", "udp://[2a02:2168:a01:1234::1]:53"),
        ("1.1.0", "system"),
        ("1.1.0", "private"),
        ("1.1.0", "public-unlisted"),
        ("1.1.0", "udp://8.8.8.8:53"),
    ],
)
def test_old_and_new_measurements_are_accepted(version: str, resolver: str) -> None:
    raw = _with(version, resolver)
    result = check_item(0, raw, "p", dt.datetime.now(dt.UTC), WINDOW)
    assert isinstance(result, Valid), result
    assert result.body == raw
    assert result.measurement.format_version == version


def test_another_major_version_is_refused() -> None:
    result = check_item(0, _with("2.0.0", "system"), "p", dt.datetime.now(dt.UTC), WINDOW)
    assert isinstance(result, Invalid)
    assert "format_version" in result.reason


def test_this_probe_writes_1_1_0() -> None:
    assert model.FORMAT_VERSION == "1.1.0"
    assert measurement().format_version == "1.1.0"


def test_decoded_measurements_are_outside_the_cycle_collector() -> None:
    """A batch of 1,000 decodes into some 40,000 objects; the wire types are acyclic, so
    none of them is tracked (the collector traversed them again and again otherwise)."""
    decoded = model.decode(model.encode(measurement(probe_id="p")))
    every_type = [decoded, decoded.probe, decoded.analysis, *decoded.observations]
    assert not any(gc.is_tracked(part) for part in every_type)
    assert all(issubclass(type(part), model.Strict) for part in every_type)
