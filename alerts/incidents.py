"""Sans-I/O incident detector: observations in, incident changes out.

`detect(state, observations, now)` is pure: it never mutates `state`, it returns the next
state (JSON-serialisable, so the collector stores it between cycles) and the changes to
announce — at most one per incident per call, so a national event is one alert, not one per
probe or ASN.

Rules (ids are stable and cited by every incident; bump `RULES_VERSION` when one changes):

- ``block.open.probes`` — at least `confirm_probes` distinct probes in the country saw the
  service `blocked` (confirmed evidence), each within `confirm_window` of the latest.
- ``block.open.repeat`` — one probe saw it `blocked` at least `repeat_count` times in a row
  (an `ok` breaks the run) spanning at least `repeat_span`.
- ``block.join.asn`` — once open, a `blocked` observation from another ASN joins it.
- ``block.confidence.anomaly`` — `anomaly` from probes in at least `anomaly_asns` ASNs raises
  an open incident's confidence; `anomaly` never opens one.
- ``block.contrast.control`` — control vantage points reaching the service are contrast
  evidence (confidence and an evidence line).
- ``block.resolve.recovery`` — at least `recovery_ok` `ok` measurements from
  `recovery_probes` probes since the last `blocked`, and no `blocked` for `recovery_quiet`.
- ``shutdown.open.offline`` / ``shutdown.open.silent`` — at least `shutdown_probes` probes,
  and `shutdown_fraction` of those active, in a country (or in one ASN) are `offline` or
  went silent (no observation for `silent_after` though they reported every few minutes).
- ``shutdown.resolve.back`` — fewer than `shutdown_probes` still down and at least half of
  the incident's probes reporting again. Spooled measurements uploaded afterwards move the
  onset and the end to the median of the probes' own first-offline and first-back times.

Late observations (older than what the detector already saw from that probe) never open an
incident but move an open one's onset earlier when they are blocked just before it.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import msgspec

from alerts.model import Change, Incident, IncidentKind, Observation
from probe.vocabulary import rule

RULES_VERSION = "1"

RULE_OPEN_PROBES = rule(
    "block.open.probes",
    "several probes in one country saw the service blocked within the window",
    "alerts",
).id
RULE_OPEN_REPEAT = rule(
    "block.open.repeat",
    "one probe saw the service blocked repeatedly, with confirmed evidence",
    "alerts",
).id
RULE_JOIN_ASN = rule(
    "block.join.asn",
    "another ASN's blocked reports joined an open incident of the same service and country",
    "alerts",
).id
RULE_ANOMALY = rule(
    "block.confidence.anomaly",
    "unconfirmed failures (anomaly) in several ASNs raise the incident's confidence",
    "alerts",
).id
RULE_CONTROL = rule(
    "block.contrast.control",
    "control probes reached the service while the blocked ones failed",
    "alerts",
).id
RULE_RESOLVE = rule(
    "block.resolve.recovery",
    "sustained recovery: the service was reachable again for the hysteresis window",
    "alerts",
).id
RULE_SHUTDOWN_OFFLINE = rule(
    "shutdown.open.offline", "many probes in one ASN went offline together", "alerts"
).id
RULE_SHUTDOWN_SILENT = rule(
    "shutdown.open.silent", "many probes in one ASN went silent together", "alerts"
).id
RULE_SHUTDOWN_BACK = rule(
    "shutdown.resolve.back", "the probes of a shutdown came back", "alerts"
).id

SHUTDOWN = "*shutdown*"
T = TypeVar("T")


@dataclass(frozen=True)
class DetectorConfig:
    confirm_probes: int = 2
    confirm_window: timedelta = timedelta(minutes=30)
    repeat_count: int = 3
    repeat_span: timedelta = timedelta(minutes=10)
    recovery_ok: int = 3
    recovery_probes: int = 2
    recovery_quiet: timedelta = timedelta(minutes=15)
    anomaly_asns: int = 2
    shutdown_probes: int = 3
    shutdown_fraction: float = 0.5
    silent_after: timedelta = timedelta(minutes=10)
    regular_interval: timedelta = timedelta(minutes=5)
    population_horizon: timedelta = timedelta(hours=24)


@dataclass
class ProbeTrack:
    """What the detector remembers of one probe, across services."""

    cc: str
    asn: int
    last_seen: datetime
    gaps: list[float] = field(default_factory=list)  # last few reporting intervals, seconds
    offline_since: datetime | None = None


@dataclass
class RunTrack:
    """One probe's current run of `blocked` for one service."""

    asn: int
    last: datetime
    run_start: datetime | None = None
    run_count: int = 0
    last_blocked: datetime | None = None
    methods: list[str] = field(default_factory=list)
    confidence_sum: float = 0.0


