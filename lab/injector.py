"""An on-path DNS injector, as the Great Firewall runs one: it races the real answer.

Run in the router namespace as ``python -m lab.injector --iface lan0 --name
web.telegram.org=46.82.174.68 …``. It sniffs DNS queries passing through the router on the
client-side interface and, for a censored name (or a subdomain of one), sends the client a
forged answer at once, from the queried resolver's address. The query itself goes on, so the
real answer arrives too, later: a client that listens on sees two responses to one query.

It never touches a query to the router's own addresses (the ISP resolver answers those).
Filtering uses a BPF filter when libpcap is there, else it is done in Python.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Mapping
from typing import Any, Final

INJECTED_TTL: Final = 300
READY: Final = "sniffing"
"""Printed once the capture is open: the daemon's readiness signal."""


def parse_names(pairs: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for pair in pairs:
        name, sep, address = pair.partition("=")
        if not sep or not name or not address:
            raise ValueError(f"expected NAME=ADDRESS, got {pair!r}")
        names[name.rstrip(".").lower()] = address
    return names


def forged_address(names: Mapping[str, str], qname: str) -> str | None:
    labels = qname.rstrip(".").lower().split(".")
    for i in range(len(labels)):
        address = names.get(".".join(labels[i:]))
        if address is not None:
            return address
    return None


def run(iface: str, names: Mapping[str, str], local: set[str], ip_ttl: int = 64) -> None:
    # scapy is imported here: it is slow to import and only this process needs it.
    from scapy.all import (  # type: ignore[attr-defined]
        DNS,
        DNSRR,
        IP,
        UDP,
        Ether,
        conf,
        get_if_hwaddr,
        sniff,
    )

    sender = conf.L2socket(iface=iface)
    own_mac = get_if_hwaddr(iface)

    def handle(packet: Any) -> None:
        if not (packet.haslayer(UDP) and packet.haslayer(DNS) and packet.haslayer(IP)):
            return
        ip, udp, dns = packet[IP], packet[UDP], packet[DNS]
        if udp.dport != 53 or dns.qr != 0 or dns.qd is None or ip.dst in local:
            return
        question = dns.qd[0] if isinstance(dns.qd, list) else dns.qd
        qname = question.qname.decode(errors="replace")
        address = forged_address(names, qname)
        if address is None or question.qtype != 1:
            return
        forged = (
            Ether(src=own_mac, dst=packet[Ether].src)
            / IP(src=ip.dst, dst=ip.src, ttl=ip_ttl)
            / UDP(sport=53, dport=udp.sport)
            / DNS(
                id=dns.id,
                qr=1,
                aa=0,
                rd=dns.rd,
                ra=1,
                qd=question,
                an=DNSRR(rrname=question.qname, type="A", ttl=INJECTED_TTL, rdata=address),
            )
        )
        sender.send(forged)
        print(f"injected {qname} -> {address} for {ip.src}:{udp.sport}", flush=True)

    def stop(signum: int, frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)

    def started() -> None:
        print(f"{READY} on {iface} for {', '.join(sorted(names))}", flush=True)

    try:
        sniff(
            iface=iface, filter="udp dst port 53", prn=handle, store=False, started_callback=started
        )
    except Exception as exc:  # no libpcap: scapy cannot compile BPF, so filter in Python
        print(f"BPF filter unavailable ({exc}); filtering in Python", flush=True)
        sniff(iface=iface, prn=handle, store=False, started_callback=started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.injector", description=__doc__)
    parser.add_argument("--iface", required=True)
    parser.add_argument("--name", action="append", default=[], metavar="NAME=ADDRESS")
    parser.add_argument("--local", action="append", default=[], help="the router's addresses")
    parser.add_argument("--ip-ttl", type=int, default=64, help="IP TTL of the forged answers")
    args = parser.parse_args(argv)
    run(args.iface, parse_names(args.name), set(args.local), args.ip_ttl)


if __name__ == "__main__":
    main()
