"""The censor's quieter methods: silence for one name, residual silence for an address, and
interception or answers that a fingerprint file names (scripted network, real engine)."""

from __future__ import annotations

import msgspec
import pytest

from probe import model, vocabulary
from probe.verdicts import analysis, fingerprints
from probe.verdicts.fingerprints import FingerprintFileError
from tests.probe.fakes import GOOD_CERT, Answer, Result
from tests.probe.test_edge_cases import TG, run_engine, scripted, verdict

QAZNET_LEAF = model.Certificate(
    sha256="ef" * 32,
    subject="CN=web.telegram.org",
    issuer="CN=Qaznet Trust Network,C=KZ",
    not_before="2019-07-17T00:00:00Z",
    not_after="2019-10-17T00:00:00Z",
)
ISCA_INTERMEDIATE = model.Certificate(
    sha256="12" * 32,
    sha1="c0e15a945595372030f0d45938ebb6081bb39fb5",
    subject="CN=some intermediate",
    issuer="CN=Information Security Certification Authority,O=ISCA,C=KZ",
    not_before="2021-06-18T12:54:34Z",
    not_after="2021-09-01T12:54:34Z",
)


def _residual_drop(after: Result) -> object:
    """After the first handshake with the service's name, everything to TG goes dark."""
    triggered = False

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal triggered
        if kind != "exchange" or key[0] != TG:
            return None
        if key[2] == "network":
            first = not triggered
            triggered = True
            return Result(tls=vocabulary.GENERIC_TIMEOUT) if first else after
        return after if triggered else None

    return interfere


@pytest.mark.parametrize(
    "after",
    [Result(connect=vocabulary.GENERIC_TIMEOUT), Result(tls=vocabulary.GENERIC_TIMEOUT)],
    ids=["new-connections-dropped", "handshakes-dropped"],
)
async def test_residual_silence_after_the_name_is_blocked(after: Result) -> None:
    network = scripted()
    network.interfere = _residual_drop(after)  # type: ignore[assignment]
    got = (await run_engine(network))["telegram"]
    assert verdict(got) == ("blocked", {"tls.timeout"})
    assert got.analysis.rules == ["tls.timeout.sni_residual"]
    assert "residual" in got.analysis.evidence[0]


async def test_silence_for_the_name_names_the_contrast_and_the_attempts() -> None:
    network = scripted(exchanges={(TG, 443, "network"): [Result(tls=vocabulary.GENERIC_TIMEOUT)]})
    got = (await run_engine(network))["telegram"]
    assert verdict(got) == ("blocked", {"tls.timeout"})
    assert got.analysis.rules == ["tls.timeout.sni_contrast"]
    evidence = got.analysis.evidence[0]
    assert "×4" in evidence
    assert "reached the server 4/4" in evidence


async def test_silence_that_lifts_on_a_retry_is_ok() -> None:
    timeouts = [Result(tls=vocabulary.GENERIC_TIMEOUT)] * 2 + [Result()]
    network = scripted(exchanges={(TG, 443, "network"): timeouts})
    assert verdict((await run_engine(network))["telegram"]) == ("ok", set())


async def test_silence_for_every_name_without_a_prior_contrast_stays_an_anomaly() -> None:
    network = scripted(
        exchanges={
            (TG, 443, "network"): [Result(tls=vocabulary.GENERIC_TIMEOUT)],
            (TG, 443, "control"): [Result(connect=vocabulary.GENERIC_TIMEOUT)],
        }
    )
    assert verdict((await run_engine(network))["telegram"])[0] == "anomaly"


@pytest.mark.parametrize(
    "presented",
    [
        Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=QAZNET_LEAF),
        Result(certificate=QAZNET_LEAF),  # a volunteer who installed the state's root
    ],
    ids=["untrusted", "trusted-by-this-machine"],
)
async def test_a_known_interception_ca_is_blocked_on_one_probe(presented: Result) -> None:
    # The control SNI is intercepted too (nothing verifies anywhere): only the file knows.
    network = scripted(
        exchanges={
            (TG, 443, "network"): [presented],
            (TG, 443, "control"): [presented],
        }
    )
    got = (await run_engine(network))["telegram"]
    assert verdict(got) == ("blocked", {"tls.mitm"})
    assert "tls.mitm.known_interception_ca" in got.analysis.rules
    assert "kz.qaznet_trust_network" in " ".join(got.analysis.evidence)


