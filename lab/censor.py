"""The censor: actions applied in the router namespace, each a small dataclass.

Every action can be applied and cleared. Packet actions are iptables rules in the lab's own
chains (hooked from the built-in ones at setup, so clearing everything is a flush), written as
plain data first (``rules()``), so what an action does can be read and tested without root.
DNS actions change the ISP resolver's policy file; injection runs a scapy process; throttling
rebuilds the router's tc tree. One lever is not the censor's: a slow origin has the lab's
servers send slowly (a trap).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

from lab import plan
from lab.delay import READY as DELAY_READY
from lab.injector import READY as INJECTOR_READY
from lab.process import LabProcess, python_module
from lab.resolver import Override, OverrideKind, Policy, write_policy
from lab.shell import CommandError, run_in

Table = Literal["filter", "nat", "mangle"]
FORWARD: Final = "CWLAB-FORWARD"
INPUT: Final = "CWLAB-INPUT"
OUTPUT: Final = "CWLAB-OUTPUT"
PREROUTING: Final = "CWLAB-PREROUTING"
MARKING: Final = "CWLAB-MARK"
CLASSIFYING: Final = "CWLAB-CLASSIFY"
MANGLE_OUTPUT: Final = "CWLAB-MANGLE-OUT"
CHAINS: Final[tuple[tuple[Table, str, str], ...]] = (
    ("filter", FORWARD, "FORWARD"),
    ("filter", INPUT, "INPUT"),
    ("filter", OUTPUT, "OUTPUT"),
    ("nat", PREROUTING, "PREROUTING"),
    ("mangle", MARKING, "PREROUTING"),
    ("mangle", CLASSIFYING, "POSTROUTING"),
    ("mangle", MANGLE_OUTPUT, "OUTPUT"),
)
SHAPED_INTERFACES: Final = ((plan.ROUTER_LAN_IF, "src"), (plan.ROUTER_UP_IF, "dst"))
"""Where throttling happens: traffic to the client (from the service) and to the service."""
UNTHROTTLED_RATE: Final = "10gbit"
_MORE_THAN_HEADERS: Final = "61:65535"
"""IP packet lengths that must carry TCP payload: headers alone are at most 60 bytes."""


IPFamily = Literal["ipv4", "ipv6", "both"]


@dataclass(frozen=True)
class Rule:
    table: Table
    chain: str
    spec: tuple[str, ...]
    family: IPFamily = "both"
    """Which of iptables and ip6tables the rule goes into: an address decides, else both."""

    def commands(self) -> tuple[str, ...]:
        return {"ipv4": ("iptables",), "ipv6": ("ip6tables",)}.get(
            self.family, ("iptables", "ip6tables")
        )

    def spec_for(self, command: str) -> tuple[str, ...]:
        """ip6tables names ICMP rejections differently, and IPv6 headers are longer."""
        if command != "ip6tables":
            return self.spec
        return tuple(_ICMP6_REJECT.get(part, part) for part in self.spec)


_ICMP6_REJECT: Final = {
    _MORE_THAN_HEADERS: "101:65535",  # an IPv6 header is 40 bytes, TCP's at most 60
    "icmp-net-unreachable": "icmp6-no-route",
    "icmp-host-unreachable": "icmp6-addr-unreachable",
    "icmp-port-unreachable": "icmp6-port-unreachable",
    "icmp-net-prohibited": "icmp6-adm-prohibited",
    "icmp-host-prohibited": "icmp6-adm-prohibited",
    "icmp-admin-prohibited": "icmp6-adm-prohibited",
}


def family_of(address: str) -> IPFamily:
    return "ipv6" if ":" in address else "ipv4"


class Action(Protocol):
    def apply(self, censor: Censor) -> None: ...

    def clear(self, censor: Censor) -> None: ...


class Censor:
    """The censor's levers in one router namespace."""

    def __init__(self, namespace: str, state_dir: Path) -> None:
        self.namespace = namespace
        self.state_dir = state_dir
        self.policy_file = state_dir / "resolver-policy.json"
        self.applied: list[Action] = []
        self._overrides: Policy = {}
        self._throttles: list[Throttle] = []
        self._daemons: dict[int, LabProcess] = {}
        self.pace_origins: Callable[[Mapping[str, int]], None] | None = None
        """Set by a lab with servers: slow the origins at these addresses (``SlowOrigin``)."""
        self._origin_rates: dict[str, int] = {}

    # Setup and teardown -----------------------------------------------------------------
    def install(self) -> None:
        """Create the lab's chains and hook them in; start from an empty resolver policy."""
        for command in ("iptables", "ip6tables"):
            for table, chain, parent in CHAINS:
                self.iptables(table, "-N", chain, command=command)
                self.iptables(table, "-A", parent, "-j", chain, command=command)
        write_policy(self.policy_file, {})

    def apply(self, action: Action) -> None:
        action.apply(self)
        self.applied.append(action)

    def clear(self, action: Action) -> None:
        action.clear(self)
        self.applied.remove(action)

    def clear_all(self) -> None:
        """Undo every action, whatever state they left: flush, empty policy, stop, unshape."""
        self.applied.clear()
        for daemon in self._daemons.values():
            daemon.stop()
        self._daemons.clear()
        for command in ("iptables", "ip6tables"):
            for table, chain, _ in CHAINS:
                self.iptables(table, "-F", chain, command=command)
        self.forget_residual()
        self._overrides.clear()
        write_policy(self.policy_file, {})
        self._throttles.clear()
        self.reshape()
        self.forget_delay()
        if self._origin_rates:
            self.slow_origins({})

    # Levers used by actions ----------------------------------------------------------------
    def iptables(self, table: Table, *args: str, command: str = "iptables") -> None:
        run_in(self.namespace, [command, "-w", "-t", table, *args])

    def add_rules(self, rules: Sequence[Rule]) -> None:
        for rule in rules:
            for command in rule.commands():
                spec = rule.spec_for(command)
                self.iptables(rule.table, "-A", rule.chain, *spec, command=command)

    def delete_rules(self, rules: Sequence[Rule]) -> None:
        for rule in rules:
            for command in rule.commands():
                spec = rule.spec_for(command)
                self.iptables(rule.table, "-D", rule.chain, *spec, command=command)

    def forget_residual(self) -> None:
        """Empty the residual-censorship list: the kernel keeps it after its rules go, and
        the next scenario must not start with addresses still punished."""
        path = f"/proc/net/xt_recent/{RESIDUAL_LIST}"
        run_in(self.namespace, ["sh", "-c", f"if [ -e {path} ]; then echo / > {path}; fi"])

    def forget_delay(self) -> None:
        """Remove the delay's routing rules (its device goes with its process)."""
        for ip in (["ip"], ["ip", "-6"]):
            run_in(self.namespace, [*ip, "rule", "del", "pref", DELAY_TABLE], check=False)

    def override_names(self, names: Sequence[str], override: Override | None) -> None:
        for name in names:
            key = name.rstrip(".").lower()
            if override is None:
                self._overrides.pop(key, None)
            else:
                self._overrides[key] = override
        write_policy(self.policy_file, self._overrides)

    def start_daemon(self, owner: object, name: str, argv: list[str]) -> LabProcess:
        daemon = LabProcess(name, self.namespace, argv, self.state_dir / "logs")
        daemon.start()
        self._daemons[id(owner)] = daemon
        return daemon

    def stop_daemon(self, owner: object) -> None:
        daemon = self._daemons.pop(id(owner), None)
        if daemon is not None:
            daemon.stop()

    def slow_origins(self, download_rates: Mapping[str, int]) -> None:
        if self.pace_origins is None:
            raise RuntimeError("a slow origin needs the lab's servers")
        self.pace_origins(download_rates)
        self._origin_rates = dict(download_rates)

    @property
    def origin_rates(self) -> dict[str, int]:
        return dict(self._origin_rates)

    def add_throttle(self, throttle: Throttle) -> None:
        self._throttles.append(throttle)
        self.reshape()

    def remove_throttle(self, throttle: Throttle) -> None:
        self._throttles.remove(throttle)
        self.reshape()

    def reshape(self) -> None:
        """Rebuild the tc tree on the router's interfaces from the current throttles."""
        for device, direction in SHAPED_INTERFACES:
            self._tc_delete_root(device)
            if self._throttles:
                for command in shaping_commands(device, direction, self._throttles):
                    run_in(self.namespace, command)

    def _tc_delete_root(self, device: str) -> None:
        try:
            run_in(self.namespace, ["tc", "qdisc", "del", "dev", device, "root"])
        except CommandError as exc:
            # Deleting the default qdisc is an error we expect; anything else is not.
            if "No such file" not in exc.stderr and "Cannot delete qdisc" not in exc.stderr:
                raise


