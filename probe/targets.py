"""Target lists: the TOML contract of DESIGN.md, parsed strictly.

Every mistake in a list is reported with the file, the line and the key, because the person
reading the error is often a volunteer editing a list by hand.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from probe.addresses import is_local

DEFAULT_CONTROL_SNI: Final = "example.com"
_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_-]{1,63}\.?$"
)
_SERVICES_HEADER: Final = re.compile(r"^\s*\[\[\s*services\s*\]\]")
_ENDPOINTS_HEADER: Final = re.compile(r"^\s*\[\[\s*services\.endpoints\s*\]\]")
_SERVICE_KEYS: Final = frozenset(
    {"name", "title", "category", "endpoints", "control_sni", "blockpage_hints", "expected_asns"}
)
_ENDPOINT_KEYS: Final = frozenset(
    {"host", "ip", "port", "tls", "sni", "control_sni", "http_path", "throughput_path"}
)


class TargetListError(ValueError):
    """A target list that cannot be used; says where and why."""

    def __init__(self, path: str, line: int | None, key: str | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.problem = problem
        where = path + (f":{line}" if line else "")
        super().__init__(f"{where}: {f'{key}: ' if key else ''}{problem}")


@dataclass(frozen=True)
class Target:
    """One endpoint of a service to test."""

    port: int
    host: str | None = None
    ip: str | None = None
    tls: bool = True
    sni: str | None = None
    control_sni: str = DEFAULT_CONTROL_SNI
    http_path: str | None = None
    throughput_path: str | None = None  # a bounded download: GET it and time the bytes

    @property
    def label(self) -> str:
        return f"{self.host or self.ip}:{self.port}"

    @property
    def server_name(self) -> str | None:
        """The SNI to send: explicit, else the host name."""
        return self.sni or self.host


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    category: str
    endpoints: tuple[Target, ...]
    blockpage_hints: tuple[str, ...] = ()
    expected_asns: tuple[int, ...] = ()

    @property
    def is_control(self) -> bool:
        return self.category == "control"


@dataclass(frozen=True)
class TargetList:
    source: str
    services: tuple[Service, ...] = field(default_factory=tuple)

    @property
    def controls(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if s.is_control)

    def select(self, names: list[str]) -> TargetList:
        """Keep the named services (and always the controls, which verdicts depend on)."""
        known = {s.name for s in self.services}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise TargetListError(
                self.source,
                None,
                None,
                f"no such service: {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            )
        chosen = set(names)
        kept = tuple(s for s in self.services if s.name in chosen or s.is_control)
        return TargetList(self.source, kept)

    def without_local(self) -> tuple[TargetList, tuple[str, ...]]:
        """This list less every endpoint on a local address (``probe.addresses.is_local``:
        a fixed ``ip`` or an IP-literal ``host``), and the
        refused ones as ``service host:port``; a service left with no endpoint goes too."""
        kept: list[Service] = []
        refused: list[str] = []
        for service in self.services:
            local = [t for t in service.endpoints if is_local(t.ip or t.host or "")]
            refused += [f"{service.name} {t.label}" for t in local]
            endpoints = tuple(t for t in service.endpoints if t not in local)
            if endpoints:
                kept.append(dataclasses.replace(service, endpoints=endpoints))
        return TargetList(self.source, tuple(kept)), tuple(refused)


def load(path: str | Path) -> TargetList:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetListError(str(path), None, None, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TargetListError(str(path), None, None, "not UTF-8 text") from exc
    return parse(text, str(path))


def load_default() -> TargetList:
    text = resources.files("probe").joinpath("data/targets.toml").read_text(encoding="utf-8")
    return parse(text, "<default targets>")


def parse(text: str, source: str) -> TargetList:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise TargetListError(
            source, int(match.group(1)) if match else None, None, f"invalid TOML: {exc}"
        ) from exc
    return _Parser(text, source).target_list(document)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def fail(
        self, problem: str, key: str | None, service: int | None = None, endpoint: int | None = None
    ) -> TargetListError:
        return TargetListError(self.source, self.line_of(key, service, endpoint), key, problem)

    def line_of(self, key: str | None, service: int | None, endpoint: int | None) -> int | None:
        """Find the line a key sits on by counting table headers (tomllib keeps no positions)."""
        start, stop = 0, len(self.lines)
        if service is not None:
            start, stop = self._nth(_SERVICES_HEADER, service, start, stop, (_SERVICES_HEADER,))
            if endpoint is not None:
                start, stop = self._nth(
                    _ENDPOINTS_HEADER, endpoint, start, stop, (_ENDPOINTS_HEADER,)
                )
        if key:
            pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
            for number in range(start, stop):
                if pattern.match(self.lines[number]):
                    return number + 1
        return start + 1 if service is not None and start < len(self.lines) else None

    def _nth(
        self,
        header: re.Pattern[str],
        index: int,
        start: int,
        stop: int,
        ends: tuple[re.Pattern[str], ...],
    ) -> tuple[int, int]:
        """Lines of the index-th table with this header between start and stop."""
        found = [n for n in range(start, stop) if header.match(self.lines[n])]
        if index >= len(found):
            return start, stop
        begin = found[index]
        for number in range(begin + 1, stop):
            if any(end.match(self.lines[number]) for end in ends):
                return begin, number
        return begin, stop

    def target_list(self, document: dict[str, Any]) -> TargetList:
        extra = set(document) - {"services"}
        if extra:
            raise self.fail("unknown key (expected only [[services]])", sorted(extra)[0])
        raw_services = document.get("services")
        if not isinstance(raw_services, list) or not raw_services:
            raise self.fail("a target list needs at least one [[services]] table", "services")
        services = tuple(self.service(raw, i) for i, raw in enumerate(raw_services))
        seen: set[str] = set()
        for i, service in enumerate(services):
            if service.name in seen:
                raise self.fail(f"duplicate service name {service.name!r}", "name", i)
            seen.add(service.name)
        return TargetList(self.source, services)

    def service(self, raw: Any, i: int) -> Service:
        if not isinstance(raw, dict):
            raise self.fail("must be a table", "services", i)
        unknown = sorted(set(raw) - _SERVICE_KEYS)
        if unknown:
            raise self.fail(
                f"unknown key (allowed: {', '.join(sorted(_SERVICE_KEYS))})", unknown[0], i
            )
        name = self.string(raw, "name", i, required=True)
        if not _NAME.match(name):
            raise self.fail(f"{name!r} is not a valid name ([a-z0-9_-]+)", "name", i)
        title = self.string(raw, "title", i) or name
        category = self.string(raw, "category", i, required=True)
        if not _NAME.match(category):
            raise self.fail(f"{category!r} is not a valid category ([a-z0-9_-]+)", "category", i)
        control_sni = self.string(raw, "control_sni", i) or DEFAULT_CONTROL_SNI
        raw_endpoints = raw.get("endpoints")
        if not isinstance(raw_endpoints, list) or not raw_endpoints:
            raise self.fail(
                "a service needs at least one [[services.endpoints]] table", "endpoints", i
            )
        endpoints = tuple(self.endpoint(e, i, j, control_sni) for j, e in enumerate(raw_endpoints))
        hints = self.string_list(raw, "blockpage_hints", i)
        asns = raw.get("expected_asns", [])
        if not isinstance(asns, list) or not all(
            isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 2**32 for a in asns
        ):
            raise self.fail("must be a list of AS numbers", "expected_asns", i)
        return Service(name, title, category, endpoints, tuple(hints), tuple(asns))

    def endpoint(self, raw: Any, i: int, j: int, control_sni: str) -> Target:
        if not isinstance(raw, dict):
            raise self.fail("must be a table", "endpoints", i)
        unknown = sorted(set(raw) - _ENDPOINT_KEYS)
        if unknown:
            raise self.fail(
                f"unknown key (allowed: {', '.join(sorted(_ENDPOINT_KEYS))})", unknown[0], i, j
            )
        host = self.string(raw, "host", i, j)
        ip = self.string(raw, "ip", i, j)
        if (host is None) == (ip is None):
            raise self.fail("an endpoint needs exactly one of host or ip", "host", i, j)
        if host is not None and not _HOST.match(host):
            raise self.fail(f"{host!r} is not a host name", "host", i, j)
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise self.fail(f"{ip!r} is not an IP address", "ip", i, j) from None
        port = raw.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise self.fail("port must be an integer from 1 to 65535", "port", i, j)
        tls = raw.get("tls", port == 443)
        if not isinstance(tls, bool):
            raise self.fail("tls must be true or false", "tls", i, j)
        sni = self.string(raw, "sni", i, j)
        if sni is not None and not _HOST.match(sni):
            raise self.fail(f"{sni!r} is not a host name", "sni", i, j)
        if not tls and sni is not None:
            raise self.fail("sni needs tls = true", "sni", i, j)
        if tls and ip is not None and sni is None:
            raise self.fail("a TLS endpoint given by ip needs an sni", "ip", i, j)
        endpoint_control = self.string(raw, "control_sni", i, j) or control_sni
        http_path = self.string(raw, "http_path", i, j)
        if http_path is not None and not http_path.startswith("/"):
            raise self.fail("http_path must start with /", "http_path", i, j)
        throughput_path = self.string(raw, "throughput_path", i, j)
        if throughput_path is not None and not throughput_path.startswith("/"):
            raise self.fail("throughput_path must start with /", "throughput_path", i, j)
        return Target(port, host, ip, tls, sni, endpoint_control, http_path, throughput_path)

    def string(
        self, raw: dict[str, Any], key: str, i: int, j: int | None = None, *, required: bool = False
    ) -> Any:
        value = raw.get(key)
        if value is None:
            if required:
                raise self.fail("missing", key, i, j)
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail("must be a non-empty string", key, i, j)
        return value.strip()

    def string_list(self, raw: dict[str, Any], key: str, i: int) -> list[str]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail("must be a list of non-empty strings", key, i)
        return list(value)