def test_an_interception_intermediate_is_matched_by_its_published_sha1() -> None:
    renamed = msgspec.structs.replace(ISCA_INTERMEDIATE, issuer="CN=x", subject="CN=y")
    found = fingerprints.load().interception_ca([GOOD_CERT, renamed])
    assert found is not None
    assert found[0].about.id == "kz.isca"


def test_a_genuine_chain_matches_no_interception_ca() -> None:
    genuine = model.Certificate(
        sha256="00" * 32,
        subject="CN=R11,O=Let's Encrypt,C=US",
        issuer="CN=ISRG Root X1,O=Internet Security Research Group,C=US",
        not_before="2024-03-13T00:00:00Z",
        not_after="2027-03-12T23:59:59Z",
    )
    assert fingerprints.load().interception_ca([GOOD_CERT, genuine]) is None


async def test_a_known_censor_answer_is_blocked() -> None:
    network = scripted(dns={("network", "web.telegram.org"): [Answer(("195.175.254.2",))]})
    got = (await run_engine(network))["telegram"]
    assert verdict(got)[0] == "blocked"
    assert "dns.hijack" in verdict(got)[1]
    assert "dns.hijack.known_censor_answer" in got.analysis.rules


async def test_every_analysis_records_the_fingerprint_version() -> None:
    got = await run_engine(scripted())
    assert {m.analysis.fingerprints_version for m in got.values()} == {fingerprints.load().version}


async def test_rejudging_stored_facts_uses_todays_fingerprints() -> None:
    network = scripted(
        exchanges={
            (TG, 443, "network"): [
                Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=QAZNET_LEAF)
            ],
            (TG, 443, "control"): [
                Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=QAZNET_LEAF)
            ],
        }
    )
    stored = (await run_engine(network))["telegram"]
    # As judged before the file named the CA: stored with an older version and an anomaly.
    old = msgspec.structs.replace(
        stored,
        analysis=msgspec.structs.replace(
            stored.analysis, verdict="anomaly", fingerprints_version="old"
        ),
    )
    again = model.decode(model.encode(old))
    assert analysis.rejudge(again).verdict == "blocked"


SOURCED = "sources = ['https://example.org/report']\nscope = 'nat'\n"


def _files(**kinds: str) -> dict[str, str]:
    base = {k: 'version = "1"\n' for k in fingerprints.KINDS}
    return base | kinds


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("tls", "[[certificates]]\nid = 'x.y'\nnames = ['CN=a']\nscope = 'nat'\n", "source"),
        ("tls", f"[[certificates]]\nid = 'x.y'\n{SOURCED}", "names"),
        ("tls", f"[[certificates]]\nid = 'x.y'\nsha1 = ['zz']\n{SOURCED}", "hex"),
        ("dns", f"[[answers]]\nid = 'x.y'\nanswers = ['1.2.3.4']\ncolour = 1\n{SOURCED}", "colour"),
        ("http", f"[[pages]]\nid = 'x.y'\npattern = '('\n{SOURCED}", "bad pattern"),
        ("http", f"[[pages]]\nid = 'Bad Id'\ncontains = 'x'\n{SOURCED}", "snake_case"),
    ],
)
def test_a_bad_fingerprint_entry_is_refused_naming_the_file(
    kind: str, text: str, problem: str
) -> None:
    with pytest.raises(FingerprintFileError, match=problem) as caught:
        fingerprints.parse(_files(**{kind: 'version = "1"\n' + text}))
    assert f"{kind}.toml" in str(caught.value)


def test_any_change_to_a_file_changes_the_version() -> None:
    entry = f"[[answers]]\nid = 'zz.test'\nanswers = ['192.0.2.1']\n{SOURCED}"
    before = fingerprints.parse(_files())
    after = fingerprints.parse(_files(dns='version = "1"\n' + entry))
    assert before.version != after.version
    assert after.censor_answer("192.0.2.1") is not None


def test_every_shipped_entry_has_a_scope_and_a_source() -> None:
    shipped = fingerprints.load()
    entries = [*shipped.interception, *shipped.dns, *shipped.http]
    assert entries
    assert all(e.about.scope and e.about.sources for e in entries)