def shaping_commands(device: str, direction: str, throttles: Sequence[Throttle]) -> list[list[str]]:
    """tc commands for an htb tree: unshaped by default, one capped class per throttle."""
    tc = ["tc"]

    def htb_class(classid: str, *limits: str) -> list[str]:
        return [
            *tc,
            "class",
            "add",
            "dev",
            device,
            "parent",
            "1:",
            "classid",
            classid,
            "htb",
            *limits,
        ]

    commands = [
        [*tc, "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "1"],
        htb_class("1:1", "rate", UNTHROTTLED_RATE),
    ]
    for number, throttle in enumerate(throttles, start=16):
        classid = throttle.classid or f"1:{number:x}"
        rate, burst = throttle.rate, throttle.burst
        commands.append(htb_class(classid, "rate", rate, "ceil", rate, "burst", burst))
        # A short queue: a policer drops what exceeds its rate rather than hold seconds of it
        # (a deep queue would stall the next connection's handshake behind the last one's data,
        # and stretch the round trip so far that TCP recovers a drop only after seconds).
        queue = ["pfifo", "limit", str(throttle.queue)]
        commands.append([*tc, "qdisc", "add", "dev", device, "parent", classid, *queue])
        commands += [
            [*tc, "filter", "add", "dev", device, "parent", "1:", *match, "flowid", classid]
            for match in _classifiers(throttle, direction)
        ]
    return commands


# tc keeps one protocol per filter priority: IPv4 classifiers at one, IPv6 at the next.
_TC_FAMILY: Final = {"ipv4": ("ip", "1", "ip", "32"), "ipv6": ("ipv6", "2", "ip6", "128")}


def _classifiers(throttle: Throttle, direction: str) -> list[list[str]]:
    """u32 matches that put a throttle's packets in its class, for both address families:
    every packet of the link, or those to and from its addresses (a throttle keyed on a name
    needs none: CLASSIFY, in iptables and ip6tables alike, picks the class)."""
    found = []
    for family, (protocol, prio, selector, length) in _TC_FAMILY.items():
        head = ["protocol", protocol, "prio", prio, "u32"]
        if throttle.everything:
            found.append([*head, "match", "u32", "0", "0"])
        found += [
            [*head, "match", selector, direction, f"{address}/{length}"]
            for address in throttle.addresses
            if family_of(address) == family
        ]
    return found


# Packet actions ----------------------------------------------------------------------------
class _RuleAction:
    """An action that is a fixed set of iptables rules."""

    def rules(self) -> tuple[Rule, ...]:
        raise NotImplementedError

    def apply(self, censor: Censor) -> None:
        censor.add_rules(self.rules())

    def clear(self, censor: Censor) -> None:
        censor.delete_rules(self.rules())


def _destinations(
    addresses: Sequence[str], ports: Sequence[int], *, tcp: bool = False
) -> list[tuple[IPFamily, tuple[str, ...]]]:
    """Match specs for each address (and its family): TCP only when asked or when ports are
    given."""
    if not ports:
        return [(family_of(a), ("-d", a, "-p", "tcp") if tcp else ("-d", a)) for a in addresses]
    return [
        (family_of(a), ("-d", a, "-p", "tcp", "--dport", str(p))) for a in addresses for p in ports
    ]


def _forward(
    destinations: Sequence[tuple[IPFamily, tuple[str, ...]]], *verdict: str
) -> tuple[Rule, ...]:
    """One forwarding rule per destination match, each ending in ``verdict``."""
    return tuple(Rule("filter", FORWARD, (*d, *verdict), family) for family, d in destinations)


@dataclass(frozen=True)
class Blackhole(_RuleAction):
    """Drop packets to the addresses (all, or only these TCP ports): connections time out."""

    addresses: tuple[str, ...]
    ports: tuple[int, ...] = ()

    def rules(self) -> tuple[Rule, ...]:
        return _forward(_destinations(self.addresses, self.ports), "-j", "DROP")


@dataclass(frozen=True)
class Refuse(_RuleAction):
    """Answer a connection attempt (SYN) with a RST, as a closed port would."""

    addresses: tuple[str, ...]
    ports: tuple[int, ...] = ()

    def rules(self) -> tuple[Rule, ...]:
        return _forward(_destinations(self.addresses, self.ports, tcp=True), "--syn", *_REJECT_RST)


_REJECT_RST: Final = ("-j", "REJECT", "--reject-with", "tcp-reset")


@dataclass(frozen=True)
class ResetByAddress(_RuleAction):
    """Let the connection open, then answer the first data the client sends with a RST."""

    addresses: tuple[str, ...]
    ports: tuple[int, ...] = ()

    def rules(self) -> tuple[Rule, ...]:
        payload = ("-m", "length", "--length", _MORE_THAN_HEADERS)
        destinations = _destinations(self.addresses, self.ports, tcp=True)
        return _forward(destinations, *payload, *_REJECT_RST)


IcmpType = Literal[
    "net-unreachable",
    "host-unreachable",
    "port-unreachable",
    "net-prohibited",
    "host-prohibited",
    "admin-prohibited",
]


@dataclass(frozen=True)
class Unreachable(_RuleAction):
    """Answer packets to the addresses with an ICMP destination-unreachable message."""

    addresses: tuple[str, ...]
    ports: tuple[int, ...] = ()
    icmp: IcmpType = "admin-prohibited"

    def rules(self) -> tuple[Rule, ...]:
        reject = ("-j", "REJECT", "--reject-with", f"icmp-{self.icmp}")
        return _forward(_destinations(self.addresses, self.ports), *reject)


RESIDUAL_LIST: Final = "cw_residual"


def _name_match(name: str, port: int) -> tuple[str, ...]:
    return ("-p", "tcp", "--dport", str(port), "-m", "string", "--algo", "bm", "--string", name)


@dataclass(frozen=True)
class SNIFilter(_RuleAction):
    """Match the server name in the ClientHello (a plain string match), then reset or drop."""

    names: tuple[str, ...]
    how: Literal["reset", "drop"] = "reset"
    ports: tuple[int, ...] = (443,)
    residual: int = 0  # seconds every packet to the address:port is then punished too
    family: IPFamily = "both"

    def clear(self, censor: Censor) -> None:
        super().clear(censor)
        if self.residual:
            censor.forget_residual()

    def rules(self) -> tuple[Rule, ...]:
        verdict = _REJECT_RST if self.how == "reset" else ("-j", "DROP")
        if self.residual:
            # Remember the destination of a forbidden ClientHello (xt_recent), then punish
            # everything sent to it for a while: the GFW's and TSPU's residual censorship.
            remember = ("-m", "recent", "--name", RESIDUAL_LIST, "--rdest", "--set")
            punish = (
                "-m", "recent", "--name", RESIDUAL_LIST, "--rdest", "--rcheck",
                "--seconds", str(self.residual),
            )  # fmt: skip
            return tuple(
                Rule(
                    "filter", FORWARD, (*_name_match(name, port), *remember, *verdict), self.family
                )
                for name in self.names
                for port in self.ports
            ) + tuple(
                Rule(
                    "filter",
                    FORWARD,
                    ("-p", "tcp", "--dport", str(port), *punish, *verdict),
                    self.family,
                )
                for port in self.ports
            )
        return tuple(
            Rule(
                "filter",
                FORWARD,
                (
                    "-p",
                    "tcp",
                    "--dport",
                    str(port),
                    "-m",
                    "string",
                    "--algo",
                    "bm",
                    "--string",
                    name,
                    *verdict,
                ),
                self.family,
            )
            for name in self.names
            for port in self.ports
        )


@dataclass(frozen=True)
class _Redirect(_RuleAction):
    addresses: tuple[str, ...]
    port: int
    to: str

    def rules(self) -> tuple[Rule, ...]:
        return tuple(
            Rule(
                "nat",
                PREROUTING,
                (
                    "-i",
                    plan.ROUTER_LAN_IF,
                    "-p",
                    "tcp",
                    "-d",
                    address,
                    "--dport",
                    str(self.port),
                    "-j",
                    "DNAT",
                    "--to-destination",
                    f"{self.to}:{self.port}",
                ),
                "ipv4",
            )
            for address in self.addresses
        )


@dataclass(frozen=True)
class TLSInterception(_Redirect):
    """Send the client's TLS connections to a MITM server with a rogue CA's certificates."""

    port: int = 443
    to: str = plan.MITM_IP


@dataclass(frozen=True)
class HTTPBlockpage(_Redirect):
    """Send plain HTTP for the addresses to the ISP's blockpage server."""

    port: int = 80
    to: str = plan.BLOCKPAGE_IP


@dataclass(frozen=True)
class Loss(_RuleAction):
    """Random loss everywhere: forwarded packets and the router's own (its resolver's)."""

    probability: float

    def __post_init__(self) -> None:
        if not 0 < self.probability < 1:
            raise ValueError(f"loss probability must be between 0 and 1, not {self.probability}")

    def rules(self) -> tuple[Rule, ...]:
        chance = ("-m", "statistic", "--mode", "random", "--probability", f"{self.probability}")
        drop = (*chance, "-j", "DROP")
        return (
            Rule("filter", FORWARD, drop),
            Rule("filter", INPUT, ("!", "-i", "lo", *drop)),
            Rule("filter", OUTPUT, ("!", "-o", "lo", *drop)),
        )


@dataclass(frozen=True)
class Shutdown(_RuleAction):
    """Nothing crosses the ISP: every forwarded packet and the resolver's upstream dropped."""

    def rules(self) -> tuple[Rule, ...]:
        return (
            Rule("filter", FORWARD, ("-j", "DROP")),
            Rule("filter", OUTPUT, ("-o", plan.ROUTER_UP_IF, "-j", "DROP")),
        )


@dataclass(frozen=True)
class ForeignTTL(_RuleAction):
    """The censor's own RSTs (every ``reset``/``refuse``/``sni`` rejection) leave the router
    with this TTL, as a real injector's do: not the server's, so raw capture can tell."""

    ttl: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"a TTL is 1-255, not {self.ttl}")

    def rules(self) -> tuple[Rule, ...]:
        resets = ("-o", plan.ROUTER_LAN_IF, "-p", "tcp", "--tcp-flags", "RST", "RST")
        return (
            Rule(
                "mangle", MANGLE_OUTPUT, (*resets, "-j", "TTL", "--ttl-set", str(self.ttl)), "ipv4"
            ),
            Rule("mangle", MANGLE_OUTPUT, (*resets, "-j", "HL", "--hl-set", str(self.ttl)), "ipv6"),
        )


