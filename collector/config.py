"""Collector configuration: a TOML file, then the environment, then command-line flags.

Each later source overrides the earlier ones key by key. Every value is checked where it
enters, and a bad one is reported with the source it came from (file and key, environment
variable, or flag), because the person reading the error has to find and fix it.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from collector.enrolment.proxies import parse_networks

ENV_PREFIX: Final = "CENSORWATCH_"


class ConfigError(ValueError):
    """A configuration value that cannot be used; names where it came from."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {f'{key}: ' if key else ''}{problem}")


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Config:
    """Everything the collector needs to run; defaults give an embedded SQLite collector."""

    data_dir: Path = Path("censorwatch-data")
    db: str | None = None  # None: SQLite file in data_dir
    listen: Listen = Listen("127.0.0.1", 8080)
    admin_token_file: Path | None = None  # None: data_dir/admin-token
    open_enrolment: bool = False
    ip_asn_db: Path | None = None
    targets: Path | None = None
    schedule_interval_seconds: int = 900
    schedule_jitter_seconds: int = 120
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 16 * 1024 * 1024
    max_batch_items: int = 5000
    rate_per_second: float = 50.0
    rate_burst: int = 10000
    rate_bytes_per_second: float = 1024 * 1024  # decompressed bytes per probe; 0: unlimited
    rate_bytes_burst: int = 64 * 1024 * 1024
    # Batches decoded and stored at once (the database pool holds 10 + 10); the others wait
    # holding no connection, and one waiting longer than ingest_wait_seconds is answered 429.
    ingest_batches_in_flight: int = 4
    ingest_wait_seconds: float = 20.0  # below a probe's upload timeout (60 s), or work is lost
    # Collector processes sharing the listening port (SO_REUSEPORT), each a replica of its
    # own; more than 1 needs PostgreSQL (see collector/workers.py).
    workers: int = 1
    max_future_seconds: int = 3600
    max_past_seconds: int = 30 * 86400
    metrics_refresh_seconds: float = 15.0
    active_probe_seconds: int = 3 * 3600
    blocking_window_hours: int = 2
    query_max_limit: int = 1000
    shutdown_timeout_seconds: float = 30.0
    log_level: str = "INFO"
    alert_interval_seconds: float = 5.0  # detection cycle; 0 turns the detector off
    alert_settle_seconds: float = 2.0  # ignored since the commit-ordered cursor (0002_trust)
    # Every duration of the detector times this (benchmarks replay a day in minutes); 1 in use.
    detector_time_scale: float = 1.0
    # Quiet before an incident resolves (hysteresis); benchmarks that chain onsets shorten it.
    detector_recovery_quiet_seconds: int = 900
    delivery_interval_seconds: float = 1.0  # 0 turns webhook delivery off
    delivery_timeout_seconds: float = 10.0
    delivery_lease_seconds: float = 60.0  # a claimed delivery is retried after this if lost
    correlation_lead_seconds: int = 3600  # incident onset up to this long before an event
    correlation_lag_seconds: int = 6 * 3600  # … or this long after its start
    correlation_history_days: int = 365
    correlation_min_events: int = 5  # fewer past events: "coincided with", no p-value
    event_horizon_days: int = 42  # recurring entries expand this far ahead (back: history)
    source_poll_seconds: float = 30.0  # how often the poller looks for due sources; 0: off
    source_min_interval_seconds: int = 300  # the shortest poll interval a source may ask for
    source_timeout_seconds: float = 20.0  # one fetch, redirects included
    source_max_bytes: int = 4 * 1024 * 1024
    source_allow_private: bool = False  # source URLs on private/loopback addresses (labs)
    source_private_hosts: tuple[str, ...] = ()  # these hosts may be private all the same
    secret_overlap_seconds: int = 86400  # the previous secret signs too after a rotation
    watch_lead_seconds: int = 900  # an event's watch window opens this long before it starts
    watch_lag_seconds: int = 1800  # … and closes this long after it ends
    watch_messenger_interval_seconds: int = 30  # inside a window, messengers this often
    watch_interval_seconds: int = 60  # … and the window's other services this often
    watch_horizon_seconds: int = 86400  # windows starting this far ahead go out at check-in
    watch_check_in_seconds: int = 300  # how often probes are asked to check in
    trusted_proxies: str = ""  # networks whose Forwarded / X-Forwarded-For headers are read
    # The status page's public address (https://status.example.org), for the absolute links
    # of feeds, cards and embed snippets; "": derived from each request (see collector/web)
    public_url: str = ""
    status_cache_seconds: float = 10.0  # a rendered status page is served again this long; 0: off
    enrolment_default_uses: int = 1  # an enrolment token asked for without "uses"
    enrolment_default_expiry_seconds: int = 7 * 86400  # … or without "expires_in_seconds"

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.data_dir / 'censorwatch.db'}"

    @property
    def admin_token_path(self) -> Path:
        return (self.admin_token_file or self.data_dir / "admin-token").absolute()


