"""Sans-I/O incident detector: observations in, incident changes out.

`detect(state, observations, now)` is pure: it never mutates `state`, it returns the next
state (JSON-serialisable, so the collector stores it between cycles) and the changes to
announce — at most one per incident per call, so a national event is one alert, not one per
probe or ASN.

How blocking is decided
-----------------------
Each (country, ASN, service) *cell* remembers the latest verdict of every independent
*voice* heard in the last `window` (collector receive time, never the probe's clock). A
voice is one probe, or one group of probes the collector could not tell apart (one
enrolment token without history): a group says one thing however many probes it has.
`blocked` is *strong* evidence (the probe saw a fingerprint or a same-path contrast: bogon,
injection, hijack, block page, interception, NXDOMAIN/SERVFAIL/REFUSED against a resolving
control, a reset against a working control SNI); `anomaly` is *weak*; `ok` is a success;
`down` and `offline` say nothing about blocking.

Two one-sided binomial tests run per cell and once per (country, service) over every voice
of the country:

- ``block.open.strong`` — at least ``k`` of ``n`` voices show strong evidence, against a
  baseline rate ``q0 = max(strong_floor, the cell's own history, the same ASN's other
  services now)``; fires when P(Binomial(n, q0) >= k) < `alpha`.
- ``block.open.pattern`` — at least `pattern_min` voices fail (strong or weak) and
  P(Binomial(n, p0) >= k) < `alpha` with ``p0 = max(weak_floor, history, the same ASN's other
  services now)`` (nationally: the country's other services now). A flaky network fails
  every service and raises its own baseline; blocking fails one. Weak evidence therefore
  opens an incident only as a pattern across voices, never from one probe.

History is an exponentially decayed count (half-life `history_half_life`) of the cell's
measurements, starting from a prior of `prior_rate` worth `prior_weight` measurements, and
learnt only from what still looked normal a window later: each cycle's measurements wait
in thirds of a window and become history once a window has passed, and a cycle that does
not look normal (a test's p < `learn_guard`, or an incident) drops what waits. So neither a
long block nor its onset becomes the baseline: cycles every few seconds hear a round one
probe at a time, and a block's first failing voices (1, 2, 3 of 6) look like noise until
the pattern is plain. While control probes measuring a service
mostly fail, the service is down, not blocked, and no test runs for it.

The false-alarm rate. Under no censorship each voice's latest verdict is an independent
Bernoulli draw with a rate at most the baseline (the baseline is the largest of several
upper estimates), so each test fires with probability at most `alpha` (the binomial test is
exact, and conservative for discrete counts). New data arrives once per measuring round
(5 minutes), so a country with A ASNs and S services runs at most 2 (A + 1) S tests per
round. For 1,000 probes in A = 20 ASNs and S = 20 services: 840 tests per round, 8,640
rounds per month, 7.3 million tests; with `alpha` = 1e-7 the union bound gives at most 0.73
false incidents per country per month, at any independent noise level the baseline covers
(1 %, 5 %, 10 %: the prior starts at 10 % and history learns the rest). The bound is loose:
tests of overlapping windows are positively correlated. The strong test additionally
assumes a false fingerprint (captive portal, broken resolver) is rarer than `strong_floor`
= 1e-4 per voice that is not already in the cell's history; two such voices in a cell of
two give p = 1e-8, of four 6e-8 < alpha, which is why a block in a small ASN seen by two
fingerprinting probes opens. `tests/alerts/test_alerts_detector_statistics.py` checks the bound by
simulation at a larger alpha.

Confirmation and the rest:

- ``block.open.repeat`` — one voice saw strong evidence in `repeat_count` rounds (receive
  times at least `round_gap` apart) spanning `repeat_span`, while no other voice of its
  cell reaches the service: an incident, but one voice is never enough to confirm it.
- ``block.unconfirmed.voices`` — an incident whose failing voices weigh less than
  `min_voices` in total is ``unconfirmed`` (status in the API, delivered only to
  subscribers who opted in); a voice weighs 1 when vetted or established, less when new.
- ``block.join.asn`` — a test firing in another ASN of the country joins the open incident.
- ``block.contrast.control`` — control vantage points reached the service meanwhile.
- ``block.resolve.recovery`` — no test has held (p < `keep_alpha`, a looser threshold for
  hysteresis) for `recovery_quiet`, with at least `recovery_ok` `ok` voices in the
  incident's ASNs; resolved at the first `ok` after the evidence ended.
- ``shutdown.open.offline`` / ``shutdown.open.silent`` — at least `shutdown_probes` probes,
  and `shutdown_fraction` of those active, in a country (or in one ASN) are `offline` or
  went silent (no observation for `silent_after` though they reported every few minutes).
- ``shutdown.resolve.back`` — fewer than `shutdown_probes` still down and at least half of
  the incident's probes reporting again. Spooled measurements uploaded afterwards move the
  onset and the end to the median of the probes' own first-offline and first-back times.

Every incident cites its test and numbers in its first evidence line, e.g. "9 of 11
independent probes in AS9198 fail since 18:05 UTC against 0.4 % before; p < 1e-6".
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import msgspec

from alerts.model import Change, Incident, IncidentKind, Observation
from alerts.significance import binomial_tail, format_p, format_rate
from probe.vocabulary import rule

# 3: history is learnt a window late, so an onset never becomes its own baseline
RULES_VERSION = "3"

RULE_STRONG = rule(
    "block.open.strong",
    "binomial test: more voices showed on-probe evidence of blocking than the baseline allows",
    "alerts",
).id
RULE_PATTERN = rule(
    "block.open.pattern",
    "binomial test: a pattern of failures across voices that the baseline does not explain",
    "alerts",
).id
RULE_OPEN_REPEAT = rule(
    "block.open.repeat",
    "one voice saw the service blocked in several rounds, with on-probe evidence",
    "alerts",
).id
RULE_UNCONFIRMED = rule(
    "block.unconfirmed.voices",
    "fewer independent voices than the configured minimum: the incident is unconfirmed",
    "alerts",
).id
RULE_JOIN_ASN = rule(
    "block.join.asn",
    "another ASN's blocked reports joined an open incident of the same service and country",
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
NATIONAL = -1  # the ASN of a country-wide finding
T = TypeVar("T")
Status = Literal["strong", "weak", "ok"]
Family = Literal["strong", "pattern", "repeat"]


@dataclass(frozen=True)
class DetectorConfig:
    alpha: float = 1e-7
    keep_alpha: float = 1e-3
    join_alpha: float = 0.05
    learn_guard: float = 1e-3
    strong_floor: float = 1e-4
    weak_floor: float = 0.02
    prior_rate: float = 0.10
    prior_weight: float = 100.0
    history_half_life: timedelta = timedelta(hours=6)
    window: timedelta = timedelta(minutes=15)
    pattern_min: int = 3
    min_voices: float = 2.0
    round_gap: timedelta = timedelta(minutes=1)
    repeat_count: int = 3
    repeat_span: timedelta = timedelta(minutes=10)
    repeat_weight: float = 0.5
    recovery_ok: int = 3
    recovery_probes: int = 2
    recovery_quiet: timedelta = timedelta(minutes=15)
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


class Voice(msgspec.Struct, array_like=True):
    """The latest word of one independent voice on one service in one ASN (times: epoch s)."""

    status: str  # strong | weak | ok
    heard: float  # collector receive time of the latest observation
    time: float  # the probe's time of the latest observation
    weight: float
    since: float | None = None  # probe time the current failing run began
    strong_rounds: int = 0
    strong_since: float | None = None  # receive time the strong run began
    strong_heard: float | None = None  # receive time of the run's latest round
    methods: list[str] = []
    confidence: float = 0.0


@dataclass
class Cell:
    """One (service, country, ASN): its voices now and its decayed history."""

    voices: dict[str, Voice] = field(default_factory=dict)
    hist_fail: float = 0.0
    hist_strong: float = 0.0
    hist_total: float = 0.0
    hist_at: float = 0.0
    fresh_fail: float = 0.0  # this cycle's measurements, learnt after the tests ran
    fresh_strong: float = 0.0
    fresh_total: float = 0.0
    # [start, fail, strong, total] per third of a window, learnt once a window has passed
    pending: list[list[float]] = field(default_factory=list)
    n: int = 0  # voices held, and of them failing and strong: kept as voices change
    failing: int = 0
    strong: int = 0
    counted_at: float = 0.0  # when the voices that left the window were last dropped
    oldest: float = 0.0  # at most the earliest receive time of a voice held (0: unknown)


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
    confidence: float = 0.0
    evidence: list[str] = field(default_factory=list)
    voices: float = 0.0
    confirmed_at: datetime | None = None
    last_evidence: datetime | None = None
    recovery_start: datetime | None = None
    recovery_ok: int = 0
    control_ok: int = 0
    down: dict[str, datetime] = field(default_factory=dict)  # shutdown: probe -> went down
    estimated: list[str] = field(default_factory=list)  # down time is last-seen, not offline
    back: dict[str, datetime] = field(default_factory=dict)  # shutdown: probe -> came back
    population: int = 0
    resolved_at: datetime | None = None


@dataclass
class DetectorState:
    probes: dict[str, ProbeTrack] = field(default_factory=dict)
    cells: dict[str, Cell] = field(default_factory=dict)  # "svc|cc|asn" -> cell
    open: dict[str, OpenIncident] = field(default_factory=dict)  # "svc|cc" -> incident
    resolved_until: dict[str, datetime] = field(default_factory=dict)
    control_ok: dict[str, int] = field(default_factory=dict)  # service -> count
    control_last: dict[str, list[float]] = field(default_factory=dict)  # svc -> [ok, fail]

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str) -> DetectorState:
        return msgspec.json.decode(text, type=cls)


@dataclass
class _Draft:
    """The next state, sharing every entry this batch does not touch with the previous one.

    Probe tracks and cells are copied when first written, so a cycle costs what its
    observations touch. Open incidents are few and mutated deeply, so they are copied whole.
    """

    base: DetectorState
    state: DetectorState

    @classmethod
    def of(cls, base: DetectorState) -> _Draft:
        state = DetectorState(
            probes=dict(base.probes),
            cells=dict(base.cells),
            open=copy.deepcopy(base.open),
            resolved_until=dict(base.resolved_until),
            control_ok=dict(base.control_ok),
            control_last={k: list(v) for k, v in base.control_last.items()},
        )
        return cls(base, state)

    def probe(self, probe_id: str) -> ProbeTrack | None:
        """The probe's track, safe to change."""
        track = self.state.probes.get(probe_id)
        if track is not None and track is self.base.probes.get(probe_id):
            track = self.state.probes[probe_id] = _clone(track)
        return track

    def cell(self, key: str) -> Cell:
        """The cell, safe to change (its voices are replaced, never changed in place)."""
        cell = self.state.cells.get(key)
        if cell is None:
            cell = self.state.cells[key] = Cell()
        elif cell is self.base.cells.get(key):
            cell = self.state.cells[key] = _clone(cell)
            cell.voices = dict(cell.voices)
        return cell


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
    touched: set[str] = set()
    for obs in sorted(observations, key=lambda o: (o.time, o.heard)):
        _observe_probe(draft, obs, config)
        _observe_service(draft, obs, config, touched)
    _judge_blocking(draft, touched, now, config, resolved)
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
        confirmed_at=now,
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


