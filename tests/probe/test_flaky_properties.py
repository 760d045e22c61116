"""Properties: a flaky network never produces ``blocked``.

The engine and rules run for real over a scripted network whose operations fail according
to what hypothesis draws: a single transient failure of any kind, or packet loss, which
shows up as timeouts in any pattern at all (hypothesis is free to pick the worst one).

One premise is stated, not proven, by these tests: loss is blind to the server name. A
pattern that times out exactly the handshakes carrying the service's name and none of the
control name's to the same address in between *is* SNI filtering, whoever drew it, and the
``tls.timeout.sni_contrast`` / ``tls.timeout.sni_residual`` rules say so. The adversarial
test therefore allows ``blocked`` from those two rules only; the independent-loss test shows
that loss which does not know the name (each operation lost on its own, at rates far above
what a 25 %-loss link does to a whole handshake) never gets there.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe import vocabulary
from probe.verdicts.rules import TLS_TIMEOUT_SNI_CONTRAST, TLS_TIMEOUT_SNI_RESIDUAL
from tests.probe.fakes import Answer, Result, ScriptedNetwork, measure
from tests.probe.test_engine_scenarios import ADDRESSES, TARGETS, run

NAME_AWARE = {TLS_TIMEOUT_SNI_CONTRAST.id, TLS_TIMEOUT_SNI_RESIDUAL.id}

DNS_FAILURES = [
    vocabulary.DNS_NXDOMAIN,
    vocabulary.DNS_SERVFAIL,
    vocabulary.DNS_REFUSED,
    vocabulary.DNS_NO_ANSWER,
    vocabulary.GENERIC_TIMEOUT,
]
CONNECT_FAILURES = [
    vocabulary.GENERIC_TIMEOUT,
    vocabulary.CONNECTION_REFUSED,
    vocabulary.CONNECTION_RESET,
    vocabulary.HOST_UNREACHABLE,
]
TLS_FAILURES = [
    vocabulary.GENERIC_TIMEOUT,
    vocabulary.CONNECTION_RESET,
    vocabulary.EOF_ERROR,
    vocabulary.SSL_UNKNOWN_AUTHORITY,
    vocabulary.SSL_INVALID_HOSTNAME,
    vocabulary.SSL_FAILED_HANDSHAKE,
]
HTTP_FAILURES = [
    vocabulary.GENERIC_TIMEOUT,
    vocabulary.CONNECTION_RESET,
    vocabulary.EOF_ERROR,
    vocabulary.HTTP_BAD_RESPONSE,
]

transient_dns = st.one_of(
    st.sampled_from(DNS_FAILURES).map(lambda x: Answer(failure=x)),
    st.just(Answer(("10.10.34.34",))),
)
transient_exchange = st.one_of(
    st.sampled_from(CONNECT_FAILURES).map(lambda x: Result(connect=x)),
    st.sampled_from(TLS_FAILURES).map(lambda x: Result(tls=x)),
    st.sampled_from(HTTP_FAILURES).map(lambda x: Result(http=x)),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def clean_network() -> ScriptedNetwork:
    return ScriptedNetwork(default_address=lambda host: ADDRESSES[host])


@SETTINGS
@given(which=st.integers(min_value=0, max_value=60), dns=transient_dns, exchange=transient_exchange)
async def test_a_single_transient_failure_never_yields_blocked(
    which: int, dns: Answer, exchange: Result
) -> None:
    network = clean_network()
    count = 0

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal count
        count += 1
        if count - 1 != which:
            return None
        return dns if kind == "dns" else exchange

    network.interfere = interfere
    verdicts = await run(network)
    judged = {name: v for name, (v, _) in verdicts.items() if not name.startswith("control")}
    assert set(judged.values()) == {"ok"}, verdicts
    assert all(v != "blocked" for v, _ in verdicts.values()), verdicts


loss_pattern = st.lists(st.booleans(), min_size=1, max_size=400)
loss_stage = st.lists(st.sampled_from(["connect", "tls", "http"]), min_size=1, max_size=50)


@SETTINGS
@given(pattern=loss_pattern, stages=loss_stage, duplicate=st.booleans())
async def test_packet_loss_in_any_pattern_never_yields_blocked(
    pattern: list[bool], stages: list[str], duplicate: bool
) -> None:
    network = clean_network()
    count = 0

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal count
        lost = pattern[count % len(pattern)]
        stage = stages[count % len(stages)]
        count += 1
        if kind == "dns":
            if lost:
                return Answer(failure=vocabulary.GENERIC_TIMEOUT)
            # a retransmitted query can be answered twice, identically
            address = ADDRESSES.get(str(key[1]), "93.184.216.34")
            return Answer((address,), injected=(address,)) if duplicate else None
        if not lost:
            return None
        return Result(**{stage: vocabulary.GENERIC_TIMEOUT})

    network.interfere = interfere
    measured = await measure(network, TARGETS)
    for m in measured.values():
        if m.analysis.verdict == "blocked":
            assert set(m.analysis.rules) <= NAME_AWARE, m.analysis


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2])
async def test_loss_blind_to_the_name_never_yields_blocked(rate: float) -> None:
    """Each DNS query and each exchange (control SNI, service SNI, health check alike) is
    lost on its own with this probability, over many seeded runs."""
    blocked = []
    for seed in range(60):
        chance = random.Random(seed)
        network = clean_network()

        def interfere(
            kind: str, key: tuple[object, ...], chance: random.Random = chance
        ) -> object | None:
            if chance.random() >= rate:
                return None
            if kind == "dns":
                return Answer(failure=vocabulary.GENERIC_TIMEOUT)
            return Result(**{chance.choice(["connect", "tls", "http"]): vocabulary.GENERIC_TIMEOUT})

        network.interfere = interfere
        measured = await measure(network, TARGETS)
        blocked += [
            (seed, m.service, m.analysis.rules)
            for m in measured.values()
            if m.analysis.verdict == "blocked"
        ]
    assert blocked == []
