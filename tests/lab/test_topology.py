"""The lab's network and the censor's actions, checked at the packet level from the client.

Everything here runs real namespaces, iptables and servers, so it needs root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import censor as actions
from lab import client, plan
from lab.netns import call_in
from lab.shell import run
from lab.topology import NETNS_ETC, Topology, lab_namespaces
from tests.lab.conftest import TEST_PREFIX

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.root,
    pytest.mark.slow,
]

TELEGRAM = "149.154.167.99"
TELEGRAM_NAME = "web.telegram.org"
WIKIPEDIA = "185.15.59.224"
NEWS = "104.18.30.10"
NEWS_NAME = "www.azattyq.org"
CONTROL_SNI = "example.com"
UP_DOWN_PREFIX = f"{TEST_PREFIX.rstrip('-')}2-"
STALE_PREFIX = f"{TEST_PREFIX.rstrip('-')}3-"
"""Beside the session lab's prefix, so two checkouts testing at once never collide."""


def _gone(prefix: str) -> None:
    assert lab_namespaces(prefix) == []
    assert not list(NETNS_ETC.glob(f"{prefix}*"))
    leftover = run(["pgrep", "-f", f"/run/cwlab/{prefix.rstrip('-')}/"], check=False)
    assert leftover.stdout == ""


def test_up_and_down_twice_in_a_row() -> None:
    for _ in range(2):
        topology = Topology(UP_DOWN_PREFIX)
        topology.up()
        assert sorted(lab_namespaces(UP_DOWN_PREFIX)) == sorted(topology.ns.all())
        resolved = client.dns_query(topology.ns.client, plan.ISP_RESOLVER_IP, TELEGRAM_NAME)
        assert resolved.first == (TELEGRAM,)
        topology.down()
        topology.down()  # idempotent
        _gone(UP_DOWN_PREFIX)


