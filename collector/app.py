"""The aiohttp application: composition root of the collector.

``build_state`` does everything that can fail because of the operator's input (database
URL, IP-to-ASN table, target list) before anything listens, so those mistakes surface as
clear messages. Starting the app migrates the schema, creates the first admin token if
there is none, loads the metrics snapshot and starts its refresher; stopping it waits for
in-flight requests and closes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from importlib import metadata
from importlib.resources import files
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from alerts.incidents import DetectorConfig
from collector import auth
from collector.alerting import delivery, detection
from collector.alerting import sources as event_sources
from collector.alerting.context import Windows
from collector.api import aggregation, metrics, openapi, privacy, query, tokens
from collector.api import alerts as alerts_api
from collector.api import hops as censor_hops
from collector.api.bodies import json_response
from collector.api.errors import error_response, json_errors
from collector.config import Config
from collector.enrolment import iptoasn, probes
from collector.ingest import measurements
from collector.ingest.admission import Admission
from collector.ingest.ratelimit import RateLimiter
from collector.state import STATE, State, TargetListText
from collector.store import keys, migrate
from collector.store.db import Database
from collector.web import install as install_status_page
from probe import targets as target_lists

log: Final = logging.getLogger(__name__)


def version() -> str:
    try:
        return metadata.version("censorwatch")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def load_targets(config: Config) -> TargetListText:
    """The target list probes receive, checked with the probe's own parser first."""
    if config.targets is None:
        text = files("probe").joinpath("data/targets.toml").read_text(encoding="utf-8")
        source = "<default targets>"
    else:
        target_lists.load(config.targets)
        text, source = config.targets.read_text(encoding="utf-8"), str(config.targets)
    target_lists.parse(text, source)
    return TargetListText(text, source)


def build_state(config: Config) -> State:
    db = Database(config.db_url)
    table = iptoasn.load(config.ip_asn_db) if config.ip_asn_db else None
    registry = CollectorRegistry(auto_describe=True)
    holder = metrics.SnapshotHolder()
    sources = event_sources.SourceMetrics(registry)
    return State(
        config=config,
        db=db,
        targets=load_targets(config),
        asn_table=table,
        limiter=RateLimiter(config.rate_per_second, config.rate_burst),
        byte_limiter=RateLimiter(config.rate_bytes_per_second, config.rate_bytes_burst),
        metrics=metrics.IngestMetrics(registry),
        source_metrics=sources,
        snapshot=holder,
        registry=registry,
        exposed=metrics.every_worker(sources) or registry,
        admission=Admission(config.ingest_batches_in_flight, config.ingest_wait_seconds),
    )


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.shutting_down:
        return error_response(503, "shutting_down", "shutting down")
    if not state.snapshot.loaded:
        return error_response(503, "starting", "metrics not loaded yet")
    try:
        async with asyncio.timeout(5):
            await state.db.ping()
    except Exception as exc:
        return error_response(503, "unavailable", f"database unavailable: {type(exc).__name__}")
    return json_response({"status": "ready"})


async def openapi_document(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def prometheus(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = metrics.exposition(state.snapshot, state.exposed)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


OPENAPI: Final = web.AppKey("openapi", dict[str, Any])


async def _start(state: State, migrate_schema: bool) -> None:
    if migrate_schema:
        before, after = await migrate.upgrade(state.db)
        if before != after:
            log.info("database migrated from %s to %s", before or "empty", after)
    state.pseudonym_key = await keys.shared_key(state.db, privacy.PSEUDONYM_KEY)
    bootstrap = await auth.ensure_admin_token(state.db, state.config.admin_token_path)
    if bootstrap.created:
        print(f"censorwatch: admin token created and written to {bootstrap.path}", flush=True)
    c = state.config
    snapshot = await metrics.read_snapshot(
        state.db, c.active_probe_seconds, c.blocking_window_hours, auth.utc_now()
    )
    state.snapshot.replace(snapshot)


def background_tasks(state: State, primary: bool = True) -> list[asyncio.Task[None]]:
    """The metrics refresher, and the detector, webhook delivery and the event-source
    poller unless turned off; the detector and delivery in the ``primary`` worker only
    (``collector.workers``)."""
    c = state.config
    tasks = [
        asyncio.create_task(
            metrics.refresh_forever(
                state.db,
                state.snapshot,
                c.metrics_refresh_seconds,
                c.active_probe_seconds,
                c.blocking_window_hours,
            )
        )
    ]
    if c.alert_interval_seconds > 0 and primary:
        settle = dt.timedelta(seconds=c.alert_settle_seconds)
        observe = state.metrics.detection_duration.observe
        tasks.append(
            asyncio.create_task(
                detection.detect_forever(
                    state.db,
                    c.alert_interval_seconds,
                    settle,
                    Windows.of(c),
                    lambda result: observe(result.seconds),
                    detector=detection.scaled(
                        DetectorConfig(
                            recovery_quiet=dt.timedelta(seconds=c.detector_recovery_quiet_seconds)
                        ),
                        c.detector_time_scale,
                    ),
                )
            )
        )
    if c.delivery_interval_seconds > 0 and primary:
        deliverer = delivery.Deliverer(
            state.db,
            c.delivery_timeout_seconds,
            dt.timedelta(seconds=c.delivery_lease_seconds),
            lambda outcome: state.metrics.deliveries.labels(outcome).inc(),
        )
        tasks.append(asyncio.create_task(deliverer.forever(c.delivery_interval_seconds)))
    if c.source_poll_seconds > 0:
        poller = event_sources.Poller(
            state.db, event_sources.PollSettings.of(c), state.source_metrics
        )
        tasks.append(asyncio.create_task(poller.forever()))
    return tasks


def lifecycle(migrate_schema: bool, primary: bool = True) -> Any:
    async def context(app: web.Application) -> AsyncIterator[None]:
        state = app[STATE]
        await _start(state, migrate_schema)
        tasks = background_tasks(state, primary)
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await state.db.close()

    return context


async def _mark_shutting_down(app: web.Application) -> None:
    app[STATE].shutting_down = True


def create_app(
    state: State, *, migrate_schema: bool = True, primary: bool = True
) -> web.Application:
    app = web.Application(
        middlewares=[json_errors],
        client_max_size=state.config.max_body_bytes,
        handler_args={"auto_decompress": False},
    )
    app[STATE] = state
    app[OPENAPI] = openapi.document(version())
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", prometheus),
            web.get("/api/v1/openapi.json", openapi_document),
            *measurements.routes(),
            *query.routes(),
            *aggregation.routes(),
            *probes.routes(),
            *alerts_api.routes(),
            *tokens.routes(),
            *censor_hops.routes(),
        ]
    )
    install_status_page(app, state)
    app.cleanup_ctx.append(lifecycle(migrate_schema, primary))
    app.on_shutdown.append(_mark_shutting_down)
    return app
