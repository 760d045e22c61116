"""Pure decisions: reanalysis rules, rate limiting, IP-to-ASN lookup, configuration."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import Config, ConfigError, Listen, resolve
from collector.enrolment import iptoasn
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.reanalysis import (
    ALL_FAIL,
    CONTROL_REACHES,
    KEEP,
    KEEP_FINGERPRINT,
    OTHER_ASN_REACHES,
    RULES_VERSION,
    Reading,
    Vantage,
    reanalyse,
    vantage_counts,
)
from probe.model import VERDICTS

KZ = 9198


def reading(verdict: str, methods: tuple[str, ...] = (), control: bool = False) -> Reading:
    return Reading(verdict, methods, KZ, control)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "probe", "context", "verdict", "rule"),
    [
        ("no context", reading("anomaly"), [], "anomaly", KEEP.id),
        ("ok stays ok", reading("ok"), [Vantage(1, True, 0, 9)], "ok", KEEP.id),
        ("offline stays offline", reading("offline"), [Vantage(1, True, 9, 0)], "offline", KEEP.id),
        (
            "control reaches: a lone anomaly stays anomaly",
            reading("anomaly"),
            [Vantage(1, True, 5, 0)],
            "anomaly",
            CONTROL_REACHES.id,
        ),
        (
            "control reaches: blocked kept",
            reading("blocked"),
            [Vantage(1, True, 5, 1)],
            "blocked",
            CONTROL_REACHES.id,
        ),
        (
            "other ASN reaches: a lone anomaly stays anomaly",
            reading("anomaly"),
            [Vantage(2, False, 3, 0)],
            "anomaly",
            OTHER_ASN_REACHES.id,
        ),
        (
            "same ASN reaching proves nothing",
            reading("anomaly"),
            [Vantage(KZ, False, 3, 0)],
            "anomaly",
            KEEP.id,
        ),
        (
            "all fail: down",
            reading("anomaly"),
            [Vantage(1, True, 0, 4), Vantage(2, False, 0, 2)],
            "down",
            ALL_FAIL.id,
        ),
        (
            "all fail, no control: unconfirmed",
            reading("anomaly"),
            [Vantage(2, False, 0, 2)],
            "anomaly",
            KEEP.id,
        ),
        (
            "all fail but fingerprint",
            reading("blocked", ("dns.bogon",)),
            [Vantage(1, True, 0, 4)],
            "blocked",
            KEEP_FINGERPRINT.id,
        ),
        (
            "all fail, blocked on a reset",
            reading("blocked", ("tcp.reset",)),
            [Vantage(1, True, 0, 4)],
            "down",
            ALL_FAIL.id,
        ),
        (
            "control probe failing alone",
            reading("anomaly", control=True),
            [Vantage(1, True, 4, 0)],
            "anomaly",
            KEEP.id,
        ),
    ],
)
def test_reanalysis_rules(
    name: str, probe: Reading, context: list[Vantage], verdict: str, rule: str
) -> None:
    outcome = reanalyse(probe, context)
    assert (outcome.verdict, outcome.rule, outcome.rules_version) == (
        verdict,
        rule,
        RULES_VERSION,
    ), name


VANTAGES = st.builds(
    Vantage, st.integers(1, 5), st.booleans(), st.integers(0, 9), st.integers(0, 9)
)


@given(st.sampled_from(["anomaly", "ok", "down", "offline"]), st.lists(VANTAGES, max_size=6))
def test_reanalysis_never_raises_a_verdict_to_blocked(verdict: str, context: list[Vantage]) -> None:
    """A lone failure fits a bad Wi-Fi as well as a censor: context never makes it blocked."""
    assert reanalyse(reading(verdict), context).verdict != "blocked"


vantages = st.lists(
    st.builds(Vantage, st.integers(0, 5), st.booleans(), st.integers(0, 9), st.integers(0, 9)),
    max_size=6,
)


@given(st.sampled_from(VERDICTS), st.booleans(), vantages)
def test_reanalysis_only_ever_moves_failures(
    verdict: str, control: bool, context: list[Vantage]
) -> None:
    outcome = reanalyse(Reading(verdict, (), KZ, control), context)  # type: ignore[arg-type]
    if verdict not in ("anomaly", "blocked"):
        assert outcome.verdict == verdict
    else:
        assert outcome.verdict in ("anomaly", "blocked", "down")


def test_vantage_counts_ignores_offline() -> None:
    rows = [
        (1, True, "ok", 2),
        (1, True, "offline", 7),
        (1, True, "blocked", 1),
        (2, False, "down", 3),
    ]
    assert sorted(vantage_counts(rows), key=lambda v: v.asn) == [
        Vantage(1, True, 2, 1),
        Vantage(2, False, 0, 3),
    ]


def test_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(rate=10, burst=100)
    assert limiter.wait_for("p", 100, now=0) == 0
    assert limiter.wait_for("p", 10, now=0) == pytest.approx(1.0)
    assert limiter.wait_for_any("p", now=0) == pytest.approx(0.1)
    assert limiter.wait_for("p", 10, now=1.0) == 0
    assert limiter.wait_for("other", 100, now=1.0) == 0
    assert RateLimiter(rate=0, burst=1).wait_for("p", 10**6, now=0) == 0


def test_iptoasn_lookup(tmp_path: Path) -> None:
    path = tmp_path / "ip2asn.tsv.gz"
    path.write_bytes(
        gzip.compress(
            b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n"
            b"1.0.1.0\t1.0.1.255\t0\tNone\tNot routed\n"
            b"2.0.0.0\t2.0.0.255\t9198\tKZ\tKAZTELECOM\n"
            b"2001:db8::\t2001:db8::ffff\t64500\tKZ\tTEST\n"
        )
    )
    table = iptoasn.load(path)
    assert table.lookup("1.0.0.7") == iptoasn.Network(13335, "US")
    assert table.lookup("::ffff:2.0.0.9") == iptoasn.Network(9198, "KZ")
    assert table.lookup("2001:db8::12") == iptoasn.Network(64500, "KZ")
    assert table.lookup("1.0.1.1") is None
    assert table.lookup("9.9.9.9") is None
    assert table.lookup("not an address") is None


@pytest.mark.parametrize(
    "line",
    [
        "1.0.0.0\t1.0.0.255\n",
        "1.0.0.9\t1.0.0.1\t1\tUS\tx\n",
        "a\tb\t1\tUS\tx\n",
        "1.0.0.0\t::1\t1\tUS\tx\n",
    ],
)
def test_iptoasn_bad_lines_name_the_line(line: str, tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("1.0.0.0\t1.0.0.255\t13335\tUS\tok\n" + line)
    with pytest.raises(iptoasn.TableError, match=rf"{path}:2:"):
        iptoasn.load(path)


def test_config_precedence_file_environment_flags(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[collector]\nlisten = "0.0.0.0:9000"\nmax_batch_items = 10\nrate_per_second = 5\n'
    )
    env = {"CENSORWATCH_MAX_BATCH_ITEMS": "20", "CENSORWATCH_RATE_PER_SECOND": "7.5", "HOME": "/x"}
    config = resolve(file, env, {"max_batch_items": 30, "db": None})
    assert config.listen == Listen("0.0.0.0", 9000)
    assert (config.max_batch_items, config.rate_per_second) == (30, 7.5)
    assert config.db_url == f"sqlite:///{Config().data_dir / 'censorwatch.db'}"


@pytest.mark.parametrize(
    ("file_text", "env", "where"),
    [
        ("colour = 1", {}, "c.toml: colour: unknown setting"),
        ("max_batch_items = -1", {}, "c.toml: max_batch_items"),
        ("ingest_batches_in_flight = 0", {}, "c.toml: ingest_batches_in_flight"),
        ("workers = 0", {}, "c.toml: workers: expected a whole number >= 1"),
        ("", {"CENSORWATCH_WORKERS": "²"}, "environment variable CENSORWATCH_WORKERS"),
        ("workers = 2", {}, "workers: 2 worker processes need PostgreSQL"),
        ("", {"CENSORWATCH_INGEST_WAIT_SECONDS": "-1"}, "CENSORWATCH_INGEST_WAIT_SECONDS"),
        ("listen = 'nohost'", {}, "c.toml: listen: expected HOST:PORT"),
        ("[[", {}, "invalid TOML"),
        (
            "",
            {"CENSORWATCH_OPEN_ENROLMENT": "perhaps"},
            "environment variable CENSORWATCH_OPEN_ENROLMENT",
        ),
        ("", {"CENSORWATCH_RATE_PER_SECOND": "inf"}, "CENSORWATCH_RATE_PER_SECOND"),
    ],
)
def test_config_errors_name_their_source(
    file_text: str, env: dict[str, str], where: str, tmp_path: Path
) -> None:
    file = tmp_path / "c.toml"
    file.write_text(file_text)
    with pytest.raises(ConfigError) as caught:
        resolve(file, env, {})
    assert where in str(caught.value)
