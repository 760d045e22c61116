"""Scenarios as data: a censor's actions and the verdicts a probe should reach under them.

One TOML file per scenario in ``lab/scenarios/``::

    title = "DNS NXDOMAIN at the ISP resolver"
    resolver = "isp"                 # the client's resolver: isp (default) | public

    [[actions]]
    kind = "dns"                     # see ACTION_KEYS for every kind and its keys
    service = "telegram"             # expands to the service's names or addresses
                                     # (packet actions: family = "ipv4" | "ipv6" | "both")
    answer = "nxdomain"

    [expect]
    default = { verdict = "ok" }     # every service not named
    telegram = { verdict = "blocked", methods = ["dns.nxdomain"] }

An expectation holds when the probe's verdict is the one named (or one of a list named,
`verdict = ["ok", "anomaly"]`) and every method named is
among the probe's methods (it may name more: a censor's action can show in several steps).
A ``[path]`` table puts the censor one or two hops from the client and names the hop the
probe must report per service (``lab.hops``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast, get_args

from lab import censor, plan
from lab.censor import Action
from lab.hops import PathOptions, read_path
from lab.plan import Plan
from lab.resolver import OverrideKind
from lab.topology import RESOLVERS, ClientResolver
from probe.model import METHODS, VERDICTS

SCENARIO_DIR: Final = Path(__file__).parent / "scenarios"
TARGETS_FILE: Final = Path(__file__).parent / "targets.toml"
_TARGET = frozenset({"service", "names", "addresses"})
ACTION_KEYS: Final[dict[str, frozenset[str]]] = {
    "dns": _TARGET | {"answer"},
    "inject": _TARGET | {"address", "ip_ttl"},
    "foreign-ttl": frozenset({"ttl"}),
    "blackhole": _TARGET | {"ports", "family"},
    "refuse": _TARGET | {"ports", "family"},
    "reset": _TARGET | {"ports", "family"},
    "unreachable": _TARGET | {"ports", "icmp", "family"},
    "sni": _TARGET | {"how", "ports", "residual", "family"},
    "tls-mitm": _TARGET,
    "http-blockpage": _TARGET,
    "throttle": _TARGET | {"rate", "burst", "by"},
    "link": frozenset({"rate", "burst"}),
    "slow-origin": _TARGET | {"rate"},
    "delay": frozenset({"seconds"}),
    "loss": frozenset({"probability"}),
    "shutdown": frozenset(),
}
DNS_ANSWERS: Final[dict[str, tuple[OverrideKind, tuple[str, ...]]]] = {
    "nxdomain": ("nxdomain", ()),
    "servfail": ("servfail", ()),
    "refused": ("refused", ()),
    "timeout": ("timeout", ()),
    "bogon": ("answer", (plan.BOGON_ANSWER,)),
    "hijack": ("answer", (plan.BLOCKPAGE_IP,)),
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; names the file and the key."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        super().__init__(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class Expectation:
    verdict: str  # one verdict, or several joined by "|": any of them is right
    methods: tuple[str, ...] = ()
    hop: str | None = None
    """The censoring hop the probe must report (a number, or ``none``); None: not checked."""

    def met_by(self, verdict: str | None, methods: tuple[str, ...], hop: str | None = None) -> bool:
        right = verdict in self.verdict.split("|") and set(self.methods) <= set(methods)
        return right and (self.hop is None or hop == self.hop)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    resolver: ClientResolver
    actions: tuple[Action, ...]
    expect: Mapping[str, Expectation]
    default: Expectation | None
    path: Path
    services: tuple[str, ...]
    """Every service of the lab, each of which the probe should report on."""
    hops: PathOptions | None = None
    """The ``[path]`` table: a second router on the path (``lab.hops``); None: the plain lab."""

    def expectation(self, service: str) -> Expectation | None:
        """None for a service the scenario does not know (one the probe reported beyond it)."""
        return self.expect.get(service, self.default if service in self.services else None)


def scenario_files(directory: Path = SCENARIO_DIR) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def find(name_or_path: str, directory: Path = SCENARIO_DIR) -> Path:
    """A scenario by file name stem (``dns-nxdomain``) or by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = directory / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    known = ", ".join(p.stem for p in scenario_files(directory))
    raise ScenarioError(name_or_path, "scenario", f"no such scenario; known: {known}")


def load(path: Path, lab_plan: Plan) -> Scenario:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(path, "file", str(exc)) from exc
    return _Reader(path, lab_plan).scenario(document)


