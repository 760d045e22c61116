"""A path with more than one router, so that the censor sits one or two hops from the client.

Scenarios that locate the censor say where it sits in a ``[path]`` table::

    [path]
    censor_hop = 2          # 1: the censoring router is the client's first hop
                            # 2: behind a home router (a private hop the probe must withhold)
    time_exceeded = false   # every router drops its ICMP time-exceeded (default: true)

    [path.located]
    x = 2                   # the hop the probe must report for the service, or "none"

::

    censor_hop = 1:  client ── router (censor, answers from 95.56.0.1) ── transit ── internet
    censor_hop = 2:  client ── home (192.168.77.1) ── router (censor, 95.56.253.1) ── internet

Either way the client's gateway address and the router's interface names are those of the
plain lab, so every censor action works unchanged; only scenarios with a ``[path]`` table
get this topology. Routers here do not rate-limit ICMP (the kernel's default of one error
a second per peer would make a repeatable test a lottery); a real path's rate limits are
what the probe's one resend of a silent hop is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lab import plan
from lab.plan import Link
from lab.shell import run, run_in
from lab.topology import DEFAULT_PREFIX, Topology

NOT_LOCATED: Final = "none"

ROUTER_LOOPBACK: Final = "95.56.0.1"
ROUTER_LOOPBACK6: Final = "2a02:4e0:ff00::1"
TRANSIT_IN_IF: Final = "tr0"
TRANSIT_OUT_IF: Final = "tr1"
FAR_TRANSIT_IP: Final = "95.56.254.1"
FAR_INTERNET_IP: Final = "95.56.254.2"
FAR_TRANSIT_IP6: Final = "2a02:4e0:fffe::1"
FAR_INTERNET_IP6: Final = "2a02:4e0:fffe::2"
HOME_UP_IP: Final = "95.56.253.2"
ROUTER_ACCESS_IP: Final = "95.56.253.1"
HOME_UP_IP6: Final = "2a02:4e0:fffd::2"
ROUTER_ACCESS_IP6: Final = "2a02:4e0:fffd::1"


@dataclass(frozen=True)
class PathOptions:
    censor_hop: int = 1
    time_exceeded: bool = True
    located: Mapping[str, str] = field(default_factory=dict)
    """Service -> the hop the probe must report (``"1"``, ``"2"``) or ``"none"``."""


def read_path(raw: Any, services: tuple[str, ...]) -> PathOptions:
    """A scenario's ``[path]`` table; raises ValueError naming the key."""
    if not isinstance(raw, dict) or set(raw) - {"censor_hop", "time_exceeded", "located"}:
        raise ValueError("path: expected censor_hop, time_exceeded and located")
    hop = raw.get("censor_hop", 1)
    if hop not in (1, 2) or isinstance(hop, bool):
        raise ValueError("path.censor_hop: 1 or 2")
    time_exceeded = raw.get("time_exceeded", True)
    if not isinstance(time_exceeded, bool):
        raise ValueError("path.time_exceeded: true or false")
    located = raw.get("located", {})
    if not isinstance(located, dict):
        raise ValueError("path.located: a table of service = hop")
    expected: dict[str, str] = {}
    for service, value in located.items():
        if service not in services:
            raise ValueError(f"path.located.{service}: no such service in the lab")
        if value != NOT_LOCATED and (not isinstance(value, int) or not 1 <= value <= 20):
            raise ValueError(f"path.located.{service}: a hop 1-20 or {NOT_LOCATED!r}")
        expected[service] = str(value)
    return PathOptions(hop, time_exceeded, expected)


def reported_hop(endpoints: Any) -> str | None:
    """What a service's endpoints in the probe's report say: the located hop, ``"none"``
    when traced and not located, None when nothing was traced."""
    found: str | None = None
    for endpoint in endpoints if isinstance(endpoints, list) else []:
        location = endpoint.get("location") if isinstance(endpoint, dict) else None
        if not isinstance(location, dict):
            continue
        if location.get("hop") is not None:
            return str(location["hop"])
        found = NOT_LOCATED
    return found


