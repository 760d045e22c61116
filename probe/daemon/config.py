"""The daemon's settings: a small TOML file, every key optional, unknown keys an error.

```toml
targets = "/etc/censorwatch/targets.toml"   # a local list instead of the collector's
resolver = "192.168.1.1"                     # the network's resolver (default: resolv.conf)
control_resolvers = ["https://1.1.1.1/dns-query"]
ca_file = "/path/extra-roots.pem"
timeout = 5.0                                # per step, seconds
concurrency = 50                             # network operations at once
check_in_seconds = 3600
allow_private_targets = false                # labs: let check-in push LAN/loopback targets

[schedule]                                   # defaults: what the collector says at check-in
interval_seconds = 900
jitter_seconds = 120
max_rounds = 1                               # rounds at once
categories = { messenger = 300 }             # default: messengers at a third of the interval
watch = true                                 # measure densely in announced events' windows
watch_min_interval_seconds = 30              # never more often than this, whatever a window says
watch_max_mb_per_day = 50                    # after this much traffic in a day, windows pause

[spool]
max_bytes = 268435456
max_age_days = 30
quarantine_max_items = 10000                 # rejected measurements kept for inspection
quarantine_max_bytes = 16777216

[upload]
batch_size = 500
idle_seconds = 60                            # look at the spool at least this often
backoff_base_seconds = 1.0
backoff_cap_seconds = 600.0
```
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from probe.measure.network import ResolverSpecError, parse_network_resolver, parse_resolver

# What this version cannot collect at all; every measurement says so (DESIGN.md,
# Measurement). What a run could not collect on this machine (raw packets without
# CAP_NET_RAW, IPv6 without a route) the engine adds per run.
MISSING_EVIDENCE: Final[list[str]] = []
DEFAULT_CONTROL_RESOLVERS: Final = (
    "https://1.1.1.1/dns-query",
    "https://9.9.9.9/dns-query",
    "https://8.8.8.8/dns-query",
)


class SettingsError(ValueError):
    """A bad settings file; the message names the file and the key."""


@dataclass(frozen=True)
class ScheduleConfig:
    interval_seconds: float | None = None
    jitter_seconds: float | None = None
    max_rounds: int = 1
    categories: dict[str, float] | None = None
    watch: bool = True  # measure densely in the collector's watch windows
    watch_min_interval_seconds: float = 30.0  # never more often than this, window or not
    watch_max_mb_per_day: float | None = 50.0  # a day's traffic after which windows pause


@dataclass(frozen=True)
class SpoolConfig:
    max_bytes: int = 256 * 1024 * 1024
    max_age_days: float = 30.0
    quarantine_max_items: int = 10_000
    quarantine_max_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class UploadConfig:
    batch_size: int = 500
    idle_seconds: float = 60.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 600.0


@dataclass(frozen=True)
class Config:
    targets: Path | None = None
    resolver: str | None = None
    control_resolvers: tuple[str, ...] = DEFAULT_CONTROL_RESOLVERS
    ca_file: Path | None = None
    timeout: float = 5.0
    concurrency: int = 50
    check_in_seconds: float = 3600.0
    allow_private_targets: bool = False
    raw_packets: bool = True
    """Capture each flow's packets where the process holds CAP_NET_RAW (false: never)."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)