# Other levers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Throttle:
    """Cap the bandwidth to and from the addresses (tc htb on both router interfaces).

    With ``names``, a policer keyed on the server name instead: a connection whose
    ClientHello carries one is marked (iptables string match → CONNMARK), and every packet
    of it is put in the capped class (CLASSIFY) — Russia's 2021 Twitter slowdown. With
    ``everything``, the whole home link is capped."""

    addresses: tuple[str, ...] = ()
    rate: str = "64kbit"
    burst: str = "4k"
    names: tuple[str, ...] = ()
    mark: int = 0  # with names: the connection mark, also the htb class's minor number
    everything: bool = False
    queue: int = 5  # packets: under half a second at 128 kbit/s

    @property
    def classid(self) -> str | None:
        return f"1:{self.mark:x}" if self.mark else None

    def rules(self) -> tuple[Rule, ...]:
        if not self.names:
            return ()
        mark = str(self.mark)
        remember = tuple(
            Rule("mangle", MARKING, (*_name_match(n, 443), "-j", "CONNMARK", "--set-mark", mark))
            for n in self.names
        )
        classify = ("-m", "connmark", "--mark", mark, "-j", "CLASSIFY", "--set-class")
        return (*remember, Rule("mangle", CLASSIFYING, (*classify, str(self.classid))))

    def apply(self, censor: Censor) -> None:
        censor.add_rules(self.rules())
        censor.add_throttle(self)

    def clear(self, censor: Censor) -> None:
        censor.remove_throttle(self)
        censor.delete_rules(self.rules())