@dataclass
class OpenIncident:
    id: str
    kind: str
    service: str | None
    cc: str
    onset: datetime
    last_seen: datetime
    rules: list[str]
    asns: list[int] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    blocked: int = 0
    confidence_sum: float = 0.0
    last_blocked: datetime | None = None
    recovery_start: datetime | None = None
    recovery_ok: int = 0
    recovery_probes: list[str] = field(default_factory=list)
    anomaly_probes: list[str] = field(default_factory=list)
    anomaly_asns: list[int] = field(default_factory=list)
    control_ok: int = 0
    down: dict[str, datetime] = field(default_factory=dict)  # shutdown: probe -> went down
    estimated: list[str] = field(default_factory=list)  # down time is last-seen, not offline
    back: dict[str, datetime] = field(default_factory=dict)  # shutdown: probe -> came back
    population: int = 0
    resolved_at: datetime | None = None


@dataclass
class DetectorState:
    probes: dict[str, ProbeTrack] = field(default_factory=dict)
    runs: dict[str, dict[str, RunTrack]] = field(default_factory=dict)  # "svc|cc" -> probe
    open: dict[str, OpenIncident] = field(default_factory=dict)  # "svc|cc" -> incident
    resolved_until: dict[str, datetime] = field(default_factory=dict)
    control_ok: dict[str, int] = field(default_factory=dict)  # service -> count

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str) -> DetectorState:
        return msgspec.json.decode(text, type=cls)


@dataclass
class _Draft:
    """The next state, sharing every entry this batch does not touch with the previous one.

    Probe tracks and per-(service, country) runs are copied when first written, so a cycle
    costs what its observations touch, not probes x services. Open incidents are few and
    mutated deeply, so they are copied whole.
    """

    base: DetectorState
    state: DetectorState

    @classmethod
    def of(cls, base: DetectorState) -> _Draft:
        state = DetectorState(
            probes=dict(base.probes),
            runs=dict(base.runs),
            open=copy.deepcopy(base.open),
            resolved_until=dict(base.resolved_until),
            control_ok=dict(base.control_ok),
        )
        return cls(base, state)

    def probe(self, probe_id: str) -> ProbeTrack | None:
        """The probe's track, safe to change."""
        track = self.state.probes.get(probe_id)
        if track is not None and track is self.base.probes.get(probe_id):
            track = self.state.probes[probe_id] = _clone(track)
        return track

    def runs(self, key: str) -> dict[str, RunTrack]:
        """The runs of one service in one country, a dict safe to change (not its tracks)."""
        runs = self.state.runs.get(key)
        if runs is None:
            runs = self.state.runs[key] = {}
        elif runs is self.base.runs.get(key):
            runs = self.state.runs[key] = dict(runs)
        return runs

    def run(self, key: str, probe_id: str, run: RunTrack | None) -> RunTrack | None:
        """``run`` itself if this batch made it, else a copy safe to change."""
        shared = self.base.runs.get(key)
        if run is not None and shared is not None and shared.get(probe_id) is run:
            return _clone(run)
        return run


def detect(
    state: DetectorState,
    observations: Sequence[Observation],
    now: datetime,
    config: DetectorConfig = DetectorConfig(),
) -> tuple[DetectorState, list[Change]]:
    """Feed new observations; return the next state and the changes to announce."""
    draft = _Draft.of(state)
    nxt = draft.state
    before = {key: _snapshot(inc) for key, inc in nxt.open.items()}
    resolved: list[OpenIncident] = []
    for obs in sorted(observations, key=lambda o: o.time):
        _observe_probe(draft, obs, config)
        _observe_service(draft, obs, config, resolved)
    _check_recoveries(nxt, now, config, resolved)
    _check_shutdowns(nxt, now, config, resolved)
    return nxt, _changes(before, nxt, resolved)