# --- blocking: voices ---------------------------------------------------------------------


def _status(verdict: str) -> Status | None:
    if verdict == "blocked":
        return "strong"
    if verdict == "anomaly":
        return "weak"
    return "ok" if verdict == "ok" else None  # down/offline: nothing about blocking


def _observe_service(
    draft: _Draft, obs: Observation, cfg: DetectorConfig, touched: set[str]
) -> None:
    state = draft.state
    if obs.control:
        _observe_control(state, obs)
        return
    status = _status(obs.verdict)
    if status is None:
        return
    key = _cell_key(obs.service, obs.cc, obs.asn)
    cell = draft.cell(key)
    touched.add(key)
    cell.fresh_total += 1
    cell.fresh_fail += status != "ok"
    cell.fresh_strong += status == "strong"
    old = cell.voices.get(obs.speaker)
    voice = cell.voices[obs.speaker] = _heard(old, obs, status, cfg)
    # The counts follow the voices, so that no cycle walks every voice of every cell to
    # count them (at 10,000 probes: 200,000 voices a cycle). Inline: once per observation.
    if old is not None:
        cell.n -= 1
        cell.failing -= old.status != "ok"
        cell.strong -= old.status == "strong"
    cell.n += 1
    cell.failing += voice.status != "ok"
    cell.strong += voice.status == "strong"
    if voice.heard < cell.oldest:
        cell.oldest = voice.heard
    incident = state.open.get(_key(obs.service, obs.cc))
    recovering = incident is not None and status == "ok" and obs.asn in incident.asns
    if recovering and incident is not None and obs.time >= incident.onset:
        incident.recovery_ok += 1
        start = incident.recovery_start
        incident.recovery_start = obs.time if start is None else min(start, obs.time)


