"""``censorwatch-probe run``: the volunteer's daemon, composed from the pieces.

Enrol once, check in for targets, schedule and network; then three loops: measuring (the
``Scheduler`` decides, the ``Engine`` measures, the ``Spool`` commits each round before
anything else), uploading (the ``Uploader`` settles batches by the collector's answers), and
checking in again now and then. Measuring never waits on the collector: with the collector or
the whole network gone, rounds go on (saying ``offline`` where that is what happened) and
wait in the spool with their original times.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from probe.daemon import config as settings
from probe.daemon import revocation
from probe.daemon.backoff import Backoff
from probe.daemon.client import (
    CheckIn,
    CollectorClient,
    Refused,
    TokenRevoked,
    Unreachable,
)
from probe.daemon.schedule import DataBudget, Plan, Round, Scheduler, Window
from probe.daemon.spool import Limits, Spool
from probe.daemon.state import Credentials, StateDir
from probe.daemon.upload import Uploader
from probe.measure.dns import network_resolver
from probe.measure.engine import Engine, Settings
from probe.measure.network import Resolver, ResolverSpecError, parse_resolver
from probe.measure.sockets import SocketNetwork, Timing
from probe.measure.trace import TraceBudget
from probe.model import ProbeInfo
from probe.targets import TargetList, TargetListError, load, load_default, parse

log = logging.getLogger("censorwatch.probe")

EXIT_REVOKED: Final = 3
CHECK_IN_FILE: Final = "check-in.json"
MIN_CHECK_IN_SECONDS: Final = 60.0
ESTIMATED_BYTES_PER_ENDPOINT: Final = 16_000
"""Traffic charged to the data budget per endpoint tested, on top of the upload: DNS through
two resolvers, a TCP connect, TLS handshakes with the service's and the control SNI (each
with a certificate chain of a few KB), an HTTP request where asked. Deliberately generous:
the budget should pause windows early rather than late."""


class DaemonError(Exception):
    """Stops the daemon with a message for the volunteer (exit status 2)."""


@dataclass(frozen=True)
class Options:
    collector: str
    state: StateDir
    config: settings.Config
    enrolment_token: str | None = None
    metrics_listen: tuple[str, int] | None = None


class Daemon:
    def __init__(self, options: Options, client: CollectorClient) -> None:
        self.options = options
        self.config = options.config
        self.client = client
        self.state = options.state
        self.spool = Spool(
            self.state.spool_path,
            Limits(
                max_bytes=self.config.spool.max_bytes,
                max_age_seconds=self.config.spool.max_age_days * 86400,
                quarantine_max_items=self.config.spool.quarantine_max_items,
                quarantine_max_bytes=self.config.spool.quarantine_max_bytes,
            ),
        )
        self.rng = random.Random()
        self.backoff = Backoff(
            base=self.config.upload.backoff_base_seconds, cap=self.config.upload.backoff_cap_seconds
        )
        self.wake_uploader = asyncio.Event()
        self.targets_changed = asyncio.Event()
        self.credentials: Credentials | None = None
        self.check_in: CheckIn | None = None
        self.targets = TargetList("<none>")
        self.scheduler: Scheduler | None = None
        self.uploader: Uploader | None = None
        self.network = SocketNetwork(
            Timing(timeout=self.config.timeout),
            self.config.ca_file,
            raw=None if self.config.raw_packets else False,
        )
        self.trace_budget = TraceBudget()  # across rounds: one trace per target an hour
        self.network_resolver = _network_resolver(self.config.resolver)
        self.control_resolvers = _control_resolvers(self.config.control_resolvers)
        self.rounds: set[asyncio.Task[None]] = set()
        budget_mb = self.config.schedule.watch_max_mb_per_day
        self.budget = DataBudget(None if budget_mb is None else int(budget_mb * 1_000_000))

    async def close(self) -> None:
        for task in self.rounds:
            task.cancel()
        await asyncio.gather(*self.rounds, return_exceptions=True)
        await self.network.close()
        self.spool.close()

    # -- start-up ---------------------------------------------------------------------

    async def start(self) -> None:
        self.credentials = await self._enrolled()
        self.uploader = Uploader(
            self.spool,
            self.client,
            self.credentials.token,
            self.config.upload.batch_size,
            self.backoff,
            self.rng,
        )
        cached = self.state.read_json(CHECK_IN_FILE)
        if cached is not None:
            self.check_in = msgspec.convert(cached, CheckIn)
        if self.check_in is None or self.config.targets is None:
            await self._check_in_until_done()
        self._apply_check_in()

    async def _enrolled(self) -> Credentials:
        stored = self.state.credentials(self.options.collector)
        if stored is not None and stored.revoked_at is None:
            return stored
        token = self.options.enrolment_token
        if stored is not None:
            if not revocation.may_enrol_again(stored, token):
                raise revocation.ProbeRevoked(
                    f"the collector revoked this probe's token at {stored.revoked_at}; "
                    + revocation.advice(self.options.collector)
                )
            moved = self.spool.quarantine_all(
                f"measured as probe {stored.probe_id}, whose token the collector revoked"
            )
            log.warning(
                "enrolling again with a new enrolment token; %d measurement(s) of the revoked "
                "probe %s are quarantined, not uploaded",
                moved,
                stored.probe_id,
            )
        failures = 0
        while True:
            try:
                enrolment = await self.client.enrol(token)
            except Unreachable as exc:
                failures += 1
                wait = self.backoff.delay(failures, self.rng.random())
                log.warning("enrolment: %s; trying again in %.0f s", exc, wait)
                await asyncio.sleep(wait)
                continue
            except Refused as exc:
                raise DaemonError(f"enrolment refused: {exc}") from exc
            credentials = Credentials(
                self.options.collector,
                enrolment.probe_id,
                enrolment.token,
                enrolment_sha256=revocation.fingerprint(token),
            )
            self.state.save_credentials(credentials)
            self.spool.set_status({"revoked": None})
            log.info("enrolled as probe %s", enrolment.probe_id)
            return credentials

    def revoked(self, exc: TokenRevoked) -> str:
        """Record that the collector refused the token (so a restart does not hammer it,
        and ``status`` says what to do); the message for the log."""
        message = f"{exc}. {revocation.advice(self.options.collector)}"
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if self.credentials is not None:
            try:
                self.state.save_credentials(dataclasses.replace(self.credentials, revoked_at=at))
            except OSError as error:
                log.warning("cannot record the revocation in credentials.json: %s", error)
        self.spool.set_status({"revoked": {"at": at, "message": message}})
        return message

    async def _check_in_until_done(self) -> None:
        failures = 0
        while not await self._check_in_once():
            if self.check_in is not None or self.config.targets is not None:
                return  # measure with what we have; the check-in loop keeps trying
            failures += 1
            await asyncio.sleep(self.backoff.delay(failures, self.rng.random()))

    async def _check_in_once(self) -> bool:
        assert self.credentials is not None
        try:
            answer = await self.client.check_in(self.credentials.token)
        except (Unreachable, Refused) as exc:
            log.warning("check-in: %s", exc)
            return False
        self.check_in = answer
        try:
            self.state.write_json(CHECK_IN_FILE, msgspec.to_builtins(answer))
        except OSError as exc:  # a full disk: the answer is used all the same
            log.warning("check-in: cannot keep the answer in %s: %s", CHECK_IN_FILE, exc)
        return True

    def _apply_check_in(self) -> None:
        self.targets = self._target_list()
        plan = self._plan()
        self._record_watch()
        judged = {s.name: s.category for s in self.targets.services if not s.is_control}
        if self.scheduler is None:
            self.scheduler = Scheduler(plan, judged, time.monotonic(), self.rng)
        else:
            self.scheduler.plan = plan
            self.scheduler.replace_services(judged, time.monotonic())
        self.targets_changed.set()

    def _target_list(self) -> TargetList:
        try:
            if self.config.targets is not None:
                targets = load(self.config.targets)
            elif self.check_in is not None:
                targets = self._pushed(
                    parse(self.check_in.targets.text, "<collector's target list>")
                )
            else:
                targets = load_default()
        except TargetListError as exc:
            raise DaemonError(str(exc)) from exc
        if not targets.controls:
            targets = TargetList(targets.source, targets.services + load_default().controls)
        return targets

    def _pushed(self, targets: TargetList) -> TargetList:
        """A list from the collector, less endpoints on local addresses unless the
        settings allow them (``allow_private_targets``): a collector must not turn the
        probe into a scanner of the volunteer's own network."""
        if self.config.allow_private_targets:
            self.spool.set_status({"refused_targets": []})
            return targets
        kept, refused = targets.without_local()
        if refused:
            log.warning(
                "check-in: refused %d target(s) on local addresses (allow_private_targets is "
                "off): %s",
                len(refused),
                ", ".join(refused),
            )
        self.spool.set_status({"refused_targets": list(refused)})
        return kept

    def _plan(self) -> Plan:
        chosen = self.config.schedule
        given = self.check_in.schedule if self.check_in is not None else None
        interval = chosen.interval_seconds or (given.interval_seconds if given else 900.0)
        jitter = chosen.jitter_seconds
        if jitter is None:
            jitter = given.jitter_seconds if given else 120.0
        categories = chosen.categories
        if categories is None:
            categories = {"messenger": interval / 3}
        return Plan(
            interval,
            jitter,
            categories,
            max(1, chosen.max_rounds),
            windows=self._windows(),
            min_interval=chosen.watch_min_interval_seconds,
        )

    def _windows(self) -> tuple[Window, ...]:
        """The collector's watch windows on the scheduler's (monotonic) clock, unless the
        volunteer turned them off or today's data budget is spent."""
        if not self.config.schedule.watch or self.check_in is None:
            return ()
        wall = dt.datetime.now(dt.UTC)
        if not self.budget.allows_windows(wall.date().isoformat()):
            return ()
        mono = time.monotonic()

        def on_clock(moment: dt.datetime) -> float:
            return mono + (moment - wall).total_seconds()

        return tuple(
            Window(
                on_clock(w.start),
                on_clock(w.end),
                frozenset(w.services) if w.services is not None else None,
                w.intervals,
            )
            for w in self.check_in.watch.windows
            if w.end > wall
        )

    def _charge(self, measurements: list[Any]) -> None:
        """Count a round's traffic against the data budget; pause windows when it is spent."""
        day = dt.datetime.now(dt.UTC).date().isoformat()
        allowed = self.budget.allows_windows(day)
        endpoints = sum(len(m.analysis.endpoints) for m in measurements)
        uploaded = sum(len(msgspec.json.encode(m)) for m in measurements)
        self.budget.charge(uploaded + ESTIMATED_BYTES_PER_ENDPOINT * endpoints, day)
        if allowed and not self.budget.allows_windows(day) and self.scheduler is not None:
            log.warning("watch windows paused until tomorrow (UTC): today's data budget is spent")
            self.scheduler.plan = self._plan()
        self.spool.set_status({"watch_bytes_today": self.budget.spent(day)})

    def probe_info(self) -> ProbeInfo:
        assert self.credentials is not None
        cc = self.check_in.cc if self.check_in else None
        asn = self.check_in.asn if self.check_in else None
        resolver_asn = self.network_resolver.asn if self.network_resolver else None
        attested = self.check_in.attestation if self.check_in else None
        return ProbeInfo(
            id=self.credentials.probe_id,
            asn=asn,
            cc=cc,
            network_resolver_asn=resolver_asn,
            missing_evidence=settings.MISSING_EVIDENCE,
            attestation=attested,
        )

    # -- the loops --------------------------------------------------------------------

    async def run(self) -> None:
        await self.start()
        loops = [self._measure_loop(), self._upload_loop(), self._check_in_loop()]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _measure_loop(self) -> None:
        assert self.scheduler is not None
        while True:
            round_ = self.scheduler.take_due(time.monotonic())
            if round_ is not None:
                task = asyncio.create_task(self._round(round_))
                self.rounds.add(task)
                task.add_done_callback(self.rounds.discard)
                continue
            self._record_next_run()
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        assert self.scheduler is not None
        due = self.scheduler.next_due(time.monotonic())
        wait = 3600.0 if due is None else max(0.0, due - time.monotonic())
        self.targets_changed.clear()
        await _until_set(self.targets_changed, max(wait, 0.01))

    async def _round(self, round_: Round) -> None:
        assert self.scheduler is not None
        names = set(round_.services)
        chosen = tuple(s for s in self.targets.services if s.name in names or s.is_control)
        try:
            engine = Engine(
                self.network,
                self.network_resolver,
                self.control_resolvers,
                Settings(concurrency=self.config.concurrency),
                self.probe_info(),
                self.trace_budget,
            )
            report = await engine.run(TargetList(self.targets.source, chosen))
            self.spool.add(report.measurements)
            self.wake_uploader.set()
            self._record_verdicts(report.measurements, report.offline)
            self._charge(report.measurements)
        except Exception:
            log.exception("measurement round failed")
        finally:
            self.scheduler.finished(round_, time.monotonic())
            self.targets_changed.set()  # wake the loop: there may be room for another round

    def _record_verdicts(self, measurements: list[Any], offline: bool) -> None:
        verdicts = {
            m.service: {
                "verdict": m.analysis.verdict,
                "methods": list(m.analysis.methods),
                "start_time": m.start_time.isoformat(timespec="seconds"),
            }
            for m in measurements
            if m.category != "control"
        }
        previous = self.spool.status().get("last_verdicts")
        merged = {**(previous if isinstance(previous, dict) else {}), **verdicts}
        self.spool.set_status({"last_verdicts": merged, "offline": offline})
        log.info(
            "round: %s%s",
            ", ".join(f"{k}={v['verdict']}" for k, v in sorted(verdicts.items())),
            " (this network looks offline)" if offline else "",
        )

    def _record_watch(self) -> None:
        windows = self.check_in.watch.windows if self.check_in is not None else []
        self.spool.set_status({"watch": [msgspec.to_builtins(w) for w in windows]})

    def _record_next_run(self) -> None:
        assert self.scheduler is not None
        due = self.scheduler.next_due(time.monotonic())  # services already running are not "next"
        if due is not None:
            self.spool.set_status({"next_run": time.time() + max(0.0, due - time.monotonic())})

    async def _upload_loop(self) -> None:
        assert self.uploader is not None
        reported: dict[str, object] = {}
        while True:
            self.wake_uploader.clear()
            outcome = await self.uploader.step()
            seen: dict[str, object] = {
                "last_upload": self.uploader.last_upload,
                "last_error": self.uploader.last_error,
            }
            if seen != reported:  # an idle poll writes nothing (each write is an fsync)
                self.spool.set_status(seen)
                reported = seen
            if outcome.wait is not None:
                await asyncio.sleep(outcome.wait)
            elif outcome.settled == 0:
                await _until_set(self.wake_uploader, self.config.upload.idle_seconds)

    def _check_in_interval(self) -> float:
        """Our own interval, or sooner when the collector asks (it cannot ask for more than
        once a minute)."""
        asked = self.check_in.check_in_seconds if self.check_in is not None else None
        if asked is None:
            return self.config.check_in_seconds
        return min(self.config.check_in_seconds, max(MIN_CHECK_IN_SECONDS, asked))

    async def _check_in_loop(self) -> None:
        while True:
            await asyncio.sleep(self._check_in_interval())
            previous = (
                (self.check_in.targets.sha256, self.check_in.watch) if self.check_in else None
            )
            if await self._check_in_once():
                assert self.check_in is not None
                if (self.check_in.targets.sha256, self.check_in.watch) != previous:
                    self._apply_check_in()


