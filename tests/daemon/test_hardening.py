"""The daemon's defences, piece by piece: one network-resolver parser for the command line
and the settings file, https collectors, no pushed targets on local addresses, token files,
a bounded quarantine, and a spool that outlives a corrupt file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lab.harness.samples import measurement
from lab.paths import REPO_ROOT
from probe.addresses import is_local
from probe.daemon import config, revocation, status
from probe.daemon.spool import Limits, Spool, choose_quarantine_drops
from probe.daemon.state import Credentials, StateDir
from probe.daemon.transport import INSECURE_WARNING, TransportError, check_collector
from probe.measure.dns import network_resolver
from probe.measure.network import ResolverSpecError
from probe.model import encode
from probe.targets import parse


def _probe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        timeout=timeout,
    )


# -- one network-resolver parser ---------------------------------------------------------------

ENCRYPTED = ["tls://1.1.1.1", "https://1.1.1.1/dns-query", "https://dns.google/dns-query"]
PLAIN = ["192.168.1.1", "192.168.1.1:5353", "udp://[2001:db8::1]:53", "tcp://9.9.9.9", "::1"]


@pytest.mark.parametrize("spec", [*ENCRYPTED, "dns.example", "udp://router.lan"])
def test_the_network_resolver_is_plain_dns_to_an_address_everywhere(
    tmp_path: Path, spec: str
) -> None:
    with pytest.raises(ResolverSpecError):
        network_resolver(spec)
    settings = tmp_path / "probe.toml"
    settings.write_text(f'resolver = "{spec}"\n')
    with pytest.raises(config.SettingsError, match=r"probe\.toml: resolver: "):
        config.load(settings)


@pytest.mark.parametrize("spec", PLAIN)
def test_plain_resolvers_parse_the_same_everywhere(tmp_path: Path, spec: str) -> None:
    resolver = network_resolver(spec)
    assert resolver is not None
    assert resolver.transport in ("udp", "tcp")
    settings = tmp_path / "probe.toml"
    settings.write_text(f'resolver = "{spec}"\n')
    assert config.load(settings).resolver == spec


def test_check_refuses_an_encrypted_network_resolver() -> None:
    done = _probe("check", "--resolver", "tls://1.1.1.1", "--service", "telegram")
    assert done.returncode == 2
    assert "--resolver:" in done.stderr
    assert "plain DNS" in done.stderr


def test_a_bad_control_resolver_in_settings_names_the_key(tmp_path: Path) -> None:
    settings = tmp_path / "probe.toml"
    settings.write_text('control_resolvers = ["ftp://1.1.1.1"]\n')
    with pytest.raises(config.SettingsError, match="control_resolvers: "):
        config.load(settings)


# -- transport ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://collector.example", "http://127.0.0.1:8080", "http://[::1]:80", "http://localhost"],
)
def test_https_or_loopback_collectors_need_no_flag(url: str) -> None:
    assert check_collector(url, insecure_http=False) is None


@pytest.mark.parametrize(
    "url", ["http://collector.example", "http://10.0.0.5:8080", "http://[2001:db8::5]"]
)
def test_plain_http_elsewhere_needs_the_loud_flag(url: str) -> None:
    with pytest.raises(TransportError, match="https://"):
        check_collector(url, insecure_http=False)
    assert check_collector(url, insecure_http=True) == INSECURE_WARNING


@pytest.mark.parametrize("url", ["ftp://c.example", "collector.example", "https://u:p@c.example"])
def test_other_collector_urls_are_refused(url: str) -> None:
    with pytest.raises(TransportError):
        check_collector(url, insecure_http=True)


def test_run_refuses_a_plain_http_collector(tmp_path: Path) -> None:
    done = _probe(
        "run", "--collector", "http://192.0.2.1:9", "--state-dir", str(tmp_path / "s"),
        "--accept-consent",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "plain HTTP" in done.stderr
    assert "--insecure-http" in done.stderr
    assert not (tmp_path / "s").exists()


def test_insecure_http_is_said_on_each_start(tmp_path: Path) -> None:
    settings = tmp_path / "probe.toml"
    settings.write_text("no_such_key = 1\n")  # so that the daemon stops right after
    for _ in range(2):
        done = _probe(
            "run", "--collector", "http://192.0.2.1:9", "--insecure-http", "--state-dir",
            str(tmp_path / "s"), "--accept-consent", "--config", str(settings),
        )  # fmt: skip
        assert done.returncode == 2
        assert "WARNING" in done.stderr
        assert "--insecure-http: talking to the collector over plain HTTP" in done.stderr


# -- targets pushed at check-in ----------------------------------------------------------------

LOCAL = ["10.0.0.1", "192.168.1.1", "172.16.5.5", "127.0.0.1", "169.254.169.254", "100.64.0.1"]
LOCAL += ["::1", "fe80::1", "fd00::1", "::ffff:192.168.1.1", "0.0.0.0", "224.0.0.251"]
LOCAL += ["localhost", "printer.localhost"]
PUBLIC = ["149.154.167.51", "2001:67c:4e8:f004::9", "web.telegram.org", "10.example.com"]


@pytest.mark.parametrize("host", LOCAL)
def test_local_addresses(host: str) -> None:
    assert is_local(host)


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses(host: str) -> None:
    assert not is_local(host)


PUSHED = """
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443
[[services.endpoints]]
ip = "192.168.1.1"
port = 80
tls = false