class _Reader:
    def __init__(self, path: Path, lab_plan: Plan) -> None:
        self.path = path
        self.plan = lab_plan

    def fail(self, where: str, problem: str) -> ScenarioError:
        return ScenarioError(self.path, where, problem)

    def scenario(self, document: dict[str, Any]) -> Scenario:
        unknown = set(document) - {"title", "description", "resolver", "actions", "expect", "path"}
        if unknown:
            raise self.fail(sorted(unknown)[0], "unknown key")
        title = document.get("title")
        if not isinstance(title, str) or not title:
            raise self.fail("title", "a scenario needs a title")
        resolver = document.get("resolver", "isp")
        if resolver not in RESOLVERS:
            raise self.fail("resolver", f"expected one of {', '.join(RESOLVERS)}")
        raw_actions = document.get("actions", [])
        if not isinstance(raw_actions, list):
            raise self.fail("actions", "must be an array of tables ([[actions]])")
        actions = tuple(self.action(raw, i) for i, raw in enumerate(raw_actions))
        expect, default = self.expectations(document.get("expect"))
        name = self.path.stem
        services = self.plan.services
        hops = None
        if "path" in document:
            try:
                hops = read_path(document["path"], services)
            except ValueError as exc:
                raise self.fail("path", str(exc)) from exc
            for service, hop in hops.located.items():
                known = expect.get(service, default)
                if known is None:
                    raise self.fail(f"path.located.{service}", "needs an expectation")
                expect[service] = Expectation(known.verdict, known.methods, hop)
        return Scenario(name, title, resolver, actions, expect, default, self.path, services, hops)

    def expectations(self, raw: Any) -> tuple[dict[str, Expectation], Expectation | None]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail("expect", "a scenario needs an [expect] table")
        services = set(self.plan.services)
        expect: dict[str, Expectation] = {}
        for service, spec in raw.items():
            if service != "default" and service not in services:
                raise self.fail(f"expect.{service}", "no such service in the lab")
            expect[service] = self.expectation(spec, f"expect.{service}")
        default = expect.pop("default", None)
        missing = services - set(expect)
        if default is None and missing:
            raise self.fail("expect", f"no expectation for {', '.join(sorted(missing))}")
        return expect, default

    def expectation(self, raw: Any, where: str) -> Expectation:
        if not isinstance(raw, dict) or set(raw) - {"verdict", "methods"}:
            raise self.fail(where, "expected { verdict = ..., methods = [...] }")
        given = raw.get("verdict")
        chosen: list[Any] = given if isinstance(given, list) and given else [given]
        if any(v not in VERDICTS for v in chosen):
            raise self.fail(f"{where}.verdict", f"expected one of {', '.join(VERDICTS)}")
        verdict = "|".join(str(v) for v in chosen)
        methods = raw.get("methods", [])
        if not isinstance(methods, list) or any(m not in METHODS for m in methods):
            raise self.fail(f"{where}.methods", f"methods must be among {', '.join(METHODS)}")
        return Expectation(verdict, tuple(methods))

    def action(self, raw: Any, i: int) -> Action:
        where = f"actions[{i}]"
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a table")
        kind = raw.get("kind")
        if kind not in ACTION_KEYS:
            raise self.fail(f"{where}.kind", f"expected one of {', '.join(ACTION_KEYS)}")
        unknown = set(raw) - ACTION_KEYS[kind] - {"kind"}
        if unknown:
            raise self.fail(f"{where}.{sorted(unknown)[0]}", f"not a key of a {kind} action")
        try:
            return _BUILDERS[kind](self, raw, where)
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            raise self.fail(where, str(exc)) from exc

    # Targets: a service expands to its names or addresses; or name them directly.
    def names(self, raw: dict[str, Any], where: str) -> tuple[str, ...]:
        if "service" in raw:
            return self.plan.service_names(raw["service"])
        return self.strings(raw, "names", where)

    def addresses(
        self, raw: dict[str, Any], where: str, port: int | None = None
    ) -> tuple[str, ...]:
        if "service" in raw:
            sites = self.plan.service_sites(raw["service"])
            if port is not None:
                # Redirections (interception, block pages) are IPv4 DNAT rules.
                sites = tuple(s for s in sites if port in (*s.tls_ports, *s.http_ports))
                return tuple(site.ip for site in sites)
            family = self.family(raw, where)
            found = [s.ip for s in sites if family != "ipv6"]
            found += [s.ip6 for s in sites if s.ip6 and family != "ipv4"]
            return tuple(found)
        return self.strings(raw, "addresses", where)

    def family(self, raw: dict[str, Any], where: str) -> censor.IPFamily:
        """Which address family an action censors: ``ipv4``, ``ipv6`` or ``both`` (default)."""
        value = raw.get("family", "both")
        if value not in get_args(censor.IPFamily):
            raise self.fail(f"{where}.family", "expected ipv4, ipv6 or both")
        return cast(censor.IPFamily, value)

    def strings(self, raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = raw.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "needs `service` or a non-empty list of strings")
        return tuple(value)

    def ports(
        self, raw: dict[str, Any], where: str, default: tuple[int, ...] = ()
    ) -> tuple[int, ...]:
        value = raw.get("ports", list(default))
        if not isinstance(value, list) or not all(isinstance(p, int) for p in value):
            raise self.fail(f"{where}.ports", "must be a list of port numbers")
        return tuple(value)