async def _until_set(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` pass. Not ``asyncio.wait_for``: on Python 3.11 it
    returns and drops a cancellation that lands in the turn the event is set, and a loop woken
    by a finished round just as SIGTERM arrives would never stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _network_resolver(text: str | None) -> Resolver | None:
    try:
        return network_resolver(text)
    except ResolverSpecError as exc:
        raise DaemonError(f"resolver: {exc}") from exc


def _control_resolvers(texts: tuple[str, ...]) -> list[Resolver]:
    try:
        return [parse_resolver(t) for t in texts]
    except ResolverSpecError as exc:
        raise DaemonError(f"control_resolvers: {exc}") from exc


async def run(options: Options) -> int:
    """The daemon until SIGTERM/SIGINT (0) or a revoked token (``EXIT_REVOKED``)."""
    client = CollectorClient(options.collector.rstrip("/"))
    daemon = Daemon(options, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = None
    try:
        if options.metrics_listen is not None:
            from probe.daemon.status import MetricsServer

            metrics = MetricsServer(daemon, *options.metrics_listen)
            await metrics.start()
        return await _until_stopped(daemon.run(), stop)
    except TokenRevoked as exc:
        log.error("%s", daemon.revoked(exc))
        return EXIT_REVOKED
    except revocation.ProbeRevoked as exc:
        log.error("%s", exc)
        return EXIT_REVOKED
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if metrics is not None:
            await metrics.close()
        await daemon.close()
        await client.close()


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> int:
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("stopped")
        return 0
    task.result()
    return 0