def _heard(voice: Voice | None, obs: Observation, status: Status, cfg: DetectorConfig) -> Voice:
    heard, time = _ts(obs.heard), _ts(obs.time)
    if voice is not None and time < voice.time:
        # Older than what this voice said last (spooled): it says nothing about now.
        return msgspec.structs.replace(voice, heard=max(voice.heard, heard))
    heard = max(heard, voice.heard) if voice is not None else heard
    was_failing = voice is not None and voice.status != "ok" and voice.since is not None
    since = None
    if status != "ok":
        since = voice.since if was_failing and voice is not None else time
    rounds, run_since, run_heard = 0, None, None
    if voice is not None and status != "ok" and voice.strong_heard is not None:
        rounds, run_since, run_heard = voice.strong_rounds, voice.strong_since, voice.strong_heard
    if status == "strong":
        if run_heard is None:
            rounds, run_since, run_heard = 1, heard, heard
        elif heard - run_heard >= cfg.round_gap.total_seconds():
            rounds, run_heard = rounds + 1, heard
    methods = sorted(set(obs.methods)) if status != "ok" else []
    return Voice(
        status, heard, time, obs.weight, since, rounds, run_since, run_heard, methods,
        obs.confidence,
    )  # fmt: skip


def _observe_control(state: DetectorState, obs: Observation) -> None:
    last = state.control_last.setdefault(obs.service, [0.0, 0.0])
    if obs.verdict == "ok":
        last[0] = max(last[0], _ts(obs.heard))
        state.control_ok[obs.service] = state.control_ok.get(obs.service, 0) + 1
        for incident in state.open.values():
            if incident.service == obs.service and incident.cc != obs.cc:
                incident.control_ok += 1
                _add_unique(incident.rules, RULE_CONTROL)
    elif obs.verdict in ("anomaly", "blocked", "down"):
        last[1] = max(last[1], _ts(obs.heard))