def _dns(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    answer = raw.get("answer")
    if answer not in DNS_ANSWERS:
        raise reader.fail(f"{where}.answer", f"expected one of {', '.join(DNS_ANSWERS)}")
    kind, addresses = DNS_ANSWERS[answer]
    return censor.DNSOverride(reader.names(raw, where), kind, addresses)


def _inject(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    address = raw.get("address", plan.INJECTED_ANSWER)
    ip_ttl = raw.get("ip_ttl", 64)
    if not isinstance(ip_ttl, int) or not 1 <= ip_ttl <= 255:
        raise reader.fail(f"{where}.ip_ttl", "an IP TTL is an integer 1-255")
    return censor.DNSInjection(reader.names(raw, where), str(address), ip_ttl=ip_ttl)


def _foreign_ttl(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    ttl = raw.get("ttl", 200)
    if not isinstance(ttl, int):
        raise reader.fail(f"{where}.ttl", "a TTL is an integer 1-255")
    return censor.ForeignTTL(ttl)


def _unreachable(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    icmp = raw.get("icmp", "admin-prohibited")
    if icmp not in get_args(censor.IcmpType):
        raise reader.fail(
            f"{where}.icmp", f"expected one of {', '.join(get_args(censor.IcmpType))}"
        )
    addresses = reader.addresses(raw, where)
    return censor.Unreachable(addresses, reader.ports(raw, where), cast(censor.IcmpType, icmp))


def _sni(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    how = raw.get("how", "reset")
    if how not in ("reset", "drop"):
        raise reader.fail(f"{where}.how", "expected reset or drop")
    ports = reader.ports(raw, where, (443,))
    residual = raw.get("residual", 0)
    if not isinstance(residual, int) or isinstance(residual, bool) or not 0 <= residual <= 600:
        raise reader.fail(f"{where}.residual", "seconds from 0 to 600")
    return censor.SNIFilter(
        reader.names(raw, where), how, ports, residual, reader.family(raw, where)
    )


def _loss(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    probability = raw.get("probability")
    if not isinstance(probability, float | int):
        raise reader.fail(f"{where}.probability", "needs a number between 0 and 1")
    return censor.Loss(float(probability))


def _throttle(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    """``by = "address"`` (default): everything to and from the addresses; ``by = "name"``:
    the connections whose ClientHello names the service (a policer keyed on the SNI)."""
    rate, burst = str(raw.get("rate", "64kbit")), str(raw.get("burst", "4k"))
    by = raw.get("by", "address")
    if by == "address":
        return censor.Throttle(reader.addresses(raw, where), rate, burst)
    if by == "name":
        mark = 0x100 + int(where.strip("actions[]") or 0)  # classes 1:10… are by address
        return censor.Throttle((), rate, burst, names=reader.names(raw, where), mark=mark)
    raise reader.fail(f"{where}.by", "expected address or name")


def _link(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    """The whole home link capped (for loss on it, add a ``loss`` action)."""
    rate, burst = str(raw.get("rate", "10gbit")), str(raw.get("burst", "64k"))
    return censor.Throttle((), rate, burst, everything=True)


def _slow_origin(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    """Not the censor: the service's own servers send slowly, to everyone (a trap)."""
    found = re.fullmatch(r"([1-9][0-9]*)(bit|kbit|mbit)", str(raw.get("rate", "128kbit")))
    if found is None:
        raise reader.fail(f"{where}.rate", "a rate such as 128kbit or 2mbit")
    bits = int(found[1]) * _RATE_UNITS[found[2]]
    return censor.SlowOrigin(reader.addresses(raw, where), bits // 8)


def _delay(reader: _Reader, raw: dict[str, Any], where: str) -> Action:
    """Not the censor: a long link, every packet towards the home LAN held this long."""
    seconds = raw.get("seconds")
    if not isinstance(seconds, float | int) or isinstance(seconds, bool) or not 0 < seconds <= 2:
        raise reader.fail(f"{where}.seconds", "seconds, more than 0 and at most 2")
    return censor.Delay(float(seconds))


_RATE_UNITS: Final = {"bit": 1, "kbit": 1000, "mbit": 1_000_000}


_Builder = Callable[[_Reader, dict[str, Any], str], Action]
_BUILDERS: Final[dict[str, _Builder]] = {
    "dns": _dns,
    "inject": _inject,
    "foreign-ttl": _foreign_ttl,
    "blackhole": lambda r, raw, w: censor.Blackhole(r.addresses(raw, w), r.ports(raw, w)),
    "refuse": lambda r, raw, w: censor.Refuse(r.addresses(raw, w), r.ports(raw, w)),
    "reset": lambda r, raw, w: censor.ResetByAddress(r.addresses(raw, w), r.ports(raw, w)),
    "unreachable": _unreachable,
    "sni": _sni,
    "tls-mitm": lambda r, raw, w: censor.TLSInterception(r.addresses(raw, w, 443)),
    "http-blockpage": lambda r, raw, w: censor.HTTPBlockpage(r.addresses(raw, w, 80)),
    "throttle": _throttle,
    "link": _link,
    "slow-origin": _slow_origin,
    "delay": _delay,
    "loss": _loss,
    "shutdown": lambda r, raw, w: censor.Shutdown(),
}