# --- probes and shutdowns ---------------------------------------------------------------


def _observe_probe(draft: _Draft, obs: Observation, cfg: DetectorConfig) -> None:
    state = draft.state
    track = draft.probe(obs.probe_id)
    if track is None:
        track = state.probes[obs.probe_id] = ProbeTrack(obs.cc, obs.asn, obs.time)
    if obs.time < track.last_seen:
        return
    gap = (obs.time - track.last_seen).total_seconds()
    if gap > 0:
        track.gaps = [*track.gaps[-4:], gap]
    track.cc, track.asn, track.last_seen = obs.cc, obs.asn, obs.time
    shutdown = state.open.get(_key(SHUTDOWN, obs.cc))
    if obs.verdict == "offline":
        track.offline_since = track.offline_since or obs.time
        if shutdown is not None and obs.probe_id in shutdown.estimated:
            shutdown.down[obs.probe_id] = obs.time
            shutdown.estimated.remove(obs.probe_id)
        return
    track.offline_since = None
    if shutdown is not None and obs.probe_id in shutdown.down:
        shutdown.back.setdefault(obs.probe_id, obs.time)


def _is_silent(track: ProbeTrack, now: datetime, cfg: DetectorConfig) -> bool:
    if len(track.gaps) < 3:
        return False
    interval = statistics.median(track.gaps)
    if interval > cfg.regular_interval.total_seconds():
        return False
    quiet = max(cfg.silent_after.total_seconds(), 3 * interval)
    return (now - track.last_seen).total_seconds() > quiet


def _down_since(track: ProbeTrack, now: datetime, cfg: DetectorConfig) -> datetime | None:
    if track.offline_since is not None:
        return track.offline_since
    return track.last_seen if _is_silent(track, now, cfg) else None


def _check_shutdowns(
    state: DetectorState, now: datetime, cfg: DetectorConfig, resolved: list[OpenIncident]
) -> None:
    by_cc: dict[str, dict[str, ProbeTrack]] = {}
    for pid, track in state.probes.items():
        if now - track.last_seen <= cfg.population_horizon or _in_shutdown(state, track, pid):
            by_cc.setdefault(track.cc, {})[pid] = track
    for cc, tracks in by_cc.items():
        down = {p: s for p, t in tracks.items() if (s := _down_since(t, now, cfg)) is not None}
        hit = _shutdown_probes(tracks, down, cfg)
        key = _key(SHUTDOWN, cc)
        incident = state.open.get(key)
        if incident is None and hit:
            _open_shutdown(state, cc, tracks, down, hit, now)
        elif incident is not None:
            _update_shutdown(state, incident, tracks, down, hit, now, cfg, resolved)


def _in_shutdown(state: DetectorState, track: ProbeTrack, pid: str) -> bool:
    incident = state.open.get(_key(SHUTDOWN, track.cc))
    return incident is not None and pid in incident.down


def _shutdown_probes(
    tracks: dict[str, ProbeTrack], down: dict[str, datetime], cfg: DetectorConfig
) -> set[str]:
    """Down probes that make a shutdown: the whole country, or the ASNs that qualify."""
    if _enough(len(down), len(tracks), cfg):
        return set(down)
    hit: set[str] = set()
    for asn in {tracks[p].asn for p in down}:
        members = [p for p, t in tracks.items() if t.asn == asn]
        asn_down = [p for p in members if p in down]
        if _enough(len(asn_down), len(members), cfg):
            hit.update(asn_down)
    return hit


def _enough(down: int, population: int, cfg: DetectorConfig) -> bool:
    return down >= cfg.shutdown_probes and down >= cfg.shutdown_fraction * population


def _open_shutdown(
    state: DetectorState,
    cc: str,
    tracks: dict[str, ProbeTrack],
    down: dict[str, datetime],
    hit: set[str],
    now: datetime,
) -> None:
    offline = {p for p in hit if tracks[p].offline_since is not None}
    rules = [RULE_SHUTDOWN_OFFLINE] if offline else []
    if offline != hit:
        rules.append(RULE_SHUTDOWN_SILENT)
    incident = OpenIncident(
        id=_incident_id("shutdown", None, cc, now),
        kind="shutdown",
        service=None,
        cc=cc,
        onset=now,
        last_seen=now,
        rules=rules,
        estimated=sorted(hit - offline),
    )
    _add_down(incident, tracks, {p: down[p] for p in hit})
    incident.population = len(tracks)
    state.open[_key(SHUTDOWN, cc)] = incident