class HopTopology(Topology):
    """The lab with a second router on the path (see the module docstring)."""

    def __init__(
        self, prefix: str = DEFAULT_PREFIX, options: PathOptions | None = None, **kwargs: Any
    ) -> None:
        super().__init__(prefix, **kwargs)
        self.options = options or PathOptions()
        self.transit = f"{prefix}transit"

    def links(self) -> tuple[Link, ...]:
        home, upstream = self.plan.links
        ns, transit = self.ns, self.transit
        if self.options.censor_hop == 1:
            router_up = Link(
                ns.router,
                plan.ROUTER_UP_IF,
                plan.ROUTER_UP_IP,
                transit,
                TRANSIT_IN_IF,
                plan.INTERNET_UP_IP,
                plan.TRANSIT_PREFIX,
                plan.ROUTER_UP_IP6,
                plan.INTERNET_UP_IP6,
                plan.TRANSIT_PREFIX6,
            )
            onward = Link(
                transit,
                TRANSIT_OUT_IF,
                FAR_TRANSIT_IP,
                ns.internet,
                plan.INTERNET_IF,
                FAR_INTERNET_IP,
                plan.TRANSIT_PREFIX,
                FAR_TRANSIT_IP6,
                FAR_INTERNET_IP6,
                plan.TRANSIT_PREFIX6,
            )
            return home, router_up, onward
        lan = Link(
            ns.client,
            plan.CLIENT_IF,
            plan.CLIENT_IP,
            transit,
            TRANSIT_IN_IF,
            plan.ROUTER_LAN_IP,
            24,
            plan.CLIENT_IP6,
            plan.ROUTER_LAN_IP6,
        )
        access = Link(
            transit,
            TRANSIT_OUT_IF,
            HOME_UP_IP,
            ns.router,
            plan.ROUTER_LAN_IF,
            ROUTER_ACCESS_IP,
            plan.TRANSIT_PREFIX,
            HOME_UP_IP6,
            ROUTER_ACCESS_IP6,
            plan.TRANSIT_PREFIX6,
        )
        return lan, access, upstream

    def _create_namespaces(self) -> None:
        super()._create_namespaces()
        run(["ip", "netns", "add", self.transit])
        run_in(self.transit, ["ip", "link", "set", "lo", "up"])
        for setting in (
            "net.ipv6.conf.all.disable_ipv6=0",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ):
            run_in(self.transit, ["sysctl", "-qw", setting])
        for router in self.routers():
            run_in(router, ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
            run_in(router, ["sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"])

    def routers(self) -> tuple[str, str]:
        return (self.ns.router, self.transit)

    def _route(self) -> None:
        ns, transit = self.ns, self.transit
        for address in self.plan.internet_addresses:
            run_in(ns.internet, ["ip", "addr", "add", f"{address}/32", "dev", plan.INTERNET_IF])
        for address6 in self.plan.internet_addresses6:
            _ip6(ns.internet, "addr", "add", f"{address6}/128", "dev", plan.INTERNET_IF, "nodad")
        run_in(ns.router, ["ip", "addr", "add", f"{plan.ISP_RESOLVER_IP}/32", "dev", "lo"])
        routes: list[tuple[str, str, str]] = [
            (ns.client, "default", plan.ROUTER_LAN_IP),
            (ns.router, "default", plan.INTERNET_UP_IP),
        ]
        routes6: list[tuple[str, str, str]] = [
            (ns.client, "default", plan.ROUTER_LAN_IP6),
            (ns.router, "default", plan.INTERNET_UP_IP6),
        ]
        if self.options.censor_hop == 1:
            routes += [
                (transit, "default", FAR_INTERNET_IP),
                (transit, plan.HOME_LAN, plan.ROUTER_UP_IP),
                (ns.internet, "default", FAR_TRANSIT_IP),
            ]
            routes6 += [
                (transit, "default", FAR_INTERNET_IP6),
                (transit, plan.HOME_LAN6, plan.ROUTER_UP_IP6),
                (ns.internet, "default", FAR_TRANSIT_IP6),
            ]
        else:
            routes += [
                (transit, "default", ROUTER_ACCESS_IP),
                (ns.router, plan.HOME_LAN, HOME_UP_IP),
                (ns.internet, "default", plan.ROUTER_UP_IP),
            ]
            routes6 += [
                (transit, "default", ROUTER_ACCESS_IP6),
                (ns.router, plan.HOME_LAN6, HOME_UP_IP6),
                (ns.internet, "default", plan.ROUTER_UP_IP6),
            ]
        for namespace, destination, gateway in routes:
            run_in(namespace, ["ip", "route", "add", destination, "via", gateway])
        for namespace, destination, gateway in routes6:
            _ip6(namespace, "route", "add", destination, "via", gateway)
        if self.options.censor_hop == 1:
            self._answer_from_public_addresses()
        if not self.options.time_exceeded:
            self._filter_time_exceeded()

    def _answer_from_public_addresses(self) -> None:
        """The censoring router is the client's first hop: it answers the home LAN from
        its public loopback, as an ISP's access router does, not from the LAN gateway."""
        router = self.ns.router
        run_in(router, ["ip", "addr", "add", f"{ROUTER_LOOPBACK}/32", "dev", "lo"])
        _ip6(router, "addr", "add", f"{ROUTER_LOOPBACK6}/128", "dev", "lo", "nodad")
        replace = ["ip", "route", "replace", plan.HOME_LAN, "dev", plan.ROUTER_LAN_IF]
        run_in(router, [*replace, "src", ROUTER_LOOPBACK])
        _ip6(
            router, "route", "replace", plan.HOME_LAN6, "dev", plan.ROUTER_LAN_IF,
            "src", ROUTER_LOOPBACK6,
        )  # fmt: skip

    def _filter_time_exceeded(self) -> None:
        for router in self.routers():
            drop = ["-A", "OUTPUT", "-p"]
            run_in(
                router, ["iptables", *drop, "icmp", "--icmp-type", "time-exceeded", "-j", "DROP"]
            )
            run_in(
                router,
                ["ip6tables", *drop, "icmpv6", "--icmpv6-type", "time-exceeded", "-j", "DROP"],
            )


def _ip6(namespace: str, *args: str) -> None:
    run_in(namespace, ["ip", "-6", *args])


def topology_for(prefix: str, options: PathOptions | None) -> Topology:
    """The plain lab, or the lab with a second router where the scenario says so."""
    return Topology(prefix) if options is None else HopTopology(prefix, options)
