"""The lab's address plan: which namespace holds which address, and what each address serves.

The internet side uses public-looking addresses (assigned inside the lab's namespaces only,
never reachable from or routed to the host), so that a probe's bogon check means something.
The client sits on a private home LAN behind the router, like a volunteer at home. The names
are the real services' names: inside the client namespace they resolve through the lab's
resolvers only, so nothing ever leaves the machine.

Every host name and fixed address in ``lab/targets.toml`` must be served here; a test checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Site:
    """One address in the internet namespace and what listens on it."""

    ip: str
    names: tuple[str, ...] = ()
    tls_ports: tuple[int, ...] = (443,)
    tcp_ports: tuple[int, ...] = ()
    """Plain TCP (a messenger's own protocol): accept, read, answer."""
    http_ports: tuple[int, ...] = ()
    service: str | None = None
    """The target-list service this address belongs to; None for lab infrastructure."""
    in_dns: bool = True
    """False for fixed addresses the apps use without DNS: names only for the certificate."""
    ip6: str | None = None
    """The site's IPv6 address (AAAA), serving the same ports, or None for IPv4 only."""


@dataclass(frozen=True)
class Link:
    """A veth pair: one end in each namespace, each end with its address and prefix length."""

    left_ns: str
    left_if: str
    left_ip: str
    right_ns: str
    right_if: str
    right_ip: str
    prefix: int
    left_ip6: str | None = None
    right_ip6: str | None = None
    prefix6: int = 64


@dataclass(frozen=True)
class Namespaces:
    client: str
    router: str
    internet: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Namespaces:
        return cls(f"{prefix}client", f"{prefix}router", f"{prefix}internet")

    def all(self) -> tuple[str, str, str]:
        return (self.client, self.router, self.internet)


# Interface names, short enough for the kernel's 15 characters and the same in every lab.
CLIENT_IF: Final = "eth0"
ROUTER_LAN_IF: Final = "lan0"
ROUTER_UP_IF: Final = "up0"
INTERNET_IF: Final = "eth0"

HOME_LAN: Final = "192.168.77.0/24"
CLIENT_IP: Final = "192.168.77.10"
ROUTER_LAN_IP: Final = "192.168.77.1"
TRANSIT_PREFIX: Final = 30
ROUTER_UP_IP: Final = "95.56.255.1"
INTERNET_UP_IP: Final = "95.56.255.2"

# IPv6: the ISP delegates a global /64 to the home (as most IPv6 ISPs do), so the client's
# IPv6 address is public, unlike its IPv4 one behind the home router's NAT-like LAN.
HOME_LAN6: Final = "2a02:4e0:77::/64"
CLIENT_IP6: Final = "2a02:4e0:77::10"
ROUTER_LAN_IP6: Final = "2a02:4e0:77::1"
TRANSIT_PREFIX6: Final = 126
ROUTER_UP_IP6: Final = "2a02:4e0:ffff::1"
INTERNET_UP_IP6: Final = "2a02:4e0:ffff::2"

ISP_RESOLVER_IP: Final = "95.56.0.53"
"""The ISP's resolver, on the router's loopback: what the client's resolv.conf names."""

FAR_RESOLVER_IP: Final = "9.9.9.9"
"""The truthful resolver, authoritative for every lab name; the ISP resolver forwards to it."""
PUBLIC_RESOLVER_IP: Final = "8.8.8.8"
"""A public resolver a user may pick instead of the ISP's: a relay to the far resolver that
answers after a delay, standing in for distance, so that an on-path injector wins the race."""
PUBLIC_RESOLVER_DELAY: Final = 0.15
CONTROL_RESOLVER_IP: Final = "1.1.1.1"
"""The trusted control resolver: DoH on 443 (``/dns-query``) and DoT on 853."""
CONTROL_RESOLVER_NAME: Final = "cloudflare-dns.com"
BLOCKPAGE_IP: Final = "95.56.0.80"
MITM_IP: Final = "95.56.0.66"
BOGON_ANSWER: Final = "10.10.34.35"
INJECTED_ANSWER: Final = "46.82.174.68"
"""Public-looking and wrong: what an on-path injector answers by default (a GFW classic)."""
ISP_ASN: Final = 9198


@dataclass(frozen=True)
class Plan:
    namespaces: Namespaces
    sites: tuple[Site, ...] = field(default=())

    @property
    def links(self) -> tuple[Link, Link]:
        ns = self.namespaces
        home = Link(
            ns.client,
            CLIENT_IF,
            CLIENT_IP,
            ns.router,
            ROUTER_LAN_IF,
            ROUTER_LAN_IP,
            24,
            CLIENT_IP6,
            ROUTER_LAN_IP6,
        )
        transit = Link(
            ns.router,
            ROUTER_UP_IF,
            ROUTER_UP_IP,
            ns.internet,
            INTERNET_IF,
            INTERNET_UP_IP,
            TRANSIT_PREFIX,
            ROUTER_UP_IP6,
            INTERNET_UP_IP6,
            TRANSIT_PREFIX6,
        )
        return home, transit

    @property
    def internet_addresses(self) -> tuple[str, ...]:
        """Every address the internet namespace holds besides its transit address."""
        infra = (FAR_RESOLVER_IP, PUBLIC_RESOLVER_IP, CONTROL_RESOLVER_IP, BLOCKPAGE_IP, MITM_IP)
        return infra + tuple(site.ip for site in self.sites)

    @property
    def internet_addresses6(self) -> tuple[str, ...]:
        return tuple(site.ip6 for site in self.sites if site.ip6)

    def zone(self) -> dict[str, tuple[str, ...]]:
        """Name -> addresses: what the truthful resolver answers."""
        records: dict[str, list[str]] = {
            CONTROL_RESOLVER_NAME: [CONTROL_RESOLVER_IP],
            "dns.google": [PUBLIC_RESOLVER_IP],
        }
        for site in self.sites:
            for name in site.names if site.in_dns else ():
                records.setdefault(name, []).append(site.ip)
                if site.ip6:
                    records[name].append(site.ip6)
        return {name: tuple(ips) for name, ips in records.items()}

    def service_sites(self, service: str) -> tuple[Site, ...]:
        found = tuple(site for site in self.sites if site.service == service)
        if not found:
            known = sorted({s.service for s in self.sites if s.service})
            raise KeyError(f"no lab service {service!r}; known: {', '.join(known)}")
        return found

    def service_addresses(self, service: str) -> tuple[str, ...]:
        return tuple(site.ip for site in self.service_sites(service))

    def service_addresses6(self, service: str) -> tuple[str, ...]:
        return tuple(site.ip6 for site in self.service_sites(service) if site.ip6)

    def service_names(self, service: str) -> tuple[str, ...]:
        names: list[str] = []
        for site in self.service_sites(service):
            names.extend(n for n in site.names if n not in names)
        return tuple(names)

    @property
    def services(self) -> tuple[str, ...]:
        seen: list[str] = []
        for site in self.sites:
            if site.service and site.service not in seen:
                seen.append(site.service)
        return tuple(seen)


SITES: Final = (
    Site(
        "149.154.167.99",
        ("web.telegram.org", "telegram.org"),
        service="telegram",
        ip6="2001:67c:4e8:f004::9",
    ),
    # Telegram's data centres: fixed addresses, no DNS. One speaks TLS, one a plain protocol.
    Site("149.154.167.51", ("web.telegram.org",), service="telegram", in_dns=False),
    Site("149.154.175.50", (), tls_ports=(), tcp_ports=(443,), service="telegram"),
    Site(
        "157.240.9.53",
        ("web.whatsapp.com",),
        service="whatsapp",
        ip6="2a03:2880:f20c:e0:face:b00c:0:167",
    ),
    Site("157.240.9.60", ("g.whatsapp.net",), tcp_ports=(5222,), service="whatsapp"),
    Site("13.248.212.111", ("chat.signal.org",), service="signal"),
    Site("157.240.9.174", ("www.instagram.com",), service="instagram"),
    Site("142.250.74.46", ("www.youtube.com",), service="youtube", ip6="2a00:1450:4001:82b::200e"),
    Site("104.244.42.65", ("x.com",), service="x"),
    Site("104.18.30.10", ("www.azattyq.org",), http_ports=(80,), service="news"),
    Site("185.15.59.224", ("www.wikipedia.org",), http_ports=(80,), service="control-wikipedia"),
    Site(
        "93.184.215.14",
        ("example.com", "www.example.com"),
        service="control-example",
        ip6="2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ),
)


def default_plan(prefix: str = "cwlab-") -> Plan:
    return Plan(Namespaces.with_prefix(prefix), SITES)
