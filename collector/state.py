"""What the request handlers share: configuration, database, lookups, limits and metrics."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.alerting.sources import SourceMetrics
from collector.api.metrics import IngestMetrics, SnapshotHolder
from collector.config import Config
from collector.enrolment import attestation, proxies
from collector.enrolment.iptoasn import AsnTable
from collector.ingest.admission import Admission
from collector.ingest.last_seen import LastSeen
from collector.ingest.payload import Limits
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.validation import TimeWindow
from collector.store.db import Database
from probe import targets as target_lists


@dataclass(frozen=True)
class TargetListText:
    """The target list probes download at check-in, as the TOML file the probe parses."""

    text: str
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @functools.cached_property
    def services(self) -> frozenset[str]:
        """The service names the list holds: the ones ingest rolls up and labels metrics by."""
        return frozenset(s.name for s in target_lists.parse(self.text, self.source).services)


@dataclass
class State:
    config: Config
    db: Database
    targets: TargetListText
    asn_table: AsnTable | None
    limiter: RateLimiter
    byte_limiter: RateLimiter
    metrics: IngestMetrics
    snapshot: SnapshotHolder
    registry: CollectorRegistry
    exposed: CollectorRegistry  # what /metrics shows: ``registry``, or every worker's sum
    admission: Admission  # batches decoded and stored at once
    attestation_key: attestation.KeyHolder = field(default_factory=attestation.KeyHolder)
    source_metrics: SourceMetrics | None = None
    shutting_down: bool = field(default=False)
    pseudonym_key: bytes = field(default=b"")  # loaded from the database on start
    last_seen: LastSeen = field(default_factory=LastSeen)  # when ingest last wrote each probe's

    @functools.cached_property
    def trusted_proxies(self) -> tuple[proxies.Network, ...]:
        return proxies.parse_networks(self.config.trusted_proxies)

    @property
    def limits(self) -> Limits:
        c = self.config
        return Limits(c.max_body_bytes, c.max_decompressed_bytes, c.max_batch_items)

    @property
    def window(self) -> TimeWindow:
        c = self.config
        return TimeWindow(
            dt.timedelta(seconds=c.max_future_seconds), dt.timedelta(seconds=c.max_past_seconds)
        )


STATE: Final = web.AppKey("state", State)