def _add_down(
    incident: OpenIncident, tracks: dict[str, ProbeTrack], down: dict[str, datetime]
) -> None:
    for pid, since in down.items():
        incident.down.setdefault(pid, since)
        if tracks[pid].asn not in incident.asns:
            incident.asns.append(tracks[pid].asn)
    incident.onset = _median_time(incident.down.values())


def _update_shutdown(
    state: DetectorState,
    incident: OpenIncident,
    tracks: dict[str, ProbeTrack],
    down: dict[str, datetime],
    hit: set[str],
    now: datetime,
    cfg: DetectorConfig,
    resolved: list[OpenIncident],
) -> None:
    fresh = {p: down[p] for p in hit if p not in incident.down}
    _add_down(incident, tracks, fresh)
    incident.estimated.extend(p for p in fresh if tracks[p].offline_since is None)
    for pid in incident.back.keys() & down.keys():
        del incident.back[pid]  # went down again
    still_down = [p for p in incident.down if p in down]
    if still_down:
        incident.last_seen = now
    enough_back = len(incident.back) * 2 >= len(incident.down)
    if len(still_down) < cfg.shutdown_probes and incident.back and enough_back:
        incident.resolved_at = _median_time(incident.back.values())
        incident.last_seen = max(incident.last_seen, incident.resolved_at)
        incident.rules.append(RULE_SHUTDOWN_BACK)
        _close(state, _key(SHUTDOWN, incident.cc), incident, resolved)


# --- blocking -----------------------------------------------------------------------------


def _observe_service(
    draft: _Draft, obs: Observation, cfg: DetectorConfig, resolved: list[OpenIncident]
) -> None:
    state = draft.state
    if obs.control:
        _observe_control(state, obs)
        return
    key = _key(obs.service, obs.cc)
    runs = draft.runs(key)
    run = runs.get(obs.probe_id)
    incident = state.open.get(key)
    if run is not None and obs.time < run.last:
        if incident is not None:
            _late(incident, obs, cfg)
        return
    run = runs[obs.probe_id] = _advance(draft.run(key, obs.probe_id, run), obs)
    if incident is not None:
        _update_blocking(incident, run, obs, cfg)
        _maybe_resolve(state, key, incident, obs.time, cfg, resolved, len(runs))
    elif obs.verdict == "blocked" and _after_resolution(state, key, obs.time):
        _maybe_open(state, key, runs, obs, cfg)


def _after_resolution(state: DetectorState, key: str, at: datetime) -> bool:
    """Spooled evidence from before the last resolution must not reopen that incident."""
    until = state.resolved_until.get(key)
    return until is None or at > until


def _observe_control(state: DetectorState, obs: Observation) -> None:
    if obs.verdict != "ok":
        return
    state.control_ok[obs.service] = state.control_ok.get(obs.service, 0) + 1
    for incident in state.open.values():
        if incident.service == obs.service and incident.cc != obs.cc:
            incident.control_ok += 1
            _add_unique(incident.rules, RULE_CONTROL)


def _advance(run: RunTrack | None, obs: Observation) -> RunTrack:
    run = run or RunTrack(asn=obs.asn, last=obs.time)
    run.asn, run.last = obs.asn, obs.time
    if obs.verdict == "blocked":
        run.run_start = run.run_start if run.run_count else obs.time
        run.run_count += 1
        run.last_blocked = obs.time
        run.confidence_sum += obs.confidence
        run.methods = sorted(set(run.methods) | set(obs.methods))
    elif obs.verdict == "ok":
        run.run_start, run.run_count, run.methods, run.confidence_sum = None, 0, [], 0.0
    return run