# --- blocking: tests ----------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One test's outcome in one scope (an ASN, or `NATIONAL`)."""

    family: Family
    asn: int
    k: int
    n: int
    p: float
    baseline: float
    voices: dict[str, Voice]  # the failing voices it counted
    asns: tuple[int, ...]

    def fires(self, cfg: DetectorConfig) -> bool:
        return self.family == "repeat" or self.p < cfg.alpha

    def holds(self, cfg: DetectorConfig) -> bool:
        return self.family == "repeat" or self.p < cfg.keep_alpha


@dataclass
class _Index:
    """Cells grouped by (service, country)."""

    groups: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, cells: Iterable[str]) -> _Index:
        index = cls()
        for key in cells:
            index.groups.setdefault(_group_of(key), []).append(key)
        return index


def _judge_blocking(
    draft: _Draft,
    touched: set[str],
    now: datetime,
    cfg: DetectorConfig,
    resolved: list[OpenIncident],
) -> None:
    state = draft.state
    t = _ts(now)
    index = _Index.of(state.cells)
    groups = {_group_of(key) for key in touched}
    groups.update(k for k, inc in state.open.items() if inc.kind == "blocking")
    for group in groups:
        for key in index.groups.get(group, ()):
            _recount(draft, key, t, cfg)
    suspicious: set[str] = set()
    rates = _Rates.of(state.cells, t, cfg)
    for group in sorted(groups):
        findings = _findings(state, index, rates, group, t, cfg)
        suspicious.update(
            _cell_key(*_split_group(group), f.asn) for f in findings if f.p < cfg.learn_guard
        )
        if any(f.asn == NATIONAL and f.p < cfg.learn_guard for f in findings):
            suspicious.update(index.groups.get(group, ()))
        _decide(state, group, findings, now, cfg, resolved)
    for key in touched:
        _learn(state, key, t, cfg, learn=key not in suspicious and not _in_incident(state, key))


def _recount(draft: _Draft, key: str, t: float, cfg: DetectorConfig) -> None:
    """Drop the cell's voices that left the window; its counts follow. Only a cell whose
    `oldest` bound has left the window is walked, about once a window."""
    horizon = t - cfg.window.total_seconds()
    cell = draft.state.cells[key]
    if cell.oldest < horizon:
        cell = draft.cell(key)
        cell.voices = {k: v for k, v in cell.voices.items() if v.heard >= horizon}
        voices = cell.voices.values()
        cell.n = len(cell.voices)
        cell.failing = sum(v.status != "ok" for v in voices)
        cell.strong = sum(v.status == "strong" for v in voices)
        cell.oldest = min((v.heard for v in voices), default=t)
    elif cell.counted_at == t:
        return
    else:
        cell = draft.cell(key)
    cell.counted_at = t


@dataclass
class _Rates:
    """Voices and failing voices now, summed per network, country and (service, country)
    over the cells counted within the window, once a cycle: the failing share of a
    network or a country outside the service under test is then a subtraction."""

    networks: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    countries: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    horizon: float = 0.0

    @classmethod
    def of(cls, cells: dict[str, Cell], t: float, cfg: DetectorConfig) -> _Rates:
        rates = cls(horizon=t - cfg.window.total_seconds())
        for key, cell in cells.items():
            if cell.counted_at >= rates.horizon:
                service, cc, asn = _split(key)
                for totals in (
                    rates.networks.setdefault((cc, asn), [0, 0]),
                    rates.countries.setdefault(cc, [0, 0]),
                    rates.groups.setdefault((service, cc), [0, 0]),
                ):
                    totals[0] += cell.n
                    totals[1] += cell.failing
        return rates

    def network(self, cc: str, asn: int, cell: Cell) -> float:
        """The failing share in this ASN now, outside `cell`'s service."""
        n, failing = self.networks.get((cc, asn), (0, 0))
        if cell.counted_at >= self.horizon:
            n, failing = n - cell.n, failing - cell.failing
        return failing / n if n else 0.0

    def country(self, cc: str, service: str) -> float:
        """The failing share in the country now, outside `service`."""
        n, failing = self.countries.get(cc, (0, 0))
        own_n, own_failing = self.groups.get((service, cc), (0, 0))
        n, failing = n - own_n, failing - own_failing
        return failing / n if n else 0.0


