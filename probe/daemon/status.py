"""``censorwatch-probe status`` and the daemon's optional local ``/metrics``.

Both read the spool's ``status`` table and counters: the daemon writes there as it works, so
``status`` works whether the daemon is running or not, and needs no connection to it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.daemon.spool import MOVED_ASIDE, SPOOL_RESETS, Spool
from probe.daemon.state import StateDir
from probe.model import VERDICTS

if TYPE_CHECKING:
    from probe.daemon.service import Daemon


FULL_BELOW: Final = 1024 * 1024  # free bytes under which the disk counts as full


def gather(spool: Spool) -> dict[str, Any]:
    status = spool.status()
    counters = spool.counters()
    free = free_bytes(spool.path.parent)
    return {
        "spool_depth": spool.depth(),
        "quarantined": len(spool.quarantined()),
        "dropped": {k: v for k, v in counters.items() if k.startswith("dropped")},
        "uploaded": {k: counters.get(k, 0) for k in ("accepted", "duplicate", "rejected")},
        "last_upload": _iso(status.get("last_upload")),
        "last_error": status.get("last_error"),
        "next_run": _iso(status.get("next_run")),
        "offline": status.get("offline"),
        "last_verdicts": status.get("last_verdicts") or {},
        "watch": watch_facts(status.get("watch"), dt.datetime.now(dt.UTC)),
        "watch_bytes_today": status.get("watch_bytes_today") or 0,
        "disk_free_bytes": free,
        "disk_full": spool.disk_full_since is not None or (free is not None and free < FULL_BELOW),
        "revoked": status.get("revoked"),
        "spool_moved_aside": status.get(MOVED_ASIDE),
        "spool_resets": counters.get(SPOOL_RESETS, 0),
        "refused_targets": status.get("refused_targets") or [],
    }


def watch_facts(windows: object, now: dt.datetime) -> dict[str, Any]:
    """The collector's watch windows as last received: the active ones and the next."""
    known = [w for w in windows if isinstance(w, dict)] if isinstance(windows, list) else []

    def moment(w: dict[str, Any], key: str) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(str(w.get(key)))
        except ValueError:
            return None

    active: list[dict[str, Any]] = []
    coming: list[dict[str, Any]] = []
    for w in known:
        start, end = moment(w, "start"), moment(w, "end")
        if start is None or end is None or end <= now:
            continue
        brief = {"title": w.get("title", ""), "start": start.isoformat(), "end": end.isoformat(),
                 "services": w.get("services")}  # fmt: skip
        (active if start <= now else coming).append(brief)
    coming.sort(key=lambda w: str(w["start"]))
    return {"active": active, "next": coming[0] if coming else None}


def free_bytes(directory: Path) -> int | None:
    try:
        found = os.statvfs(directory)
    except OSError:
        return None
    return found.f_bavail * found.f_frsize


def _iso(moment: object) -> str | None:
    if not isinstance(moment, int | float):
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds")


def show(state: StateDir, as_json: bool) -> str:
    if not state.spool_path.exists():
        return f"no probe state in {state.path}: has `censorwatch-probe run` been started?\n"
    spool = Spool(state.spool_path, repair=False)
    try:
        facts = gather(spool)
    finally:
        spool.close()
    if as_json:
        return json.dumps(facts, indent=2) + "\n"
    return table(facts)


def table(facts: dict[str, Any]) -> str:
    lines = [*_alarms(facts)]
    lines += [
        f"spool depth   {facts['spool_depth']} waiting, {facts['quarantined']} quarantined",
        f"uploaded      {_pairs(facts['uploaded'])}",
        f"dropped       {_pairs(facts['dropped']) or 'none'}",
        f"last upload   {facts['last_upload'] or 'never'}"
        + (f" (last error: {facts['last_error']})" if facts["last_error"] else ""),
        f"next run      {facts['next_run'] or 'unknown'}",
        f"watch window  {_watch_line(facts['watch'])}",
        "",
        f"{'service':<20} {'verdict':<9} {'methods':<28} measured at",
    ]
    for name, seen in sorted(facts["last_verdicts"].items()):
        methods = ",".join(seen.get("methods", [])) or "-"
        lines.append(f"{name:<20} {seen['verdict']:<9} {methods:<28} {seen['start_time']}")
    return "\n".join(lines) + "\n"


def _watch_line(watch: dict[str, Any]) -> str:
    if watch["active"]:
        return "; ".join(
            f"{w['title']} until {w['end']} (measuring densely)" for w in watch["active"]
        )
    coming = watch["next"]
    return f"none now; next: {coming['title']} from {coming['start']}" if coming else "none"


def _alarms(facts: dict[str, Any]) -> list[str]:
    """What the volunteer must know first: each a line of its own, above the figures."""
    found: list[str] = []
    revoked = facts.get("revoked")
    if isinstance(revoked, dict):
        found.append(f"TOKEN REVOKED at {revoked.get('at')}: {revoked.get('message')}")
    if facts.get("disk_full"):
        found.append(
            f"DISK FULL ({facts.get('disk_free_bytes')} bytes free): measuring goes on, but "
            "new measurements cannot be kept; they are counted as dropped disk_full. Free "
            "some space on this disk."
        )
    moved = facts.get("spool_moved_aside")
    if isinstance(moved, dict):
        found.append(
            f"spool reset  the spool could not be read ({moved.get('error')}) and was moved "
            f"aside to {moved.get('path')} at {_iso(moved.get('at'))}; a new one was started"
        )
    if facts.get("refused_targets"):
        found.append(
            "targets      refused, on local addresses: " + ", ".join(facts["refused_targets"])
        )
    return found + ([""] if found else [])


def _pairs(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items()) if v)


class _SpoolMetrics(Collector):
    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def collect(self) -> Iterator[Metric]:
        facts = gather(self.spool)
        yield GaugeMetricFamily(
            "censorwatch_probe_spool_measurements", "Measurements waiting", facts["spool_depth"]
        )
        yield GaugeMetricFamily(
            "censorwatch_probe_quarantined_measurements",
            "Measurements the collector rejected",
            facts["quarantined"],
        )
        sent = CounterMetricFamily(
            "censorwatch_probe_uploaded_measurements", "Upload results", labels=["result"]
        )
        for result, count in facts["uploaded"].items():
            sent.add_metric([result], count)
        yield sent
        dropped = CounterMetricFamily(
            "censorwatch_probe_dropped_measurements", "Dropped by a spool bound", labels=["bound"]
        )
        for bound in ("size", "age", "disk_full", "quarantine"):
            dropped.add_metric([bound], facts["dropped"].get(f"dropped_{bound}", 0))
        yield dropped
        verdicts = GaugeMetricFamily(
            "censorwatch_probe_last_verdict",
            "1 for the last verdict of each service",
            labels=["service", "verdict"],
        )
        for service, seen in facts["last_verdicts"].items():
            for verdict in VERDICTS:
                verdicts.add_metric([service, verdict], float(seen["verdict"] == verdict))
        yield verdicts


class MetricsServer:
    """``/metrics`` on a local address (127.0.0.1 by default: it is for the volunteer)."""

    def __init__(self, daemon: Daemon, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SpoolMetrics(daemon.spool))
        self.host, self.port = host, port
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app, access_log=None)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()

    async def close(self) -> None:
        await self.runner.cleanup()