def _maybe_open(
    state: DetectorState,
    key: str,
    runs: dict[str, RunTrack],
    obs: Observation,
    cfg: DetectorConfig,
) -> None:
    recent = {
        pid: run
        for pid, run in runs.items()
        if run.run_count and run.last_blocked and obs.time - run.last_blocked <= cfg.confirm_window
    }
    rules = []
    if len(recent) >= cfg.confirm_probes:
        rules.append(RULE_OPEN_PROBES)
    if any(_repeated(run, cfg) for run in recent.values()):
        rules.append(RULE_OPEN_REPEAT)
    if not rules:
        return
    if state.control_ok.get(obs.service, 0):
        rules.append(RULE_CONTROL)
    incident = OpenIncident(
        id=_incident_id("blocking", obs.service, obs.cc, obs.time),
        kind="blocking",
        service=obs.service,
        cc=obs.cc,
        onset=min(run.run_start or obs.time for run in recent.values()),
        last_seen=obs.time,
        rules=rules,
        probes=sorted(recent),
        asns=sorted({run.asn for run in recent.values()}),
        methods=sorted({m for run in recent.values() for m in run.methods}),
        blocked=sum(run.run_count for run in recent.values()),
        confidence_sum=sum(run.confidence_sum for run in recent.values()),
        last_blocked=obs.time,
        control_ok=state.control_ok.get(obs.service, 0),
    )
    state.open[key] = incident


def _repeated(run: RunTrack, cfg: DetectorConfig) -> bool:
    if run.run_start is None or run.last_blocked is None:
        return False
    span = run.last_blocked - run.run_start
    return run.run_count >= cfg.repeat_count and span >= cfg.repeat_span


def _update_blocking(
    incident: OpenIncident, run: RunTrack, obs: Observation, cfg: DetectorConfig
) -> None:
    if obs.verdict == "blocked":
        _add_unique(incident.probes, obs.probe_id)
        if obs.asn not in incident.asns:
            incident.asns.append(obs.asn)
            _add_unique(incident.rules, RULE_JOIN_ASN)
        incident.methods = sorted(set(incident.methods) | set(obs.methods))
        incident.blocked += 1
        incident.confidence_sum += obs.confidence
        incident.last_blocked = incident.last_seen = max(incident.last_seen, obs.time)
        incident.recovery_start, incident.recovery_ok, incident.recovery_probes = None, 0, []
    elif obs.verdict == "ok":
        incident.recovery_start = incident.recovery_start or obs.time
        incident.recovery_ok += 1
        _add_unique(incident.recovery_probes, obs.probe_id)
    elif obs.verdict == "anomaly":
        _add_unique(incident.anomaly_probes, obs.probe_id)
        _add_unique(incident.anomaly_asns, obs.asn)
        if len(incident.anomaly_asns) >= cfg.anomaly_asns:
            _add_unique(incident.rules, RULE_ANOMALY)


def _late(incident: OpenIncident, obs: Observation, cfg: DetectorConfig) -> None:
    """A spooled measurement from before what we saw: it may move the onset earlier."""
    if obs.verdict != "blocked" or obs.time >= incident.onset:
        return
    if incident.onset - obs.time <= cfg.confirm_window:
        incident.onset = obs.time
        incident.blocked += 1
        incident.confidence_sum += obs.confidence


def _maybe_resolve(
    state: DetectorState,
    key: str,
    incident: OpenIncident,
    at: datetime,
    cfg: DetectorConfig,
    resolved: list[OpenIncident],
    reporting: int,
) -> None:
    if incident.kind != "blocking" or incident.recovery_start is None:
        return
    quiet = incident.last_blocked is None or at - incident.last_blocked >= cfg.recovery_quiet
    need_probes = min(cfg.recovery_probes, reporting)
    enough = incident.recovery_ok >= cfg.recovery_ok
    if quiet and enough and len(incident.recovery_probes) >= need_probes:
        incident.resolved_at = incident.recovery_start
        incident.rules.append(RULE_RESOLVE)
        _close(state, key, incident, resolved)


def _check_recoveries(
    state: DetectorState, now: datetime, cfg: DetectorConfig, resolved: list[OpenIncident]
) -> None:
    for key, incident in list(state.open.items()):
        if incident.kind == "blocking":
            reporting = len(state.runs.get(key, {}))
            _maybe_resolve(state, key, incident, now, cfg, resolved, reporting)


def _close(
    state: DetectorState, key: str, incident: OpenIncident, resolved: list[OpenIncident]
) -> None:
    del state.open[key]
    assert incident.resolved_at is not None
    state.resolved_until[key] = incident.resolved_at
    resolved.append(incident)


# --- snapshots and changes ----------------------------------------------------------------