def _history(cells: Iterable[Cell], cfg: DetectorConfig) -> tuple[float, float]:
    """(failing rate, strong rate) the cells' history and the prior say to expect."""
    fail = strong = total = 0.0
    for cell in cells:
        fail, strong, total = (
            fail + cell.hist_fail,
            strong + cell.hist_strong,
            total + cell.hist_total,
        )
    weight = cfg.prior_weight
    rate = (fail + cfg.prior_rate * weight) / (total + weight)
    strong_rate = (strong + cfg.strong_floor * weight) / (total + weight)
    return rate, strong_rate


def _findings(
    state: DetectorState, index: _Index, rates: _Rates, group: str, t: float,
    cfg: DetectorConfig,
) -> list[Finding]:  # fmt: skip
    service, cc = _split_group(group)
    if _service_down(state, service, t, cfg):
        return []
    keys = index.groups.get(group, [])
    found: list[Finding] = []
    for key in keys:
        cell, asn = state.cells[key], _split(key)[2]
        net_now = rates.network(cc, asn, cell)
        counts = (cell.n, cell.failing, cell.strong)
        found += _tests(_held(cell), counts, asn, [cell], net_now, cfg)
        found += _repeats(cell, asn, cfg)
    if len(keys) > 1:  # one cell per ASN
        cells = [state.cells[k] for k in keys]
        national = _National(keys, cells)
        found += [
            _with_asns(f, keys, state, national.asns(), cfg) if f.fires(cfg) else f
            for f in _tests(national.voices, national.counts(), NATIONAL, cells,
                            rates.country(cc, service), cfg)
        ]  # fmt: skip
    return found


def _held(cell: Cell) -> Callable[[], dict[str, Voice]]:
    return lambda: cell.voices


class _National:
    """The country's voices on one service: a voice heard in several ASNs (a probe that
    moved) counts once, at its strongest. Counted from the cells' counts when no voice is
    in two cells; merged voice by voice only when needed."""

    def __init__(self, keys: list[str], cells: list[Cell]) -> None:
        self.keys, self.cells = keys, cells
        self.merged: tuple[dict[str, Voice], dict[str, int]] | None = None

    def counts(self) -> tuple[int, int, int]:
        n = sum(c.n for c in self.cells)
        if len(set().union(*(c.voices.keys() for c in self.cells))) == n:
            return n, sum(c.failing for c in self.cells), sum(c.strong for c in self.cells)
        voices = self.voices().values()
        failing = sum(v.status != "ok" for v in voices)
        return len(voices), failing, sum(v.status == "strong" for v in voices)

    def voices(self) -> dict[str, Voice]:
        return self._merge()[0]

    def asns(self) -> dict[str, int]:
        return self._merge()[1]

    def _merge(self) -> tuple[dict[str, Voice], dict[str, int]]:
        if self.merged is None:
            voices: dict[str, Voice] = {}
            asns: dict[str, int] = {}
            for key, cell in zip(self.keys, self.cells, strict=True):
                asn = _split(key)[2]
                for vid, voice in cell.voices.items():
                    if vid not in voices or _rank(voice) > _rank(voices[vid]):
                        voices[vid], asns[vid] = voice, asn
            self.merged = voices, asns
        return self.merged


def pattern_requirement(
    measured: float, rate: float, cfg: DetectorConfig = DetectorConfig()
) -> tuple[float, int]:
    """What ``block.open.pattern`` needs in a cell whose own history holds ``measured``
    measurements failing at ``rate`` (undecayed; no other service of the ASN failing now):
    (the baseline it tests against, the fewest voices that fire it when all of them fail).
    A young cell tests against the prior, so a small ASN needs history before its voices
    can be heard; ``weak_floor`` bounds how few voices any history can make enough."""
    baseline = max(
        cfg.weak_floor, _history([Cell(hist_fail=rate * measured, hist_total=measured)], cfg)[0]
    )
    voices = max(cfg.pattern_min, math.floor(math.log(cfg.alpha) / math.log(baseline)))
    while binomial_tail(voices, voices, baseline) >= cfg.alpha:
        voices += 1
    return baseline, voices


