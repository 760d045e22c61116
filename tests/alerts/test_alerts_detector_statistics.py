"""The detector's statistics: the exact binomial tail, and the false-alarm rate by simulation.

Pure and seeded: a population of probes measured round by round, every measurement failing
independently with some probability, fed to `detect` as a collector would.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.incidents import DetectorConfig, DetectorState, detect, pattern_requirement
from alerts.model import Change, Observation
from alerts.significance import binomial_tail
from tests.alerts.factory import at, obs

SERVICES = ("telegram", "whatsapp", "signal", "youtube", "x", "control_a")


@given(st.integers(0, 30), st.integers(0, 30), st.floats(0.0, 1.0))
def test_binomial_tail_is_the_sum_of_the_binomial_terms(k: int, n: int, p: float) -> None:
    exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(max(k, 0), n + 1))
    assert math.isclose(binomial_tail(k, n, p), min(1.0, exact), rel_tol=1e-9, abs_tol=1e-300)


def test_binomial_tail_stays_exact_far_below_float_sums() -> None:
    assert math.isclose(binomial_tail(200, 200, 0.05), 0.05**200, rel_tol=1e-9)


def _population(probes: int, asns: int) -> list[tuple[str, int]]:
    return [(f"p{i}", 1000 + i % asns) for i in range(probes)]


def _round(
    rng: random.Random,
    population: list[tuple[str, int]],
    minute: float,
    noise: float,
    fail: dict[tuple[int, str], str] | None = None,
) -> list[Observation]:
    """One measuring round; `fail` maps (asn, service) to the verdict a censor forces."""
    out = []
    for probe, asn in population:
        for service in SERVICES:
            forced = (fail or {}).get((asn, service)) or (fail or {}).get((0, service))
            if forced:
                verdict, methods = (
                    forced,
                    ("dns.nxdomain",) if forced == "blocked" else ("tls.timeout",),
                )
            elif rng.random() < noise:
                verdict, methods = "anomaly", ("tls.timeout",)
            else:
                verdict, methods = "ok", ()
            t = minute + rng.random() * 0.5
            out.append(
                obs(
                    probe,
                    t,
                    verdict,
                    asn=asn,
                    service=service,
                    methods=methods,
                    received=at(t + 0.6),
                )
            )
    return out


def _simulate(
    rounds: int,
    noise: float,
    config: DetectorConfig,
    *,
    probes: int = 120,
    asns: int = 6,
    seed: int = 1,
) -> list[Change]:
    rng = random.Random(seed)
    population = _population(probes, asns)
    state, changes = DetectorState(), []
    for r in range(rounds):
        state, new = detect(state, _round(rng, population, r * 5, noise), at(r * 5 + 1), config)
        changes.extend(new)
    return changes


def _opened(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.kind == "incident.opened"]


def test_independent_noise_of_five_per_cent_opens_nothing_in_a_day() -> None:
    assert _opened(_simulate(288, 0.05, DetectorConfig())) == []


def test_independent_noise_of_ten_per_cent_opens_nothing_in_half_a_day() -> None:
    assert _opened(_simulate(144, 0.10, DetectorConfig(), seed=2)) == []


def test_false_alarms_stay_under_the_union_bound_at_a_larger_alpha() -> None:
    """At alpha = 1e-3 false incidents happen; their rate must stay under tests x alpha."""
    config = replace(DetectorConfig(), alpha=1e-3, recovery_quiet=timedelta(minutes=5))
    rounds, asns = 288, 6
    tests_per_round = 2 * (asns + 1) * len(SERVICES)
    bound = rounds * tests_per_round * config.alpha
    found = len(_opened(_simulate(rounds, 0.05, config, asns=asns, seed=3)))
    assert found <= bound, (found, bound)


def test_a_national_block_opens_in_the_first_round() -> None:
    rng = random.Random(4)
    population = _population(120, 6)
    state = DetectorState()
    for r in range(12):
        state, changes = detect(state, _round(rng, population, r * 5, 0.05), at(r * 5 + 1))
        assert changes == []
    blocked = _round(rng, population, 60, 0.05, {(0, "telegram"): "blocked"})
    _, changes = detect(state, blocked, at(61))
    [change] = _opened(changes)
    assert change.incident.service == "telegram"
    assert change.incident.status == "open"
    assert len(change.incident.asns) == 6


def test_one_isps_sni_drop_opens_within_three_rounds_and_only_there() -> None:
    rng = random.Random(5)
    population = _population(120, 6)
    state, changes = DetectorState(), []
    for r in range(12):
        state, _ = detect(state, _round(rng, population, r * 5, 0.05), at(r * 5 + 1))
    for r in range(12, 15):
        drop = _round(rng, population, r * 5, 0.05, {(1002, "signal"): "anomaly"})
        state, new = detect(state, drop, at(r * 5 + 1))
        changes += new
    [change] = _opened(changes)
    assert change.incident.service == "signal"
    assert change.incident.asns == (1002,)
    assert "block.open.pattern" in change.incident.rules


def _pattern_opens(voices: int, rounds: int) -> bool:
    """`voices` probes of one ASN, `rounds` quiet rounds, then all of them fail on signal."""
    config = replace(DetectorConfig(), history_half_life=timedelta(days=10**5))  # undecayed
    population = [(f"p{i}", 1000) for i in range(voices)] + [(f"q{i}", 1001) for i in range(8)]
    rng, state = random.Random(6), DetectorState()
    for r in range(rounds):
        state, _ = detect(state, _round(rng, population, r * 5, 0.0), at(r * 5 + 1), config)
    drop = _round(rng, population, rounds * 5, 0.0, {(1000, "signal"): "anomaly"})
    _, changes = detect(state, drop, at(rounds * 5 + 1), config)
    return any(c.incident.service == "signal" for c in _opened(changes))


@pytest.mark.parametrize("rounds", [0, 8, 16])
def test_the_pattern_requirement_is_what_the_detector_needs(rounds: int) -> None:
    """`pattern_requirement` (what benchmarks.alert_truth prints for a small population) is
    exactly the detector's threshold: one voice fewer, all failing, opens nothing. The last
    window and a bucket (4 rounds) still wait to be learnt when the drop comes."""
    for voices in range(3, 10):
        _, needed = pattern_requirement(voices * max(0, rounds - 4), 0.0)
        assert _pattern_opens(voices, rounds) == (voices >= needed), (voices, needed)


def test_a_cells_counts_are_those_of_the_voices_it_holds() -> None:
    """Counts are kept as voices change, not recounted each cycle: after probes fall silent,
    move ASN, send spooled rounds and go through a stored state, they still match."""
    rng, state = random.Random(7), DetectorState()
    population = _population(30, 3)
    for r in range(30):
        present = [(p, a if rng.random() > 0.1 else 1000 + rng.randrange(3)) for p, a in population
                   if rng.random() > 0.3]  # fmt: skip
        censor = {(1001, "telegram"): "blocked"} if r % 3 else None
        batch = _round(rng, present, r * 5 - (20 if r % 7 == 0 else 0), 0.2, censor)
        state, _ = detect(state, batch, at(r * 5 + 1))
        if r % 5 == 0:
            state = DetectorState.from_json(state.to_json())
        for key, cell in state.cells.items():
            voices = cell.voices.values()
            failing = sum(v.status != "ok" for v in voices)
            strong = sum(v.status == "strong" for v in voices)
            assert (cell.n, cell.failing, cell.strong) == (len(voices), failing, strong), key


def test_an_onset_heard_probe_by_probe_does_not_become_the_baseline() -> None:
    """Cycles every few seconds hear a round one probe at a time: the first failing voices
    of a block look like noise (1, 2, 3 of 6) and must not be learnt as the cell's normal,
    or a 6-probe ASN's SNI drop would lift its own baseline out of reach."""
    population = [(f"p{i}", 1000) for i in range(6)] + [(f"q{i}", 1001) for i in range(8)]
    rng, state, changes = random.Random(8), DetectorState(), []
    for r in range(17):
        drop = {(1000, "signal"): "anomaly"} if r >= 14 else None
        batch = _round(rng, population, r * 5, 0.0, drop)
        for i, (probe, _) in enumerate(population):  # one probe per cycle
            mine = [o for o in batch if o.probe_id == probe]
            state, new = detect(state, mine, at(r * 5 + 1 + i * 0.1))
            changes += new
    [change] = _opened(changes)
    assert (change.incident.service, change.incident.asns) == ("signal", (1000,))
