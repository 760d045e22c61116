"""The standalone config: which servers to run in one process, read from TOML or JSON.

The lab starts ``python -m collector.demo.servers CONFIG`` inside a network namespace. A config (``.toml``,
else JSON with the same structure) holds a PKI directory, named zones, and a list of servers::

    pki = "pki"                      # PKI directory (see collector.demo.servers.pki); relative to this
                                     # file; needed by tls, dot and doh servers
    [zones.main]
    default = "nxdomain"             # behaviour for names without a rule (default nxdomain)
    [zones.main.names]               # exact names, or "*.suffix"
    "web.telegram.org" = { action = "answer", ips = ["10.0.1.10"], ttl = 300 }
    "x.com" = { action = "double", forged = ["10.10.34.35"], gap = 0.005,
                real = { action = "answer", ips = ["10.0.1.20"] } }
    "vk.com" = { action = "delay", seconds = 2.0, then = "servfail" }
    "signal.org" = "silent"          # nxdomain | servfail | refused | silent

    [[servers]]
    kind = "dns"                     # UDP and TCP on one port
    host = "10.0.0.53"
    port = 53                        # 0: any free port (reported on stdout)
    zone = "main"

    [[servers]]
    kind = "doh"                     # also "dot"; both take zone, names (extra certificate
    host = "10.0.0.54"               # names besides host); doh also takes path
    port = 443
    zone = "main"

    [[servers]]
    kind = "tls"
    host = "10.0.1.10"
    port = 443
    default = "complete"             # rule for unknown or absent SNI
    default_names = ["default.lab"]  # certificate names for that rule
    rules = { "web.telegram.org" = "reset", "x.com" = { action = "rogue", page = "blockpage" } }
                                     # complete | rogue | reset | stall | close;
                                     # page = "normal" | "blockpage" (HTTP over TLS)
    download_rate = 16000            # GET /bytes/N at this many bytes a second, whatever the
                                     # name (a slow origin); 0 (default): full speed
    [[servers]]
    kind = "http"                    # mode = "normal" | "blockpage"; status = 200
    host = "10.0.9.9"
    port = 80
    mode = "blockpage"

    [[servers]]
    kind = "tcp-accept"              # banner = "text", echo = false; also "tcp-reset" and
    host = "10.0.1.11"               # "tcp-refused" (bound, never listening), host and port only
    port = 5222

Every key is checked: a mistake is an error naming where it is (``$.servers[1].port``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from collector.demo.servers.pages import Page
from collector.demo.servers.tls import DEFAULT_NAMES, TLSAction, TLSRule
from collector.demo.servers.zone import (
    Answer,
    Behaviour,
    Delay,
    Double,
    NXDomain,
    Refused,
    ServFail,
    Silent,
    Zone,
)


class ServerSpecError(ValueError):
    """A config that cannot be used; the message says which file and where in it."""


class _Spec(msgspec.Struct, forbid_unknown_fields=True):
    pass


Simple = Literal["nxdomain", "servfail", "refused", "silent"]


class AnswerSpec(_Spec, tag="answer", tag_field="action"):
    ips: list[str]
    ttl: int = 60


class DoubleSpec(_Spec, tag="double", tag_field="action"):
    forged: list[str]
    real: BehaviourSpec
    ttl: int = 60
    gap: float = 0.005


class DelaySpec(_Spec, tag="delay", tag_field="action"):
    seconds: float
    then: BehaviourSpec


BehaviourSpec = Simple | AnswerSpec | DoubleSpec | DelaySpec


class ZoneSpec(_Spec):
    default: BehaviourSpec = "nxdomain"
    names: dict[str, BehaviourSpec] = {}


class TLSRuleSpec(_Spec):
    action: TLSAction = "complete"
    page: Page = "normal"


class _ServerSpec(_Spec, tag_field="kind", kw_only=True):
    host: str
    port: int = 0


class DNSSpec(_ServerSpec, tag="dns"):
    zone: str


class DoTSpec(_ServerSpec, tag="dot"):
    zone: str
    names: list[str] = []


class DoHSpec(_ServerSpec, tag="doh"):
    zone: str
    names: list[str] = []
    path: str = "/dns-query"


class TLSSpec(_ServerSpec, tag="tls"):
    default: TLSAction | TLSRuleSpec = "complete"
    default_names: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_NAMES))
    rules: dict[str, TLSAction | TLSRuleSpec] = {}
    download_rate: int = 0


class HTTPSpec(_ServerSpec, tag="http"):
    mode: Page = "normal"
    status: int = 200


class TCPAcceptSpec(_ServerSpec, tag="tcp-accept"):
    banner: str = ""
    echo: bool = False


class TCPResetSpec(_ServerSpec, tag="tcp-reset"):
    pass


class TCPRefusedSpec(_ServerSpec, tag="tcp-refused"):
    pass


ServerSpec = (
    DNSSpec | DoTSpec | DoHSpec | TLSSpec | HTTPSpec | TCPAcceptSpec | TCPResetSpec | TCPRefusedSpec
)


class Config(_Spec):
    servers: list[ServerSpec]
    pki: str | None = None
    zones: dict[str, ZoneSpec] = {}


def load(path: Path | str) -> tuple[Config, Path | None]:
    """The config in ``path`` and its PKI directory (resolved against the file's folder)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        config = msgspec.convert(data, Config)
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise ServerSpecError(f"{path}: {exc}") from exc
    _check(config, path)
    return config, (path.parent / config.pki if config.pki is not None else None)


def zone(spec: ZoneSpec) -> Zone:
    names = {name: behaviour(rule) for name, rule in spec.names.items()}
    return Zone(names, behaviour(spec.default))


def behaviour(spec: BehaviourSpec) -> Behaviour:
    match spec:
        case AnswerSpec(ips, ttl):
            return Answer(tuple(ips), ttl)
        case DoubleSpec(forged, real, ttl, gap):
            return Double(Answer(tuple(forged), ttl), behaviour(real), gap)
        case DelaySpec(seconds, then):
            return Delay(seconds, behaviour(then))
        case str():
            return _SIMPLE[spec]()


_SIMPLE: dict[str, type[NXDomain | ServFail | Refused | Silent]] = {
    "nxdomain": NXDomain,
    "servfail": ServFail,
    "refused": Refused,
    "silent": Silent,
}


def tls_rule(spec: TLSAction | TLSRuleSpec) -> TLSRule:
    return TLSRule(spec) if isinstance(spec, str) else TLSRule(spec.action, spec.page)


def kind(spec: ServerSpec) -> str:
    tag = spec.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def _check(config: Config, path: Path) -> None:
    for name, spec in config.zones.items():
        try:
            zone(spec)
        except ValueError as exc:
            raise ServerSpecError(f"{path}: {exc} - at `$.zones.{name}`") from exc
    for i, server in enumerate(config.servers):
        where = f"at `$.servers[{i}]`"
        if (ref := getattr(server, "zone", None)) is not None and ref not in config.zones:
            raise ServerSpecError(f"{path}: unknown zone {ref!r} - {where}.zone")
        if isinstance(server, TLSSpec | DoTSpec | DoHSpec) and config.pki is None:
            raise ServerSpecError(f"{path}: a {kind(server)} server needs `pki` - at `$.pki`")
        if isinstance(server, TLSSpec) and server.download_rate < 0:
            raise ServerSpecError(f"{path}: a rate is 0 or more - {where}.download_rate")
        if not 0 <= server.port <= 65535:
            raise ServerSpecError(f"{path}: port out of range - {where}.port")