def _positive_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"expected a whole number >= 0, got {value!r}")


def _positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"expected a finite number >= 0, got {value!r}")
    return number


def _whole_positive(value: Any) -> int:
    number = _positive_int(value)
    if number < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return number


def _networks(value: Any) -> str:
    """A comma-separated list (or a TOML list) of networks, checked, kept as text."""
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    try:
        parse_networks(text)
    except ValueError as exc:
        raise ValueError(f"expected networks like 10.0.0.0/8, 2001:db8::1: {exc}") from exc
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _path(value: Any) -> Path:
    return Path(_text(value)).expanduser()


def parse_listen(value: Any) -> Listen:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (all interfaces)."""
    text = _text(value)
    host, sep, port_text = text.rpartition(":")
    if (
        not sep
        or not (port_text.isascii() and port_text.isdigit())
        or not 0 <= int(port_text) <= 65535
    ):
        raise ValueError(f"expected HOST:PORT with a port 0-65535, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return Listen(host, int(port_text))


def _hosts(value: Any) -> tuple[str, ...]:
    """Host names or addresses: a TOML list, or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(h, str) for h in items):
        raise ValueError(f"expected host names, as a list or comma-separated, got {value!r}")
    hosts = tuple(h.strip().lower().strip("[]") for h in items if h.strip())
    if any(not re.fullmatch(r"[a-z0-9.:_-]{1,253}", h) for h in hosts):
        raise ValueError(f"expected host names or addresses, got {value!r}")
    return hosts


_HOST: Final = re.compile(r"[a-z0-9.-]{1,253}|[0-9a-f:.]{2,45}")


def _public_url(value: Any) -> str:
    """``https://host[:port]``: a scheme and a host, no path, query or credentials."""
    text = _text(value)
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"expected an address like https://status.example.org: {exc}") from exc
    hostname = parts.hostname or ""
    if parts.scheme.lower() not in ("http", "https") or not _HOST.fullmatch(hostname):
        raise ValueError(f"expected an http:// or https:// address with a host, got {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"expected only a scheme and a host (the page is served at the root), got {text!r}"
        )
    host = hostname if ":" not in hostname else f"[{hostname}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def _log_level(value: Any) -> str:
    level = _text(value).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