@dataclass(frozen=True)
class SlowOrigin:
    """Not the censor: the service's own servers send downloads at ``rate`` bytes a second,
    to everyone and for every name, the control SNI too (an overloaded or rate-limited
    origin). A trap: slow everywhere is not throttling."""

    addresses: tuple[str, ...]
    rate: int

    def apply(self, censor: Censor) -> None:
        censor.slow_origins(censor.origin_rates | dict.fromkeys(self.addresses, self.rate))

    def clear(self, censor: Censor) -> None:
        kept = {a: r for a, r in censor.origin_rates.items() if a not in self.addresses}
        censor.slow_origins(kept)


@dataclass(frozen=True)
class Delay:
    """Not the censor: a long link. Every packet from the internet to the home LAN is held
    ``seconds`` (``lab.delay``, a TUN device in userspace: this kernel has no netem), as
    netem would on the router's LAN side; the way out is not delayed."""

    seconds: float

    def apply(self, censor: Censor) -> None:
        argv = python_module("lab.delay", "--device", DELAY_DEVICE, "--seconds", str(self.seconds))
        daemon = censor.start_daemon(self, "delay", argv)
        daemon.wait_ready(lambda: DELAY_READY in daemon.tail())
        for command in _delay_routing(DELAY_DEVICE):
            run_in(censor.namespace, command)

    def clear(self, censor: Censor) -> None:
        censor.forget_delay()
        censor.stop_daemon(self)