def _tests(
    voices: Callable[[], dict[str, Voice]],
    counts: tuple[int, int, int],
    asn: int,
    cells: list[Cell],
    now_rate: float,
    cfg: DetectorConfig,
) -> list[Finding]:
    """The strong and pattern tests over `counts` (voices, failing, strong); the failing
    voices themselves are gathered only for a test that fires, the one that names them."""
    n, failing, strong = counts
    if n == 0:
        return []
    rate, strong_rate = _history(cells, cfg)
    out: list[Finding] = []
    if strong:
        q0 = max(cfg.strong_floor, strong_rate)
        p = binomial_tail(strong, n, q0)
        named = _named(voices, p, cfg, lambda v: v.status == "strong")
        out.append(Finding("strong", asn, strong, n, p, q0, named, (asn,)))
    if failing >= cfg.pattern_min:
        p0 = max(cfg.weak_floor, rate, now_rate)
        p = binomial_tail(failing, n, p0)
        named = _named(voices, p, cfg, lambda v: v.status != "ok")
        out.append(Finding("pattern", asn, failing, n, p, p0, named, (asn,)))
    return out


def _named(
    voices: Callable[[], dict[str, Voice]], p: float, cfg: DetectorConfig,
    counted: Callable[[Voice], bool],
) -> dict[str, Voice]:  # fmt: skip
    if p >= cfg.alpha:
        return {}  # a finding that does not fire names nobody
    return {k: v for k, v in voices().items() if counted(v)}


def _with_asns(
    finding: Finding,
    keys: list[str],
    state: DetectorState,
    asn_of: dict[str, int],
    cfg: DetectorConfig,
) -> Finding:
    """A national finding names the ASNs whose own share stands out from its baseline,
    not every ASN where one probe's noise happened to fail at the time."""
    asns = []
    for key in keys:
        cell = state.cells[key]
        mine = cell.strong if finding.family == "strong" else cell.failing
        if mine and binomial_tail(mine, cell.n, finding.baseline) < cfg.join_alpha:
            asns.append(_split(key)[2])
    voices = {k: v for k, v in finding.voices.items() if asn_of[k] in asns}
    return replace(finding, asns=tuple(sorted(asns)), voices=voices or finding.voices)


def _repeats(cell: Cell, asn: int, cfg: DetectorConfig) -> list[Finding]:
    if cell.failing < cell.n or not cell.strong:
        return []  # another voice of the same network reaches it, or none saw evidence
    voices = cell.voices
    out = []
    for vid, v in voices.items():
        if v.status != "strong" or v.strong_since is None or v.strong_heard is None:
            continue
        span = v.strong_heard - v.strong_since
        long_enough = (
            v.strong_rounds >= cfg.repeat_count and span >= cfg.repeat_span.total_seconds()
        )
        if long_enough and v.weight >= cfg.repeat_weight:
            out.append(
                Finding("repeat", asn, v.strong_rounds, len(voices), 0.0, 0.0, {vid: v}, (asn,))
            )
    return out


def _service_down(state: DetectorState, service: str, t: float, cfg: DetectorConfig) -> bool:
    ok_at, fail_at = state.control_last.get(service, (0.0, 0.0))
    return fail_at > ok_at and t - fail_at <= cfg.window.total_seconds()


def _rank(voice: Voice) -> int:
    return {"ok": 0, "weak": 1, "strong": 2}[voice.status]


def _learn(state: DetectorState, key: str, t: float, cfg: DetectorConfig, *, learn: bool) -> None:
    """This cycle's measurements wait a window in `pending` before they become history, and
    a suspicious cycle drops what waits: a block heard one probe per cycle fails 1, 2, 3 of
    its voices first, which looks like noise, and those first failures must not become the
    baseline that its whole pattern is then tested against."""
    cell = state.cells[key]  # touched this cycle: already the draft's own copy
    if not learn:
        cell.pending = []
    elif cell.fresh_total:
        cell.pending = _pending(cell, t, cfg)
    fold = [b for b in cell.pending if _waited(b, t, cfg)]
    if fold:
        cell.pending = [b for b in cell.pending if not _waited(b, t, cfg)]
        for start, fail, strong, total in fold:
            _add_history(cell, start + _bucket(cfg), fail, strong, total, cfg)
    cell.fresh_fail = cell.fresh_strong = cell.fresh_total = 0.0


def _bucket(cfg: DetectorConfig) -> float:
    return cfg.window.total_seconds() / 3


def _waited(bucket: list[float], t: float, cfg: DetectorConfig) -> bool:
    """Whether a pending bucket (its start first) has waited its window: learnt at `t`."""
    return bucket[0] + _bucket(cfg) + cfg.window.total_seconds() <= t


