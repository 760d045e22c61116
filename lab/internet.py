"""What the internet namespace serves: the ``collector.demo.servers`` config derived from the address plan.

One ``python -m collector.demo.servers`` process holds every server: the truthful far resolver, a distant
public resolver (the same answers, late), the DoH/DoT control resolver, each site's TLS, HTTP
and plain-TCP endpoints, the ISP's blockpage server and the MITM server with the rogue CA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lab import plan
from lab.plan import Plan, Site

CONTROL_SNIS: Final = ("example.com",)
"""Innocuous names the probe may send as a control SNI; every TLS site completes for them."""
BLOCKPAGE_NAMES: Final = ("blockpage.isp.lab",)


def servers_config(
    lab_plan: Plan, pki_dir: str, download_rates: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """``download_rates``: bytes a second at which a site's TLS servers serve downloads, by
    the site's address (a slow origin); every other site at full speed."""
    rates = download_rates or {}
    zone = lab_plan.zone()
    truthful = {name: {"action": "answer", "ips": list(ips)} for name, ips in zone.items()}
    late = plan.PUBLIC_RESOLVER_DELAY
    distant = {
        name: {"action": "delay", "seconds": late, "then": a} for name, a in truthful.items()
    }
    servers: list[dict[str, Any]] = [
        {"kind": "dns", "host": plan.FAR_RESOLVER_IP, "port": 53, "zone": "truthful"},
        {"kind": "dns", "host": plan.PUBLIC_RESOLVER_IP, "port": 53, "zone": "distant"},
        {
            "kind": "doh",
            "host": plan.CONTROL_RESOLVER_IP,
            "port": 443,
            "zone": "truthful",
            "names": [plan.CONTROL_RESOLVER_NAME],
        },
        {
            "kind": "dot",
            "host": plan.CONTROL_RESOLVER_IP,
            "port": 853,
            "zone": "truthful",
            "names": [plan.CONTROL_RESOLVER_NAME],
        },
        {"kind": "http", "host": plan.BLOCKPAGE_IP, "port": 80, "mode": "blockpage"},
        {"kind": "tls", "host": plan.BLOCKPAGE_IP, "port": 443, "default_names": BLOCKPAGE_NAMES},
        {"kind": "tls", "host": plan.MITM_IP, "port": 443, "default": "rogue"},
    ]
    for site in lab_plan.sites:
        servers.extend(site_servers(site, rates))
    return {
        "pki": pki_dir,
        "zones": {
            "truthful": {"default": "nxdomain", "names": truthful},
            "distant": {
                "default": {"action": "delay", "seconds": late, "then": "nxdomain"},
                "names": distant,
            },
        },
        "servers": servers,
    }


def site_servers(
    site: Site, download_rates: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """The same servers on the site's IPv4 address and, if it has one, its IPv6 address."""
    rates = download_rates or {}
    servers: list[dict[str, Any]] = []
    names = list(site.names) or [site.ip]
    for host in (site.ip, site.ip6) if site.ip6 else (site.ip,):
        for port in site.tls_ports:
            rules = {name: "complete" for name in (*site.names, *CONTROL_SNIS)}
            tls = {"kind": "tls", "host": host, "port": port, "default_names": names}
            tls["download_rate"] = rates.get(host, 0)
            servers.append(tls | {"rules": rules})
        for port in site.http_ports:
            servers.append({"kind": "http", "host": host, "port": port})
        for port in site.tcp_ports:
            servers.append({"kind": "tcp-accept", "host": host, "port": port})
    return servers
