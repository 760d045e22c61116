"""The probe's rules are a closed list: every id a verdict cites is a registered rule, and the
README's table is the registry's own output."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.paths import REPO_ROOT, checkout_env
from probe import model, vocabulary
from tests.probe.fakes import Answer, Result, ScriptedNetwork, measure
from tests.probe.test_engine_scenarios import ADDRESSES, SCENARIOS, TARGETS, Scenario, scripted

EVERY_FAILURE = sorted(vocabulary.FAILURES)
DNS_FAILURES = [  # what the scripted resolver can answer
    vocabulary.DNS_NXDOMAIN,
    vocabulary.DNS_SERVFAIL,
    vocabulary.DNS_REFUSED,
    vocabulary.DNS_NO_ANSWER,
    vocabulary.DNS_NO_RESOLVER,
    vocabulary.GENERIC_TIMEOUT,
    vocabulary.CONNECTION_REFUSED,
    vocabulary.UNKNOWN,
]


def cited(m: model.Measurement) -> set[str]:
    return {*m.analysis.rules, *(r for e in m.analysis.endpoints for r in e.rules)}


def unregistered(ids: set[str]) -> set[str]:
    return {i for i in ids if (r := vocabulary.lookup(i)) is None or r.layer != "probe"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_every_rule_a_scenario_cites_is_registered(scenario: Scenario) -> None:
    measured = await measure(scripted(scenario), TARGETS)
    ids = set().union(*(cited(m) for m in measured.values()))
    assert ids
    assert unregistered(ids) == set()


any_dns = st.one_of(
    st.sampled_from(DNS_FAILURES).map(lambda x: Answer(failure=x)),
    st.sampled_from(["10.0.0.1", "0.0.0.0", "195.175.254.2", "8.8.8.8"]).map(
        lambda a: Answer((a,))
    ),
    st.just(Answer(("1.1.1.1",), injected=("10.10.34.34",))),
)
any_exchange = st.one_of(
    st.sampled_from(EVERY_FAILURE).map(lambda x: Result(connect=x)),
    st.sampled_from(EVERY_FAILURE).map(lambda x: Result(tls=x)),
    st.sampled_from(EVERY_FAILURE).map(lambda x: Result(http=x)),
    st.just(Result(blockpage="generic.headline")),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dns=st.lists(st.one_of(st.none(), any_dns), min_size=1, max_size=12),
    exchanges=st.lists(st.one_of(st.none(), any_exchange), min_size=1, max_size=24),
)
async def test_whatever_fails_however_every_cited_rule_is_registered(
    dns: list[Answer | None], exchanges: list[Result | None]
) -> None:
    network = ScriptedNetwork(default_address=lambda host: ADDRESSES[host])
    count = 0

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal count
        count += 1
        script: list[Answer | None] | list[Result | None] = dns if kind == "dns" else exchanges
        return script[count % len(script)]

    network.interfere = interfere
    measured = await measure(network, TARGETS)
    assert unregistered(set().union(*(cited(m) for m in measured.values()))) == set()


def test_the_readme_rule_table_is_the_registry_s_output() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "probe.vocabulary"],
        cwd=REPO_ROOT,
        env=checkout_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- rules:begin -->\n(.*?)\n<!-- rules:end -->", readme, re.DOTALL)
    assert block is not None, "README.md needs the generated rule table between its markers"
    assert block.group(1).strip() == printed, "regenerate it: python -m probe.vocabulary"
    assert "| `tls.timeout.sni_contrast` | probe |" in printed
