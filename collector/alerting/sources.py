"""The event-source poller: fetch each due source, parse it, store its events, record how.

Every ``source_poll_seconds`` each replica claims a few due sources through the database
(`collector.store.sources.claim_due`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
conditional update on SQLite), so a source is polled once whatever the number of replicas.
The fetch and the parse happen outside any transaction, bounded in time and size
(`collector.alerting.feeds`); the events and the outcome are then written in one
transaction. A source that fails (unreachable, hostile, malformed) gets its error recorded
and keeps every event it brought before: nothing is deleted unless a feed parsed in full.

``/metrics`` gets ``censorwatch_event_source_*`` from this poller's cache of the sources
(refreshed each tick), never from the database at scrape time; the per-source series are
bounded by the sources an operator registered (at most `MAX_LABELLED` of them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncConnection
from yarl import URL

from alerts.events import (
    FORMATS,
    EventFeedError,
    Horizon,
    ImportOptions,
    Parsed,
    options_for,
    parse,
    sniff,
)
from collector.alerting.feeds import (
    REASONS,
    FetchError,
    FetchLimits,
    check_resolves_public,
    check_url,
    fetch,
)
from collector.config import Config
from collector.store import events as eventstore
from collector.store import sources as sourcestore
from collector.store.db import Database
from collector.store.sources import NewSource, Source

log: Final = logging.getLogger(__name__)
BATCH: Final = 4  # sources claimed per tick and replica
MAX_LABELLED: Final = 200
OUTCOMES: Final = ("ok", "not_modified", "error")


@dataclass(frozen=True)
class PollSettings:
    tick_seconds: float
    limits: FetchLimits
    history: dt.timedelta  # recurring entries expand this far back …
    ahead: dt.timedelta  # … and this far ahead

    @classmethod
    def of(cls, config: Config) -> PollSettings:
        limits = FetchLimits(
            config.source_timeout_seconds,
            config.source_max_bytes,
            config.source_allow_private,
            frozenset(config.source_private_hosts),
        )
        return cls(
            config.source_poll_seconds,
            limits,
            dt.timedelta(days=config.correlation_history_days),
            dt.timedelta(days=config.event_horizon_days),
        )

    @property
    def lease(self) -> dt.timedelta:
        """Longer than a fetch and a parse can take, so a live claim never lapses."""
        return dt.timedelta(seconds=3 * self.limits.timeout_seconds + 60)

    def horizon(self, now: dt.datetime) -> Horizon:
        return Horizon.around(now, self.history, self.ahead)


@dataclass(frozen=True)
class PollOutcome:
    source_id: str
    outcome: str  # one of OUTCOMES
    reason: str | None = None  # one of feeds.REASONS when outcome is "error"
    events: int = 0
    removed: int = 0
    message: str = ""


def options_of(source: Source) -> ImportOptions:
    return ImportOptions(source.cc, source.kind, source.keywords)


def parse_fetched(
    text: str, content_type: str, url: str, source: Source, horizon: Horizon
) -> Parsed:
    fmt = source.format or sniff(text, content_type, urlsplit(url).path)
    return parse(text, fmt, options_of(source), horizon)


class SourceMetrics(Collector):
    """Poll counters (live) and per-source gauges from the poller's cached view."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter(
            "censorwatch_event_source_polls",
            "Event source polls by outcome (ok, not_modified, error)",
            ["outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "censorwatch_event_source_errors",
            "Failed event source polls by reason",
            ["reason"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.polls.labels(outcome)
        for reason in REASONS:
            self.errors.labels(reason)
        self.sources: tuple[Source, ...] = ()
        registry.register(self)

    def count(self, outcome: PollOutcome) -> None:
        self.polls.labels(outcome.outcome).inc()
        if outcome.reason is not None:
            self.errors.labels(outcome.reason).inc()

    def collect(self) -> Iterable[Metric]:
        events = GaugeMetricFamily(
            "censorwatch_event_source_events", "Events the source yielded at its last success",
            labels=["source"],
        )  # fmt: skip
        success = GaugeMetricFamily(
            "censorwatch_event_source_last_success_timestamp_seconds",
            "When the source last polled successfully (0: never)",
            labels=["source"],
        )
        failing = GaugeMetricFamily(
            "censorwatch_event_source_failing",
            "1 while the source's last poll failed",
            labels=["source"],
        )
        for s in self.sources[:MAX_LABELLED]:
            events.add_metric([s.id], s.event_count)
            success.add_metric([s.id], s.last_success_at.timestamp() if s.last_success_at else 0)
            failing.add_metric([s.id], 1.0 if s.last_error is not None else 0.0)
        configured = GaugeMetricFamily(
            "censorwatch_event_sources", "Event sources registered (enabled or not)"
        )
        configured.add_metric([], len(self.sources))
        return [configured, events, success, failing]


class Poller:
    """Claims due sources and polls them; `run_once` is one tick, `forever` the loop."""

    def __init__(
        self,
        db: Database,
        settings: PollSettings,
        metrics: SourceMetrics | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.clock = clock

    async def run_once(self) -> list[PollOutcome]:
        claimed = await self.db.transaction(
            lambda c: sourcestore.claim_due(c, self.db, self.clock(), self.settings.lease, BATCH)
        )
        outcomes = list(await asyncio.gather(*(self.poll(s) for s in claimed)))
        await self.refresh_view()
        return outcomes

    async def refresh_view(self) -> None:
        if self.metrics is not None:
            async with self.db.reading() as connection:
                self.metrics.sources = tuple(await sourcestore.listing(connection))

    async def poll(self, source: Source) -> PollOutcome:
        """One poll of a claimed source; whatever happens, the claim is released."""
        try:
            outcome = await self._poll(source)
        except (FetchError, EventFeedError) as exc:
            reason = exc.reason if isinstance(exc, FetchError) else "feed"
            outcome = await self._failed(source, reason, str(exc))
        except Exception as exc:  # a bug must not leave the source claimed and silent
            log.exception("event source %s: poll failed", source.id)
            outcome = await self._failed(
                source, "internal", f"internal error: {type(exc).__name__}"
            )
        if self.metrics is not None:
            self.metrics.count(outcome)
        return outcome

    async def _poll(self, source: Source) -> PollOutcome:
        limits = self.settings.limits
        got = await fetch(
            source.url, etag=source.etag, last_modified=source.last_modified, limits=limits
        )
        now = self.clock()
        if got.text is None:
            await self.db.transaction(lambda c: sourcestore.record_not_modified(c, source, now))
            return PollOutcome(source.id, "not_modified", events=source.event_count)
        text = got.text
        horizon = self.settings.horizon(now)
        async with asyncio.timeout(limits.timeout_seconds):  # not wait_for: it can drop a stop
            parsed = await asyncio.to_thread(
                parse_fetched, text, got.content_type, got.url, source, horizon
            )

        async def store(connection: AsyncConnection) -> int:
            removed = await eventstore.store_import(connection, self.db, parsed, now, source.id)
            await sourcestore.record_success(
                connection,
                source,
                now,
                event_count=len(parsed.events),
                etag=got.etag,
                last_modified=got.last_modified,
            )
            return removed

        removed = await self.db.transaction(store)
        return PollOutcome(source.id, "ok", events=len(parsed.events), removed=removed)

    async def _failed(self, source: Source, reason: str, message: str) -> PollOutcome:
        now = self.clock()
        log.warning("event source %s (%s): %s", source.id, source.url, message)
        await self.db.transaction(lambda c: sourcestore.record_failure(c, source, now, message))
        return PollOutcome(source.id, "error", reason, source.event_count, message=message)

    async def forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event source poller: tick failed; trying again next tick")
            await asyncio.sleep(self.settings.tick_seconds)


class SourceInputError(ValueError):
    """Settings for a source that cannot be used; the message says which and why."""


def new_source(
    url: str,
    *,
    fmt: str | None,
    cc: str | None,
    kind: str | None,
    keywords: Iterable[tuple[str, str]],
    interval_seconds: int,
    config: Config,
    enabled: bool = True,
) -> NewSource:
    """Checked settings: the URL (a public address unless private ones are allowed), the
    format, default country and kind, keyword mapping, and an interval not below the
    configured minimum. The API and the CLI both come through here."""
    try:
        check_url(url, config.source_allow_private, frozenset(config.source_private_hosts))
    except FetchError as exc:
        raise SourceInputError(f"url: {exc}") from exc
    if len(url) > 2048:
        raise SourceInputError("url: at most 2048 characters")
    if fmt is not None and fmt not in FORMATS:
        raise SourceInputError(f"format: {fmt[:16]!r} is not one of {', '.join(FORMATS)}")
    try:
        options = options_for(cc, kind, keywords)
    except EventFeedError as exc:
        raise SourceInputError(str(exc)) from exc
    if len(options.keywords) > 100 or any(len(w) > 64 for w, _ in options.keywords):
        raise SourceInputError("keywords: at most 100, each at most 64 characters")
    floor = config.source_min_interval_seconds
    if not floor <= interval_seconds <= 7 * 86400:
        raise SourceInputError(f"interval: need {floor} to 604800 seconds, got {interval_seconds}")
    return NewSource(
        url, fmt, options.cc, options.kind, options.keywords, interval_seconds, enabled
    )


async def refuse_private_name(url: str, config: Config) -> None:
    """At registration, a host name that resolves only to private addresses is refused
    (the poller checks again at every fetch; a name that does not resolve yet may)."""
    if config.source_allow_private or URL(url).host in config.source_private_hosts:
        return
    try:
        async with asyncio.timeout(5):
            await check_resolves_public(url)
    except FetchError as exc:
        raise SourceInputError(f"url: {exc}") from exc
    except (TimeoutError, OSError):
        return