def _pending(cell: Cell, t: float, cfg: DetectorConfig) -> list[list[float]]:
    """`cell.pending` with this cycle's measurements added to the bucket of `t` (a new list:
    the previous state may share the old one)."""
    start = t - t % _bucket(cfg)
    fresh = [cell.fresh_fail, cell.fresh_strong, cell.fresh_total]
    if cell.pending and cell.pending[-1][0] == start:
        last = cell.pending[-1]
        return [*cell.pending[:-1], [start, *(a + b for a, b in zip(last[1:], fresh, strict=True))]]
    return [*cell.pending, [start, *fresh]]


def _add_history(
    cell: Cell, at: float, fail: float, strong: float, total: float, cfg: DetectorConfig
) -> None:
    at = max(at, cell.hist_at)
    decay = 0.5 ** ((at - cell.hist_at) / cfg.history_half_life.total_seconds())
    if not cell.hist_at:
        decay = 1.0
    cell.hist_fail = cell.hist_fail * decay + fail
    cell.hist_strong = cell.hist_strong * decay + strong
    cell.hist_total = cell.hist_total * decay + total
    cell.hist_at = at


def _in_incident(state: DetectorState, key: str) -> bool:
    service, cc, asn = _split(key)
    incident = state.open.get(_key(service, cc))
    return incident is not None and asn in incident.asns


# --- blocking: incidents ------------------------------------------------------------------


def _decide(
    state: DetectorState,
    group: str,
    findings: list[Finding],
    now: datetime,
    cfg: DetectorConfig,
    resolved: list[OpenIncident],
) -> None:
    firing = sorted((f for f in findings if f.fires(cfg)), key=_strength)
    incident = state.open.get(group)
    if incident is None:
        if firing and _after_resolution(state, group, _onset(firing)):
            _open(state, group, firing, now, cfg)
        return
    if firing:
        _extend(incident, firing, now, cfg)
    if any(f.holds(cfg) for f in findings):
        incident.last_evidence = now
        incident.recovery_start, incident.recovery_ok = None, 0
        return
    _maybe_resolve(state, group, incident, now, cfg, resolved)


def _strength(finding: Finding) -> tuple[int, float]:
    return ({"strong": 0, "pattern": 1, "repeat": 2}[finding.family], finding.p)


def _onset(firing: list[Finding]) -> datetime:
    since = [v.since for v in firing[0].voices.values() if v.since is not None]
    return _dt(_median(since)) if since else _dt(max(v.time for v in firing[0].voices.values()))


def _after_resolution(state: DetectorState, key: str, at: datetime) -> bool:
    """Evidence from before the last resolution must not reopen that incident."""
    until = state.resolved_until.get(key)
    return until is None or at > until


def _open(
    state: DetectorState, group: str, firing: list[Finding], now: datetime, cfg: DetectorConfig
) -> None:
    service, cc = _split_group(group)
    incident = OpenIncident(
        id=_incident_id("blocking", service, cc, now),
        kind="blocking",
        service=service,
        cc=cc,
        onset=_onset(firing),
        last_seen=now,
        rules=[],
        control_ok=state.control_ok.get(service, 0),
    )
    if incident.control_ok:
        incident.rules.append(RULE_CONTROL)
    state.open[group] = incident
    _extend(incident, firing, now, cfg, opening=True)
    incident.last_evidence = now


def _extend(
    incident: OpenIncident, firing: list[Finding], now: datetime, cfg: DetectorConfig,
    *, opening: bool = False,
) -> None:  # fmt: skip
    voices: dict[str, Voice] = {}
    for finding in firing:
        _add_unique(incident.rules, _family_rule(finding.family))
        for asn in finding.asns:
            if asn not in incident.asns:
                incident.asns.append(asn)
                if not opening:
                    _add_unique(incident.rules, RULE_JOIN_ASN)
        voices.update(finding.voices)
    known = set(incident.probes)
    incident.probes.extend(vid for vid in voices if vid not in known)
    incident.methods = sorted(
        set(incident.methods) | {m for v in voices.values() for m in v.methods}
    )
    incident.voices = max(incident.voices, sum(v.weight for v in voices.values()))
    incident.last_seen = max(incident.last_seen, _dt(max(v.time for v in voices.values())))
    confirmable = any(f.family != "repeat" for f in firing)
    if incident.confirmed_at is None and confirmable and incident.voices >= cfg.min_voices:
        incident.confirmed_at = now
        if RULE_UNCONFIRMED in incident.rules:
            incident.rules.remove(RULE_UNCONFIRMED)
    if incident.confirmed_at is None:
        _add_unique(incident.rules, RULE_UNCONFIRMED)
    incident.confidence = _confidence(firing[0], incident.confirmed_at is not None)
    incident.evidence = [_line(incident, f) for f in firing[:3]]
    incident.evidence += _context_lines(incident, cfg)


def _family_rule(family: Family) -> str:
    return {"strong": RULE_STRONG, "pattern": RULE_PATTERN, "repeat": RULE_OPEN_REPEAT}[family]


