"""Alert test helpers: fast alert settings and measurements that open an incident."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from collector_harness import Collector

from collector.config import Config
from lab.harness.samples import measurement

FAST: dict[str, Any] = {
    "alert_interval_seconds": 0.2,
    "alert_settle_seconds": 0.0,
    "delivery_interval_seconds": 0.1,
    "delivery_timeout_seconds": 1.0,
    "delivery_lease_seconds": 5.0,
    "metrics_refresh_seconds": 0.1,
}
FAST_ENV = {f"CENSORWATCH_{k.upper()}": str(v) for k, v in FAST.items()}


def fast(config: Config) -> Config:
    return dataclasses.replace(config, **FAST)


async def add_subscriber(collector: Collector, url: str, **options: Any) -> dict[str, Any]:
    response = await collector.client.post(
        "/api/v1/subscribers", json={"url": url, **options}, headers=collector.admin_headers
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def block(
    collector: Collector, service: str = "telegram", probes: int = 2, *, vetted: bool = True
) -> None:
    """``probes`` probes in two ASNs see ``service`` blocked: enough to open an incident
    when an operator vetted them (new probes weigh half: two of them stay unconfirmed)."""
    now = dt.datetime.now(dt.UTC)
    for n in range(probes):
        probe_id, token = await collector.register()
        if vetted:
            await collector.vet(probe_id)
        items = [
            measurement(
                service=service,
                verdict="blocked",
                asn=9198 + n % 2,
                start=now - dt.timedelta(seconds=s),
            )
            for s in (60, 30)
        ]
        status, body = await collector.ingest(token, items)
        assert status == 200, body
        assert body["accepted"] == 2, body