_PARSERS: Final[dict[str, Callable[[Any], Any]]] = {
    "data_dir": _path,
    "db": _text,
    "listen": parse_listen,
    "admin_token_file": _path,
    "open_enrolment": _boolean,
    "ip_asn_db": _path,
    "targets": _path,
    "schedule_interval_seconds": _positive_int,
    "schedule_jitter_seconds": _positive_int,
    "max_body_bytes": _positive_int,
    "max_decompressed_bytes": _positive_int,
    "max_batch_items": _positive_int,
    "rate_per_second": _positive_float,
    "rate_burst": _positive_int,
    "rate_bytes_per_second": _positive_float,
    "rate_bytes_burst": _positive_int,
    "ingest_batches_in_flight": _whole_positive,
    "ingest_wait_seconds": _positive_float,
    "workers": _whole_positive,
    "max_future_seconds": _positive_int,
    "max_past_seconds": _positive_int,
    "metrics_refresh_seconds": _positive_float,
    "active_probe_seconds": _positive_int,
    "blocking_window_hours": _positive_int,
    "query_max_limit": _positive_int,
    "shutdown_timeout_seconds": _positive_float,
    "log_level": _log_level,
    "alert_interval_seconds": _positive_float,
    "alert_settle_seconds": _positive_float,
    "detector_time_scale": _positive_float,
    "detector_recovery_quiet_seconds": _positive_int,
    "delivery_interval_seconds": _positive_float,
    "delivery_timeout_seconds": _positive_float,
    "delivery_lease_seconds": _positive_float,
    "correlation_lead_seconds": _positive_int,
    "correlation_lag_seconds": _positive_int,
    "correlation_history_days": _positive_int,
    "correlation_min_events": _positive_int,
    "event_horizon_days": _positive_int,
    "source_poll_seconds": _positive_float,
    "source_min_interval_seconds": _positive_int,
    "source_timeout_seconds": _positive_float,
    "source_max_bytes": _positive_int,
    "source_allow_private": _boolean,
    "source_private_hosts": _hosts,
    "secret_overlap_seconds": _positive_int,
    "watch_lead_seconds": _positive_int,
    "watch_lag_seconds": _positive_int,
    "watch_messenger_interval_seconds": _positive_int,
    "watch_interval_seconds": _positive_int,
    "watch_horizon_seconds": _positive_int,
    "watch_check_in_seconds": _positive_int,
    "trusted_proxies": _networks,
    "public_url": _public_url,
    "status_cache_seconds": _positive_float,
    "enrolment_default_uses": _whole_positive,
    "enrolment_default_expiry_seconds": _whole_positive,
}
KEYS: Final = frozenset(_PARSERS)
assert {f.name for f in dataclasses.fields(Config)} == KEYS


def _parse(source: str, key: str, value: Any) -> Any:
    try:
        return _PARSERS[key](value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(source, key, str(exc)) from exc


def from_mapping(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check a mapping of settings (a file's table or flags); unknown keys are errors."""
    unknown = sorted(set(values) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ConfigError(source, unknown[0], f"unknown setting; known settings: {known}")
    return {key: _parse(source, key, value) for key, value in values.items()}


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CENSORWATCH_<KEY>`` variables; other variables are ignored."""
    found: dict[str, Any] = {}
    for key in KEYS:
        name = ENV_PREFIX + key.upper()
        if name in environ and environ[name] != "":
            found[key] = _parse(f"environment variable {name}", key, environ[name])
    return found


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), None, "not UTF-8 text") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), None, f"invalid TOML: {exc}") from exc
    table = document.get("collector", document)
    if not isinstance(table, dict):
        raise ConfigError(str(path), "collector", "expected a table")
    return from_mapping(table, str(path))


def resolve(file: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]) -> Config:
    """Merge file < environment < flags into a Config (flags whose value is None are unset)."""
    merged: dict[str, Any] = {}
    config_path = file
    if config_path is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_path = Path(environ[ENV_PREFIX + "CONFIG"])
    if config_path is not None:
        merged.update(read_file(config_path))
    merged.update(from_environment(environ))
    merged.update(from_mapping({k: v for k, v in flags.items() if v is not None}, "flag"))
    return check(Config(**merged))


def check(config: Config) -> Config:
    """Settings that are each fine but wrong together."""
    timeout, lease = config.delivery_timeout_seconds, config.delivery_lease_seconds
    if config.delivery_interval_seconds > 0 and timeout >= lease:
        raise ConfigError(
            "settings",
            "delivery_timeout_seconds",
            f"{timeout:g} s is not shorter than delivery_lease_seconds ({lease:g} s): a "
            "webhook still being sent when its lease ends is claimed and sent again by "
            "another replica; make the lease longer than the timeout (twice is comfortable)",
        )
    if config.workers > 1 and not config.db_url.startswith("postgres"):
        raise ConfigError(
            "settings",
            "workers",
            f"{config.workers} worker processes need PostgreSQL: SQLite has one writer at a "
            "time and each process would hold its own lock; use workers = 1 or a "
            "postgresql:// database",
        )
    return config