[[services]]
name = "router"
category = "social"
[[services.endpoints]]
host = "10.1.2.3"
port = 443
[[services.endpoints]]
ip = "fe80::1"
port = 443
sni = "router.example"
[[services.endpoints]]
ip = "169.254.169.254"
port = 80
tls = false
"""


def test_local_endpoints_leave_a_pushed_list() -> None:
    kept, refused = parse(PUSHED, "<collector>").without_local()
    assert [s.name for s in kept.services] == ["telegram"]
    assert [t.label for t in kept.services[0].endpoints] == ["web.telegram.org:443"]
    assert refused == (
        "telegram 192.168.1.1:80",
        "router 10.1.2.3:443",
        "router fe80::1:443",
        "router 169.254.169.254:80",
    )


def test_allow_private_targets_is_a_setting(tmp_path: Path) -> None:
    settings = tmp_path / "probe.toml"
    settings.write_text("allow_private_targets = true\n")
    assert config.load(settings).allow_private_targets
    assert not config.load(None).allow_private_targets
    settings.write_text('allow_private_targets = "yes"\n')
    with pytest.raises(config.SettingsError, match="allow_private_targets"):
        config.load(settings)


# -- tokens ------------------------------------------------------------------------------------


def test_an_unreadable_token_file_is_one_line(tmp_path: Path) -> None:
    done = _probe(
        "run", "--collector", "http://127.0.0.1:9", "--token-file", str(tmp_path / "missing"),
        "--state-dir", str(tmp_path / "s"), "--accept-consent",
    )  # fmt: skip
    assert done.returncode == 2
    assert "--token-file" in done.stderr
    assert "Traceback" not in done.stderr


def test_token_and_token_file_exclude_each_other(tmp_path: Path) -> None:
    done = _probe(
        "run", "--collector", "http://127.0.0.1:9", "--token", "a", "--token-file", "b",
    )  # fmt: skip
    assert done.returncode == 2
    assert "not allowed with" in done.stderr


# -- the quarantine is bounded -----------------------------------------------------------------


def test_quarantine_drops_oldest_first_within_both_bounds() -> None:
    sizes = [("a", 10), ("b", 10), ("c", 10), ("d", 10)]
    by_count = Limits(quarantine_max_items=2, quarantine_max_bytes=1000)
    assert choose_quarantine_drops(sizes, by_count) == ("a", "b")
    by_bytes = Limits(quarantine_max_items=100, quarantine_max_bytes=25)
    assert choose_quarantine_drops(sizes, by_bytes) == ("a", "b")
    assert choose_quarantine_drops(sizes, Limits()) == ()


def test_quarantine_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    spooled = [measurement() for _ in range(5)]
    size = len(encode(spooled[0]))
    limits = Limits(quarantine_max_items=3, quarantine_max_bytes=size * 2 + size // 2)
    spool = Spool(tmp_path / "spool.sqlite3", limits)
    try:
        for i, m in enumerate(spooled):
            spool.add([m], now=float(i))
            spool.quarantine({str(m.id): "rejected"}, now=float(i))
        assert [ident for ident, _ in spool.quarantined()] == [str(m.id) for m in spooled[3:]]
        assert spool.counters()["dropped_quarantine"] == 3
        assert status.gather(spool)["dropped"]["dropped_quarantine"] == 3
    finally:
        spool.close()


# -- a corrupt spool is moved aside ------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    path.write_bytes(b"\x00garbage, not SQLite\x00" * 500)
    spool = Spool(path)
    try:
        m = measurement()
        assert spool.add([m]) == 1
        assert spool.depth() == 1
        moved = spool.status()["spool_moved_aside"]
        assert isinstance(moved, dict)
        assert "not a database" in moved["error"]
        assert spool.counters()["spool_resets"] == 1
    finally:
        spool.close()
    aside = list(tmp_path.glob("spool.sqlite3.corrupt-*"))
    assert [p.name for p in aside] == [Path(moved["path"]).name]
    assert aside[0].read_bytes().startswith(b"\x00garbage")


@pytest.mark.parametrize("first", ["read", "write"])
def test_a_malformed_spool_is_moved_aside(tmp_path: Path, first: str) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    spool.add([measurement() for _ in range(50)])
    spool.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : len(data)] = b"\xff" * (len(data) - page)  # every page but the schema's
    path.write_bytes(bytes(data))
    spool = Spool(path)  # the schema page is intact: the damage shows only on use
    try:
        if first == "read":
            assert spool.depth() == 0  # the read found the damage; a new spool answered
            assert spool.add([measurement()]) == 1
        else:
            assert spool.add([measurement()]) == 1  # done again on the new spool, not lost
            assert spool.depth() == 1
        assert spool.counters()["spool_resets"] == 1
    finally:
        spool.close()
    assert len(list(tmp_path.glob("spool.sqlite3.corrupt-*"))) == 1


def test_only_the_newest_unreadable_spools_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    for _ in range(5):
        path.write_bytes(b"not a database" * 100)
        Spool(path).close()
    assert len(list(tmp_path.glob("spool.sqlite3.corrupt-*"))) == 3


def test_status_beside_a_corrupt_spool_says_so_and_leaves_it(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state").ensure()
    state.spool_path.write_bytes(b"not a database" * 100)
    done = _probe("status", "--state-dir", str(state.path))
    assert done.returncode == 1
    assert "moves it aside" in done.stderr
    assert "Traceback" not in done.stderr
    assert state.spool_path.read_bytes().startswith(b"not a database")


# -- revocation --------------------------------------------------------------------------------


def test_a_revoked_probe_enrols_again_only_with_a_new_enrolment_token() -> None:
    stored = Credentials(
        "https://c", "p-1", "cwp_x", revocation.fingerprint("cwe_old"), "2026-01-01T00:00:00"
    )
    assert not revocation.may_enrol_again(stored, None)
    assert not revocation.may_enrol_again(stored, "cwe_old")
    assert revocation.may_enrol_again(stored, "cwe_new")
    assert "cwe_old" not in str(revocation.fingerprint("cwe_old"))
    assert "--token-file FILE" in revocation.advice("https://c")
