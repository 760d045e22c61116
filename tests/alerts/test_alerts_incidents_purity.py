"""`detect` shares untouched state with its input: it must still never change that input."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.incidents import DetectorState, detect
from alerts.model import Observation
from tests.alerts.factory import at, obs, per_minute

VERDICTS = st.sampled_from(["ok", "blocked", "blocked", "anomaly", "offline"])


@st.composite
def streams(draw: st.DrawFn) -> list[Observation]:
    probes = [f"p{i}" for i in range(6)]
    return [
        obs(p, m, draw(VERDICTS), asn=1 + i % 3, service=draw(st.sampled_from(["telegram", "x"])))
        for m in range(draw(st.integers(5, 50)))
        for i, p in enumerate(probes)
        if draw(st.booleans())
    ]


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(0, 5))
def test_no_cycle_changes_the_state_it_was_given(stream: list[Observation], late: int) -> None:
    state = DetectorState()
    batches = [*per_minute(stream), (500.0, [])]
    for minute, batch in batches:
        spooled = [o for o in stream if o.time < at(minute - late)][-late:] if late else []
        before = state.to_json()
        twin = copy.deepcopy(state)
        nxt, changes = detect(state, [*batch, *spooled], at(minute))
        assert state.to_json() == before
        assert detect(twin, [*batch, *spooled], at(minute)) == (nxt, changes)
        state = nxt


def test_a_quiet_cycle_shares_untouched_probes_and_copies_touched_ones() -> None:
    state, _ = detect(DetectorState(), [obs("a", 0, "ok"), obs("b", 0, "ok")], at(1))
    nxt, _ = detect(state, [obs("a", 2, "blocked")], at(3))
    assert nxt.probes["b"] is state.probes["b"]
    assert nxt.probes["a"] is not state.probes["a"]
    assert state.cells["telegram|KZ|9198"].voices["a"].status == "ok"
    assert nxt.cells["telegram|KZ|9198"].voices["a"].status == "strong"