def test_up_cleans_what_a_killed_run_left() -> None:
    prefix = STALE_PREFIX
    for namespace in (f"{prefix}client", f"{prefix}router"):
        run(["ip", "netns", "add", namespace])
    (NETNS_ETC / f"{prefix}client").mkdir(parents=True, exist_ok=True)
    (NETNS_ETC / f"{prefix}client" / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    orphan = subprocess.Popen(["ip", "netns", "exec", f"{prefix}router", "sleep", "600"])
    try:
        with Topology(prefix) as topology:
            assert orphan.wait(5) is not None  # the stale namespace's process was stopped
            resolv = (NETNS_ETC / topology.ns.client / "resolv.conf").read_text()
            assert plan.ISP_RESOLVER_IP in resolv
            outcome = client.connect(topology.ns.client, TELEGRAM, 443)
            assert outcome.result == "ok"
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()
    _gone(prefix)


def test_client_reaches_internet_servers_through_the_router(lab: Topology) -> None:
    ns = lab.ns.client
    assert client.dns_query(ns, plan.ISP_RESOLVER_IP, TELEGRAM_NAME).first == (TELEGRAM,)
    assert client.dns_query(ns, plan.ISP_RESOLVER_IP, "nosuch.example").rcodes == ("NXDOMAIN",)
    handshake = client.tls_handshake(ns, TELEGRAM, TELEGRAM_NAME, lab.ca_file)
    assert handshake.result == "ok", handshake
    assert client.tls_handshake(ns, TELEGRAM, CONTROL_SNI, lab.ca_file).result == "ok"
    assert client.connect(ns, "149.154.175.50", 443).result == "ok"
    assert client.connect(ns, "157.240.9.60", 5222).result == "ok"
    page = client.http_get(ns, NEWS, NEWS_NAME)
    assert page.result == "ok"
    assert NEWS_NAME in page.detail
    doh = client.tls_handshake(
        ns, plan.CONTROL_RESOLVER_IP, plan.CONTROL_RESOLVER_NAME, lab.ca_file
    )
    assert doh.result == "ok", doh


def test_nothing_links_the_lab_to_the_hosts_network(lab: Topology) -> None:
    host_links = run(["ip", "-o", "link"]).stdout
    assert f"link-netns {TEST_PREFIX}" not in host_links
    host_addresses = run(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout.split()
    for word in host_addresses:
        if "/" in word and word[0].isdigit():
            outcome = client.connect(lab.ns.client, word.split("/")[0], 22, timeout=0.5)
            assert outcome.result in ("timeout", "unreachable"), (word, outcome)


def test_blackhole_times_out_and_spares_other_addresses(censored: Topology) -> None:
    censored.censor.apply(actions.Blackhole((TELEGRAM,)))
    assert client.connect(censored.ns.client, TELEGRAM, 443, timeout=1).result == "timeout"
    assert client.connect(censored.ns.client, WIKIPEDIA, 443, timeout=1).result == "ok"


def test_one_port_blocked(censored: Topology) -> None:
    censored.censor.apply(actions.Blackhole(("157.240.9.60",), ports=(5222,)))
    assert client.connect(censored.ns.client, "157.240.9.60", 5222, timeout=1).result == "timeout"
    assert client.connect(censored.ns.client, "157.240.9.60", 443).result == "ok"


def test_refuse_answers_the_syn_with_a_reset(censored: Topology) -> None:
    censored.censor.apply(actions.Refuse((TELEGRAM,)))
    assert client.connect(censored.ns.client, TELEGRAM, 443).result == "refused"


def test_reset_by_address_lets_the_connection_open_then_resets_it(censored: Topology) -> None:
    censored.censor.apply(actions.ResetByAddress((TELEGRAM,)))
    assert client.connect(censored.ns.client, TELEGRAM, 443).result == "ok"
    handshake = client.tls_handshake(censored.ns.client, TELEGRAM, CONTROL_SNI, censored.ca_file)
    assert handshake.result == "reset", handshake


def test_icmp_unreachable(censored: Topology) -> None:
    censored.censor.apply(actions.Unreachable((TELEGRAM,)))
    outcome = client.connect(censored.ns.client, TELEGRAM, 443)
    assert outcome.result == "unreachable", outcome


@pytest.mark.parametrize(("how", "result"), [("reset", "reset"), ("drop", "timeout")])
def test_sni_filter_kills_only_that_server_name(censored: Topology, how: str, result: str) -> None:
    censored.censor.apply(actions.SNIFilter((TELEGRAM_NAME,), how))  # type: ignore[arg-type]
    ns, ca = censored.ns.client, censored.ca_file
    blocked = client.tls_handshake(ns, TELEGRAM, TELEGRAM_NAME, ca, timeout=1.5)
    assert blocked.result == result, blocked
    assert client.tls_handshake(ns, TELEGRAM, CONTROL_SNI, ca).result == "ok"


@pytest.mark.parametrize(
    ("kind", "addresses", "rcodes", "first"),
    [
        ("nxdomain", (), ("NXDOMAIN",), ()),
        ("servfail", (), ("SERVFAIL",), ()),
        ("refused", (), ("REFUSED",), ()),
        ("timeout", (), (), ()),
        ("answer", (plan.BOGON_ANSWER,), ("NOERROR",), (plan.BOGON_ANSWER,)),
    ],
)
def test_isp_resolver_overrides_a_censored_name(
    censored: Topology,
    kind: str,
    addresses: tuple[str, ...],
    rcodes: tuple[str, ...],
    first: tuple[str, ...],
) -> None:
    override = actions.DNSOverride(("telegram.org",), kind, addresses)  # type: ignore[arg-type]
    censored.censor.apply(override)
    ns = censored.ns.client
    censored_answer = client.dns_query(ns, plan.ISP_RESOLVER_IP, TELEGRAM_NAME, listen=1)
    assert (censored_answer.rcodes, censored_answer.first) == (rcodes, first)
    other = client.dns_query(ns, plan.ISP_RESOLVER_IP, "www.wikipedia.org", listen=0.5)
    assert other.first == (WIKIPEDIA,)
    censored.censor.clear(override)
    assert client.dns_query(ns, plan.ISP_RESOLVER_IP, TELEGRAM_NAME).first == (TELEGRAM,)


def test_on_path_injection_races_the_distant_resolver(censored: Topology) -> None:
    censored.censor.apply(actions.DNSInjection((TELEGRAM_NAME,)))
    ns = censored.ns.client
    result = client.dns_query(ns, plan.PUBLIC_RESOLVER_IP, TELEGRAM_NAME, listen=1, responses=3)
    assert result.answers == ((plan.INJECTED_ANSWER,), (TELEGRAM,))
    other = client.dns_query(ns, plan.PUBLIC_RESOLVER_IP, "www.wikipedia.org", 1, responses=3)
    assert other.answers == ((WIKIPEDIA,),)


def test_tls_interception_presents_the_rogue_ca(censored: Topology) -> None:
    censored.censor.apply(actions.TLSInterception((TELEGRAM,)))
    ns = censored.ns.client
    verified = client.tls_handshake(ns, TELEGRAM, TELEGRAM_NAME, censored.ca_file)
    assert verified.result == "cert", verified
    unverified = client.tls_handshake(ns, TELEGRAM, TELEGRAM_NAME, None)
    assert "Rogue" in unverified.detail


def test_http_blockpage_injection(censored: Topology) -> None:
    censored.censor.apply(actions.HTTPBlockpage((NEWS,)))
    page = client.http_get(censored.ns.client, NEWS, NEWS_NAME)
    assert "blocked by the decision of the authorities" in page.detail
    # TLS to the same address is untouched.
    assert (
        client.tls_handshake(censored.ns.client, NEWS, NEWS_NAME, censored.ca_file).result == "ok"
    )


def test_random_loss_drops_some_but_not_all(censored: Topology) -> None:
    censored.censor.apply(actions.Loss(0.4))
    answered = sum(
        bool(client.dns_query(censored.ns.client, plan.ISP_RESOLVER_IP, "x.com", 0.15).rcodes)
        for _ in range(30)
    )
    assert 0 < answered < 30


def test_shutdown_cuts_everything(censored: Topology) -> None:
    censored.censor.apply(actions.Shutdown())
    ns = censored.ns.client
    assert client.connect(ns, WIKIPEDIA, 443, timeout=1).result == "timeout"
    assert client.connect(ns, plan.CONTROL_RESOLVER_IP, 443, timeout=1).result == "timeout"


@pytest.fixture
def bulk_server(lab: Topology) -> Iterator[tuple[str, int]]:
    """A server in the internet namespace that sends 24 KiB to whoever connects."""
    listener = call_in(lab.ns.internet, lambda: socket.create_server((TELEGRAM, 9000)))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"x" * 24576)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield TELEGRAM, 9000
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(5)


def _download_seconds(namespace: str, address: str, port: int) -> float:
    def fetch() -> float:
        started = time.monotonic()
        with socket.create_connection((address, port), timeout=10) as sock:
            while sock.recv(65536):
                pass
        return time.monotonic() - started

    return call_in(namespace, fetch)


def test_throttle_slows_one_address(censored: Topology, bulk_server: tuple[str, int]) -> None:
    address, port = bulk_server
    assert _download_seconds(censored.ns.client, address, port) < 0.5
    censored.censor.apply(actions.Throttle((address,), rate="64kbit", burst="2k"))
    assert _download_seconds(censored.ns.client, address, port) > 1.5


def test_actions_are_cleared_one_by_one(censored: Topology) -> None:
    blackhole = actions.Blackhole((TELEGRAM,))
    censored.censor.apply(blackhole)
    censored.censor.apply(actions.Refuse((WIKIPEDIA,)))
    censored.censor.clear(blackhole)
    assert client.connect(censored.ns.client, TELEGRAM, 443).result == "ok"
    assert client.connect(censored.ns.client, WIKIPEDIA, 443).result == "refused"


def test_ca_file_is_the_lab_ca(lab: Topology) -> None:
    assert isinstance(lab.ca_file, Path)
    assert "BEGIN CERTIFICATE" in lab.ca_file.read_text()


def _connect_seconds(namespace: str, address: str, port: int) -> float:
    def connect() -> float:
        started = time.monotonic()
        socket.create_connection((address, port), timeout=5).close()
        return time.monotonic() - started

    return call_in(namespace, connect)


def test_a_delay_line_holds_what_comes_back_and_goes_with_its_rules(censored: Topology) -> None:
    censored.censor.apply(actions.Delay(0.3))
    ns = censored.ns.client
    assert _connect_seconds(ns, WIKIPEDIA, 443) >= 0.3  # the SYN-ACK waited on its way back
    assert client.tls_handshake(ns, WIKIPEDIA, CONTROL_SNI, censored.ca_file).result == "ok"
    censored.censor.clear_all()
    rules = run(["ip", "netns", "exec", censored.ns.router, "ip", "rule"]).stdout
    assert f"lookup {actions.DELAY_TABLE}" not in rules
    assert client.connect(ns, WIKIPEDIA, 443).result == "ok"
