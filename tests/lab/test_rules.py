"""What the censor's actions and the scenario files mean, read without root or sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import censor, plan
from lab.internet import servers_config
from lab.plan import default_plan
from lab.runner import Got, compare, format_table, parse_report, tally
from lab.scenario import Expectation, ScenarioError, load


def test_sni_filter_is_a_string_match_on_443() -> None:
    (rule,) = censor.SNIFilter(("x.com",), "reset").rules()
    assert rule.chain == censor.FORWARD
    assert rule.spec == (
        "-p", "tcp", "--dport", "443", "-m", "string", "--algo", "bm", "--string", "x.com",
        "-j", "REJECT", "--reject-with", "tcp-reset",
    )  # fmt: skip
    (drop,) = censor.SNIFilter(("x.com",), "drop").rules()
    assert drop.spec[-2:] == ("-j", "DROP")


def test_residual_sni_filter_remembers_the_address_and_punishes_it_for_a_while() -> None:
    first, then = censor.SNIFilter(("x.com",), "drop", residual=60).rules()
    assert first.spec[first.spec.index("--string") :][:2] == ("--string", "x.com")
    assert first.spec[first.spec.index("--rdest") :][:2] == ("--rdest", "--set")
    assert "--string" not in then.spec
    assert then.spec[then.spec.index("--rcheck") :] == ("--rcheck", "--seconds", "60", "-j", "DROP")


def test_a_policer_keyed_on_the_name_marks_the_connection_and_classifies_it() -> None:
    throttle = censor.Throttle((), "128kbit", "8k", names=("x.com",), mark=0x100)
    remember, classify = throttle.rules()
    assert remember.table == classify.table == "mangle"
    assert remember.spec[-4:] == ("-j", "CONNMARK", "--set-mark", "256")
    assert classify.spec[-3:] == ("CLASSIFY", "--set-class", "1:100")
    commands = censor.shaping_commands("eth0", "src", [throttle])
    assert any(c[7:9] == ["classid", "1:100"] for c in commands)
    assert commands[-1][-4:] == ["1:100", "pfifo", "limit", str(throttle.queue)]
    assert not any("filter" in c for c in commands)  # CLASSIFY needs no tc classifier


def test_a_slow_link_sends_everything_to_its_class_over_both_families() -> None:
    link = censor.Throttle((), "1mbit", everything=True)
    commands = censor.shaping_commands("eth0", "src", [link])
    filters = [c for c in commands if c[1] == "filter"]
    assert [c[c.index("protocol") + 1] for c in filters] == ["ip", "ipv6"]
    assert {c[c.index("prio") + 1] for c in filters} == {"1", "2"}  # one protocol per prio
    assert all(c[-6:] == ["match", "u32", "0", "0", "flowid", "1:10"] for c in filters)


def test_an_address_throttle_caps_each_address_in_its_own_family() -> None:
    throttle = censor.Throttle(("1.2.3.4", "2001:db8::4"), "128kbit")
    commands = censor.shaping_commands("up0", "dst", [throttle])
    matches = [c[c.index("protocol") + 1 :] for c in commands if c[1] == "filter"]
    assert matches == [
        ["ip", "prio", "1", "u32", "match", "ip", "dst", "1.2.3.4/32", "flowid", "1:10"],
        ["ipv6", "prio", "2", "u32", "match", "ip6", "dst", "2001:db8::4/128", "flowid", "1:10"],
    ]


def test_residual_and_one_family_sni_rules_go_into_that_familys_tables() -> None:
    for rule in censor.SNIFilter(("x.com",), "drop", residual=60, family="ipv6").rules():
        assert rule.commands() == ("ip6tables",)
    for rule in censor.SNIFilter(("x.com",), "drop", residual=60).rules():
        assert rule.commands() == ("iptables", "ip6tables")


def test_blackhole_narrows_to_ports_when_given() -> None:
    assert [r.spec for r in censor.Blackhole(("1.2.3.4",)).rules()] == [
        ("-d", "1.2.3.4", "-j", "DROP")
    ]
    (rule,) = censor.Blackhole(("1.2.3.4",), (5222,)).rules()
    assert rule.spec == ("-d", "1.2.3.4", "-p", "tcp", "--dport", "5222", "-j", "DROP")


def test_refuse_matches_syn_only_and_reset_matches_payload_only() -> None:
    (refuse,) = censor.Refuse(("1.2.3.4",)).rules()
    assert "--syn" in refuse.spec
    (reset,) = censor.ResetByAddress(("1.2.3.4",)).rules()
    assert reset.spec[reset.spec.index("--length") :][:2] == ("--length", "61:65535")


def test_port_narrowed_rules_name_the_protocol_once() -> None:
    for action in (
        censor.Refuse(("1.2.3.4",), (443,)),
        censor.ResetByAddress(("1.2.3.4",), (443,)),
    ):
        (rule,) = action.rules()
        assert rule.spec.count("-p") == 1
        assert rule.spec[rule.spec.index("-p") :][:4] == ("-p", "tcp", "--dport", "443")


def test_mitm_and_blockpage_are_dnat_to_the_lab_servers() -> None:
    (mitm,) = censor.TLSInterception(("1.2.3.4",)).rules()
    assert (mitm.table, mitm.spec[-1]) == ("nat", f"{plan.MITM_IP}:443")
    (page,) = censor.HTTPBlockpage(("1.2.3.4",)).rules()
    assert page.spec[-1] == f"{plan.BLOCKPAGE_IP}:80"


def test_loss_covers_forwarded_and_the_routers_own_traffic() -> None:
    chains = {rule.chain for rule in censor.Loss(0.1).rules()}
    assert chains == {censor.FORWARD, censor.INPUT, censor.OUTPUT}
    with pytest.raises(ValueError, match="between 0 and 1"):
        censor.Loss(1.5)


def test_shaping_gives_each_throttle_its_class() -> None:
    throttles = [censor.Throttle(("1.2.3.4",), "64kbit"), censor.Throttle(("5.6.7.8",), "1mbit")]
    commands = censor.shaping_commands("lan0", "src", throttles)
    filters = [c for c in commands if c[1] == "filter"]
    assert [c[c.index("flowid") + 1] for c in filters] == ["1:10", "1:11"]
    assert [c[c.index("src") + 1] for c in filters] == ["1.2.3.4/32", "5.6.7.8/32"]


def test_dns_answer_override_needs_addresses() -> None:
    with pytest.raises(ValueError, match="needs addresses"):
        censor.DNSOverride(("x.com",), "answer")


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_scenario_expands_a_service_into_names_and_addresses(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        'title = "t"\n[[actions]]\nkind = "dns"\nservice = "telegram"\nanswer = "bogon"\n'
        '[[actions]]\nkind = "tls-mitm"\nservice = "telegram"\n'
        '[expect]\ndefault = { verdict = "ok" }\n',
    )
    loaded = load(path, default_plan())
    dns_action, mitm = loaded.actions
    assert dns_action == censor.DNSOverride(
        ("web.telegram.org", "telegram.org"), "answer", (plan.BOGON_ANSWER,)
    )
    assert isinstance(mitm, censor.TLSInterception)
    assert "149.154.175.50" not in mitm.addresses  # plain TCP, not TLS


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('title = "t"\n[expect]\nnosuch = { verdict = "ok" }\n', "expect.nosuch"),
        ('title = "t"\n[expect]\ndefault = { verdict = "fine" }\n', "expect.default.verdict"),
        ('title = "t"\n[[actions]]\nkind = "dns"\nservice = "x"\nanswer = "maybe"\n'
         '[expect]\ndefault = { verdict = "ok" }\n', "actions[0].answer"),
        ('title = "t"\n[[actions]]\nkind = "loss"\nprobability = 0.1\nfoo = 1\n'
         '[expect]\ndefault = { verdict = "ok" }\n', "actions[0].foo"),
        ('title = "t"\n[expect]\ntelegram = { verdict = "ok" }\n', "expect"),
        ('title = "t"\n[[actions]]\nkind = "slow-origin"\nservice = "x"\nrate = "fast"\n'
         '[expect]\ndefault = { verdict = "ok" }\n', "actions[0].rate"),
    ],
)  # fmt: skip
def test_scenario_errors_name_the_key(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ScenarioError, match=rf"s\.toml: {__import__('re').escape(where)}:"):
        load(_scenario(tmp_path, text), default_plan())


def test_expectation_needs_the_verdict_and_every_named_method() -> None:
    expected = Expectation("blocked", ("dns.nxdomain",))
    assert expected.met_by("blocked", ("dns.nxdomain", "tcp.timeout"))
    assert not expected.met_by("blocked", ("tcp.timeout",))
    assert not expected.met_by("anomaly", ("dns.nxdomain",))


def test_report_compared_and_tabulated(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        'title = "t"\n[expect]\ndefault = { verdict = "ok" }\n'
        'x = { verdict = "blocked", methods = ["tls.reset"] }\n',
    )
    loaded = load(path, default_plan())
    report = parse_report(
        '{"services": [{"service": "x", "verdict": "blocked", "methods": ["tls.reset"]},'
        ' {"service": "signal", "verdict": "blocked", "methods": ["dns.nxdomain"]}]}'
    )
    assert report["x"] == Got("blocked", ("tls.reset",))
    rows = compare(loaded, report)
    by_service = {row.service: row for row in rows}
    assert by_service["x"].correct
    assert by_service["signal"].false_block
    assert by_service["telegram"].got is None
    assert not by_service["telegram"].correct
    table = format_table(rows)
    assert "FALSE BLOCK" in table
    assert "(missing)" in table
    assert tally("s", [rows]).runs_with_false_block == 1


def test_report_that_is_not_json_is_an_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_report("Traceback …")


def test_a_slow_origin_slows_the_services_own_servers_not_the_path(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        'title = "t"\n[[actions]]\nkind = "slow-origin"\nservice = "x"\nrate = "128kbit"\n'
        '[expect]\ndefault = { verdict = "ok" }\n',
    )
    lab_plan = default_plan()
    (slow,) = load(path, lab_plan).actions
    assert isinstance(slow, censor.SlowOrigin)
    assert slow.rate == 16_000
    x = {a for site in lab_plan.service_sites("x") for a in (site.ip, site.ip6) if a}
    assert set(slow.addresses) == x
    config = servers_config(lab_plan, "pki", dict.fromkeys(slow.addresses, slow.rate))
    rates = {s["host"]: s["download_rate"] for s in config["servers"] if "download_rate" in s}
    assert {host for host, rate in rates.items() if rate} == x
    assert set(rates.values()) == {0, 16_000}


def test_a_slow_origin_is_cleared_with_everything_else() -> None:
    paced: list[dict[str, int]] = []
    lever = censor.Censor("unused", Path("/nonexistent"))
    lever.pace_origins = lambda rates: paced.append(dict(rates))
    lever.slow_origins({"104.244.42.1": 16_000})
    censor.SlowOrigin(("104.244.42.1",), 16_000).clear(lever)
    assert paced == [{"104.244.42.1": 16_000}, {}]