def _changes(
    before: dict[str, Incident], state: DetectorState, resolved: list[OpenIncident]
) -> list[Change]:
    changes: list[Change] = []
    for incident in resolved:
        changes.append(Change("incident.resolved", _snapshot(incident)))
    for key, incident in state.open.items():
        now = _snapshot(incident)
        old = before.get(key)
        if old is None:
            changes.append(Change("incident.opened", now))
        elif _significant(old) != _significant(now):
            changes.append(Change("incident.updated", now))
    return changes


def _significant(incident: Incident) -> tuple[object, ...]:
    return (incident.asns, incident.methods, incident.onset)


def _snapshot(incident: OpenIncident) -> Incident:
    kind: IncidentKind = "shutdown" if incident.kind == "shutdown" else "blocking"
    probes = len(incident.down) if kind == "shutdown" else len(incident.probes)
    return Incident(
        id=incident.id,
        kind=kind,
        service=incident.service,
        cc=incident.cc,
        asns=tuple(sorted(incident.asns)),
        onset=incident.onset,
        last_seen=incident.last_seen,
        resolved_at=incident.resolved_at,
        methods=tuple(incident.methods),
        confidence=_confidence(incident),
        probes=probes,
        evidence=tuple(_evidence(incident)),
        rules=tuple(incident.rules),
        rules_version=RULES_VERSION,
    )


def _confidence(incident: OpenIncident) -> float:
    if incident.kind == "shutdown":
        share = len(incident.down) / max(incident.population, len(incident.down), 1)
        return round(min(0.99, 0.5 + 0.5 * share), 3)
    mean = incident.confidence_sum / max(incident.blocked, 1)
    value = 1 - (1 - min(mean, 1.0)) ** min(len(incident.probes), 5)
    if RULE_ANOMALY in incident.rules:
        value += 0.05
    if RULE_CONTROL in incident.rules:
        value += 0.05
    return round(min(0.99, max(0.0, value)), 3)


def _evidence(incident: OpenIncident) -> list[str]:
    if incident.kind == "shutdown":
        return _shutdown_evidence(incident)
    lines = [
        f"{incident.blocked} blocked measurements from {_n(len(incident.probes), 'probe')} "
        f"in {_n(len(incident.asns), 'network')} ({', '.join(incident.methods) or 'no method'})."
    ]
    if RULE_ANOMALY in incident.rules:
        lines.append(
            f"Unconfirmed anomalies from {_n(len(incident.anomaly_probes), 'more probe')} "
            f"in {_n(len(incident.anomaly_asns), 'network')}."
        )
    if RULE_CONTROL in incident.rules:
        lines.append(
            f"Control vantage points outside {incident.cc} reached {incident.service} "
            f"({_n(incident.control_ok, 'measurement')})."
        )
    if incident.recovery_ok and incident.resolved_at is not None:
        lines.append(
            f"Recovered: {_n(incident.recovery_ok, 'ok measurement')} from "
            f"{_n(len(incident.recovery_probes), 'probe')} and no blocking since."
        )
    return lines


def _shutdown_evidence(incident: OpenIncident) -> list[str]:
    silent = len(incident.estimated)
    offline = len(incident.down) - silent
    lines = [
        f"{_n(len(incident.down), 'probe')} of {incident.population} in "
        f"{_n(len(incident.asns), 'network')} lost connectivity "
        f"({offline} offline, {silent} silent)."
    ]
    if incident.back:
        lines.append(f"{_n(len(incident.back), 'probe')} reporting again.")
    return lines


# --- helpers ------------------------------------------------------------------------------


def _key(service: str, cc: str) -> str:
    return f"{service}|{cc}"


def _incident_id(kind: str, service: str | None, cc: str, at: datetime) -> str:
    return f"{kind}-{service or 'all'}-{cc}-{at:%Y%m%dT%H%M%SZ}"


def _median_time(times: Iterable[datetime]) -> datetime:
    ordered = sorted(times)
    return ordered[(len(ordered) - 1) // 2]


def _clone(item: T) -> T:
    """A shallow copy of a plain dataclass; copy.copy costs 5x as much, per probe."""
    twin: T = object.__new__(type(item))
    twin.__dict__.update(item.__dict__)
    return twin


def _add_unique(items: list[T], item: T) -> None:
    if item not in items:
        items.append(item)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