DELAY_DEVICE: Final = "cwdelay"
DELAY_TABLE: Final = "90"


def _delay_routing(device: str) -> list[list[str]]:
    """What arrives from the internet is routed into the device; what the delayer writes
    back arrives from the device and takes the usual routes."""
    commands = [
        ["ip", "link", "set", device, "up"],
        ["sysctl", "-qw", f"net.ipv4.conf.{device}.rp_filter=0"],
    ]
    for ip in (["ip"], ["ip", "-6"]):
        commands += [
            [*ip, "route", "add", "default", "dev", device, "table", DELAY_TABLE],
            [
                *ip,
                "rule",
                "add",
                "pref",
                DELAY_TABLE,
                "iif",
                plan.ROUTER_UP_IF,
                "lookup",
                DELAY_TABLE,
            ],
        ]
    return commands


@dataclass(frozen=True)
class DNSOverride:
    """The ISP resolver answers these names (and their subdomains) itself, falsely."""

    names: tuple[str, ...]
    kind: OverrideKind
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "answer") != bool(self.addresses):
            raise ValueError("an 'answer' override needs addresses, and only it takes them")

    def apply(self, censor: Censor) -> None:
        censor.override_names(self.names, Override(self.kind, self.addresses))

    def clear(self, censor: Censor) -> None:
        censor.override_names(self.names, None)


@dataclass(frozen=True)
class DNSInjection:
    """An on-path injector answers queries for these names first, with a forged address."""

    names: tuple[str, ...]
    address: str = plan.INJECTED_ANSWER
    iface: str = plan.ROUTER_LAN_IF
    ready_timeout: float = field(default=20.0, compare=False)
    ip_ttl: int = 64
    """The forged datagram's IP TTL: an injector far from the resolver shows another TTL."""

    def argv(self) -> list[str]:
        local = (plan.ROUTER_LAN_IP, plan.ROUTER_UP_IP, plan.ISP_RESOLVER_IP)
        args = ["--iface", self.iface, "--ip-ttl", str(self.ip_ttl)]
        for name in self.names:
            args += ["--name", f"{name}={self.address}"]
        for address in local:
            args += ["--local", address]
        return python_module("lab.injector", *args)

    def apply(self, censor: Censor) -> None:
        daemon = censor.start_daemon(self, f"injector-{self.names[0]}", self.argv())
        try:
            daemon.wait_ready(lambda: INJECTOR_READY in _read(daemon.log), self.ready_timeout)
        except BaseException:
            censor.stop_daemon(self)
            raise

    def clear(self, censor: Censor) -> None:
        censor.stop_daemon(self)


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")
    return ""
