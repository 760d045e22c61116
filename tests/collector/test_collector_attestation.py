"""Network attestations: issued, verified, and refused when tampered with (pure)."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.enrolment.attestation import GRACE, LIFETIME, InvalidAttestation, issue, verify
from collector.enrolment.probes import ProbeRecord
from collector.ingest.measurements import Placements, network_columns
from collector.ingest.validation import Valid
from lab.harness.samples import measurement

KEY = b"k" * 32
NOW = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)


def test_an_attestation_says_what_the_collector_found_for_its_window() -> None:
    found = verify(issue("p1", "KZ", 9198, NOW, KEY), "p1", KEY)
    assert (found.probe_id, found.cc, found.asn, found.issued) == ("p1", "KZ", 9198, NOW)
    assert found.covers(NOW + LIFETIME + GRACE)
    assert not found.covers(NOW + LIFETIME + GRACE + dt.timedelta(seconds=1))
    assert not found.covers(NOW - dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (issue("p1", "KZ", 9198, NOW, b"another key"), "attestation_forged"),
        (issue("p2", "KZ", 9198, NOW, KEY), "attestation_other_probe"),
        ("no-dot-here", "attestation_forged"),
        ("!!!.???", "attestation_forged"),
    ],
)
def test_forged_borrowed_and_malformed_attestations_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidAttestation) as caught:
        verify(text, "p1", KEY)
    assert caught.value.reason == reason


@given(st.integers(0, 200), st.characters(codec="ascii"))
def test_changing_any_character_never_changes_what_it_attests(
    position: int, replacement: str
) -> None:
    """Refused, or (a base64 character's unused bits) exactly the same statement."""
    text = issue("p1", "KZ", 9198, NOW, KEY)
    position %= len(text)
    tampered = text[:position] + replacement + text[position + 1 :]
    try:
        found = verify(tampered, "p1", KEY)
    except InvalidAttestation:
        return
    assert found == verify(text, "p1", KEY)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["good", "forged", "other_probe", "none"]),
            st.sampled_from([-2, 0, 1, 7]),  # hours after issue: before, in, in, after
            st.sampled_from([("KZ", 9198), ("KZ", 1), ("RU", 9198), (None, None)]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_a_batch_places_each_item_as_it_would_be_placed_alone(
    items: list[tuple[str, int, tuple[str | None, int | None]]], keyed: bool
) -> None:
    """Placements remembers what a batch repeats; no item may come out otherwise."""
    texts = {
        "good": issue("p1", "KZ", 9198, NOW, KEY),
        "forged": issue("p1", "KZ", 9198, NOW, b"another key"),
        "other_probe": issue("p2", "KZ", 9198, NOW, KEY),
        "none": None,
    }
    probe = ProbeRecord("p1", False, "KZ", 48716)
    key = KEY if keyed else None
    batch = Placements(probe, key)
    for which, hours, (cc, asn) in items:
        sample = measurement(probe_id="p1", start=NOW + dt.timedelta(hours=hours))
        info = msgspec.structs.replace(sample.probe, cc=cc, asn=asn, attestation=texts[which])
        valid = Valid(0, msgspec.structs.replace(sample, probe=info), b"{}", ())
        assert batch.of(valid) == network_columns(valid, probe, key)