def load(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from exc
    return _Reader(str(path), path.parent).config(document)


class _Reader:
    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def fail(self, key: str, problem: str) -> SettingsError:
        return SettingsError(f"{self.source}: {key}: {problem}")

    def config(self, doc: dict[str, Any]) -> Config:
        self.known(doc, "", set(Config.__dataclass_fields__))
        resolvers = doc.get("control_resolvers", list(DEFAULT_CONTROL_RESOLVERS))
        if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
            raise self.fail("control_resolvers", "must be a list of URLs")
        for text in resolvers:
            self.resolver("control_resolvers", parse_resolver, text)
        resolver = self.text(doc, "resolver")
        if resolver is not None:
            self.resolver("resolver", parse_network_resolver, resolver)
        return Config(
            targets=self.path(doc, "targets"),
            resolver=resolver,
            control_resolvers=tuple(resolvers),
            ca_file=self.path(doc, "ca_file"),
            timeout=self.number(doc, "timeout", 5.0),
            concurrency=int(self.number(doc, "concurrency", 50)),
            check_in_seconds=self.number(doc, "check_in_seconds", 3600.0),
            allow_private_targets=self.flag(doc, "allow_private_targets"),
            raw_packets=self.flag(doc, "raw_packets", True),
            schedule=self.schedule(self.table(doc, "schedule")),
            spool=self.spool(self.table(doc, "spool")),
            upload=self.upload(self.table(doc, "upload")),
        )

    def schedule(self, doc: dict[str, Any]) -> ScheduleConfig:
        self.known(doc, "schedule.", set(ScheduleConfig.__dataclass_fields__))
        categories = self.table(doc, "categories") if "categories" in doc else None
        return ScheduleConfig(
            interval_seconds=self.number(doc, "interval_seconds", None),
            jitter_seconds=self.number(doc, "jitter_seconds", None, zero=True),
            max_rounds=int(self.number(doc, "max_rounds", 1)),
            watch=self.flag(doc, "watch", True),
            watch_min_interval_seconds=self.number(doc, "watch_min_interval_seconds", 30.0),
            watch_max_mb_per_day=self.number(doc, "watch_max_mb_per_day", 50.0),
            categories=None
            if categories is None
            else {k: self.number(categories, k, None) for k in categories},
        )

    def spool(self, doc: dict[str, Any]) -> SpoolConfig:
        self.known(doc, "spool.", set(SpoolConfig.__dataclass_fields__))
        return SpoolConfig(
            max_bytes=int(self.number(doc, "max_bytes", SpoolConfig.max_bytes)),
            max_age_days=self.number(doc, "max_age_days", SpoolConfig.max_age_days),
            quarantine_max_items=int(
                self.number(doc, "quarantine_max_items", SpoolConfig.quarantine_max_items)
            ),
            quarantine_max_bytes=int(
                self.number(doc, "quarantine_max_bytes", SpoolConfig.quarantine_max_bytes)
            ),
        )

    def upload(self, doc: dict[str, Any]) -> UploadConfig:
        self.known(doc, "upload.", set(UploadConfig.__dataclass_fields__))
        d = UploadConfig()
        return UploadConfig(
            batch_size=int(self.number(doc, "batch_size", d.batch_size)),
            idle_seconds=self.number(doc, "idle_seconds", d.idle_seconds),
            backoff_base_seconds=self.number(doc, "backoff_base_seconds", d.backoff_base_seconds),
            backoff_cap_seconds=self.number(doc, "backoff_cap_seconds", d.backoff_cap_seconds),
        )

    def known(self, doc: dict[str, Any], prefix: str, keys: set[str]) -> None:
        for key in doc:
            if key not in keys:
                raise self.fail(prefix + key, f"unknown key (known: {', '.join(sorted(keys))})")

    def table(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def resolver(self, key: str, parser: Callable[[str], object], text: str) -> None:
        try:
            parser(text)
        except ResolverSpecError as exc:
            raise self.fail(key, str(exc)) from exc

    def text(self, doc: dict[str, Any], key: str) -> str | None:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "must be a string")
        return value

    def boolean(self, doc: dict[str, Any], key: str, default: bool) -> bool:
        value = doc.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def path(self, doc: dict[str, Any], key: str) -> Path | None:
        value = self.text(doc, key)
        return None if value is None else self.base / Path(value).expanduser()

    def flag(self, doc: dict[str, Any], key: str, default: bool = False) -> bool:
        value = doc.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def number(self, doc: dict[str, Any], key: str, default: Any, zero: bool = False) -> Any:
        value = doc.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "must be a number")
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise self.fail(key, "must be a finite number greater than zero")
        return float(value) if isinstance(default, float) or default is None else value