def _confidence(best: Finding, confirmed: bool) -> float:
    if best.family == "repeat":
        value = 0.6
    else:
        cap = 0.99 if best.family == "strong" else 0.9
        value = min(cap, 1 - best.p**0.25)
    return round(value if confirmed else value / 2, 3)


def _line(incident: OpenIncident, finding: Finding) -> str:
    where = f"in {incident.cc}" if finding.asn == NATIONAL else f"in AS{finding.asn}"
    since = _median([v.since for v in finding.voices.values() if v.since is not None] or [0.0])
    clock = f"{_dt(since):%H:%M} UTC"
    if finding.family == "repeat":
        return (
            f"1 probe {where} saw {incident.service} blocked with on-probe evidence in "
            f"{finding.k} rounds since {clock}, and no other probe there reaches it "
            f"({RULE_OPEN_REPEAT})."
        )
    what = "see it blocked with on-probe evidence" if finding.family == "strong" else "fail"
    return (
        f"{finding.k} of {finding.n} independent probes {where} {what} since {clock} "
        f"against {format_rate(finding.baseline)} before; {format_p(finding.p)} "
        f"({_family_rule(finding.family)})."
    )


def _context_lines(incident: OpenIncident, cfg: DetectorConfig) -> list[str]:
    lines = []
    if incident.confirmed_at is None:
        lines.append(
            f"Unconfirmed: the failing probes weigh {incident.voices:.2g} independent voices, "
            f"fewer than the {cfg.min_voices:g} needed ({RULE_UNCONFIRMED})."
        )
    if RULE_CONTROL in incident.rules:
        lines.append(
            f"Control vantage points outside {incident.cc} reached {incident.service} "
            f"({_n(incident.control_ok, 'measurement')})."
        )
    return lines


def _maybe_resolve(
    state: DetectorState,
    group: str,
    incident: OpenIncident,
    now: datetime,
    cfg: DetectorConfig,
    resolved: list[OpenIncident],
) -> None:
    if incident.last_evidence is not None and now - incident.last_evidence < cfg.recovery_quiet:
        return
    service, cc = _split_group(group)
    cells = [state.cells.get(_cell_key(service, cc, asn)) for asn in incident.asns]
    voices = [v for c in cells if c is not None for v in c.voices.values()]
    ok = sum(v.status == "ok" for v in voices)
    need = max(1, min(cfg.recovery_probes, len(voices)))
    if incident.recovery_ok >= cfg.recovery_ok and ok >= need:
        incident.resolved_at = incident.recovery_start or now
        incident.last_seen = max(incident.last_seen, incident.resolved_at)
        incident.rules.append(RULE_RESOLVE)
        incident.evidence.append(
            f"Recovered: {_n(incident.recovery_ok, 'ok measurement')} from "
            f"{_n(ok, 'probe')} and no test holding since."
        )
        _close(state, group, incident, resolved)


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
        if old is None or (old.status == "unconfirmed" and now.status == "open"):
            changes.append(Change("incident.opened", now))  # confirmation opens it for all
        elif _significant(old) != _significant(now):
            changes.append(Change("incident.updated", now))
    return changes


def _significant(incident: Incident) -> tuple[object, ...]:
    return (incident.asns, incident.methods, incident.onset, incident.status)


def _snapshot(incident: OpenIncident) -> Incident:
    kind: IncidentKind = "shutdown" if incident.kind == "shutdown" else "blocking"
    if kind == "shutdown":
        probes, evidence, confidence = (
            len(incident.down),
            _shutdown_evidence(incident),
            _shutdown_confidence(incident),
        )
        voices = float(len(incident.down))
    else:
        probes, evidence, confidence = len(incident.probes), incident.evidence, incident.confidence
        voices = incident.voices
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
        confidence=confidence,
        probes=probes,
        evidence=tuple(evidence),
        rules=tuple(incident.rules),
        rules_version=RULES_VERSION,
        confirmed_at=incident.confirmed_at,
        voices=round(voices, 3),
    )


def _shutdown_confidence(incident: OpenIncident) -> float:
    share = len(incident.down) / max(incident.population, len(incident.down), 1)
    return round(min(0.99, 0.5 + 0.5 * share), 3)


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


def _cell_key(service: str, cc: str, asn: int) -> str:
    return f"{service}|{cc}|{asn}"


def _split(key: str) -> tuple[str, str, int]:
    service, cc, asn = key.rsplit("|", 2)
    return service, cc, int(asn)


def _split_group(group: str) -> tuple[str, str]:
    service, cc = group.rsplit("|", 1)
    return service, cc


def _group_of(key: str) -> str:
    return key.rsplit("|", 1)[0]


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


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
