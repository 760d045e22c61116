"""Absolute links in cards, feeds and embed snippets: the configured ``public_url``, or the
request's own address read with care (forwarded headers only from trusted proxies, and
never a Host header in feeds)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from alerts.model import Incident
from collector.config import Config, ConfigError, resolve
from collector.store import incidents as incidentstore
from tests.collector.collector_harness import Collector, start_collector

INCIDENT = "inc-kz-telegram"
ATOM = {"a": "http://www.w3.org/2005/Atom"}


async def running(tmp_path: Path, **settings: Any) -> AsyncIterator[Collector]:
    config = Config(
        data_dir=tmp_path / "data", db=f"sqlite:///{tmp_path / 'collector.db'}",
        alert_interval_seconds=0, delivery_interval_seconds=0, source_poll_seconds=0,
        **settings,
    )  # fmt: skip
    collector = await start_collector(config)
    now = dt.datetime.now(dt.UTC)
    incident = Incident(
        id=INCIDENT, kind="blocking", service="telegram", cc="KZ", asns=(9198,),
        onset=now - dt.timedelta(minutes=30), last_seen=now, resolved_at=None,
        methods=("tls.reset",), confidence=0.95, probes=6, evidence=("6 probes",),
        rules=("block.open.repeat",), rules_version="1",
    )  # fmt: skip
    db = collector.state.db

    async def write(connection: Any) -> None:
        await incidentstore.save(connection, db, incident, now)

    await db.transaction(write)
    try:
        yield collector
    finally:
        await collector.client.close()


@pytest.fixture
async def pinned(tmp_path: Path) -> AsyncIterator[Collector]:
    async for collector in running(tmp_path, public_url="https://status.example.org/"):
        yield collector


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Collector]:
    async for collector in running(tmp_path, trusted_proxies="127.0.0.1/32, ::1"):
        yield collector


@pytest.fixture
async def direct(tmp_path: Path) -> AsyncIterator[Collector]:
    async for collector in running(tmp_path):
        yield collector


async def text(collector: Collector, path: str, **headers: str) -> str:
    response = await collector.client.get(path, headers=headers)
    assert response.status == 200, path
    return await response.text()


def og_url(html: str) -> str:
    found = re.search(r'<meta property="og:url" content="([^"]+)">', html)
    assert found is not None
    return found.group(1)


def atom_links(body: str) -> list[str]:
    root = ET.fromstring(body)
    return [link.get("href", "") for link in root.iter("{http://www.w3.org/2005/Atom}link")]


FORGED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "Forwarded": "host=evil.example",
}


async def test_public_url_makes_every_absolute_link_whatever_the_request_says(
    pinned: Collector,
) -> None:
    html = await text(pinned, f"/incident/{INCIDENT}", **FORGED)
    assert og_url(html) == f"https://status.example.org/incident/{INCIDENT}"
    assert f'<link rel="canonical" href="https://status.example.org/incident/{INCIDENT}">' in html
    country = await text(pinned, "/country/KZ", **FORGED)
    assert '&lt;iframe src="https://status.example.org/widget/KZ"' in country
    atom = await text(pinned, "/country/KZ/incidents.atom", **FORGED)
    assert f"https://status.example.org/incident/{INCIDENT}" in atom_links(atom)
    assert "https://status.example.org/country/KZ/incidents.atom" in atom_links(atom)
    feed = json.loads(await text(pinned, "/incidents.json", **FORGED))
    assert feed["items"][0]["url"] == f"https://status.example.org/incident/{INCIDENT}"
    assert feed["feed_url"] == "https://status.example.org/incidents.json"
    for page in (html, country, atom, json.dumps(feed)):
        assert "evil.example" not in page


async def test_a_trusted_proxy_names_the_scheme_and_host(proxied: Collector) -> None:
    html = await text(
        proxied, f"/incident/{INCIDENT}",
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "status.example.net"},
    )  # fmt: skip
    assert og_url(html) == f"https://status.example.net/incident/{INCIDENT}"
    forwarded = (
        'for=192.0.2.1;proto=http;host="a.example", for=192.0.2.9;proto=https;host=b.example'
    )
    html = await text(proxied, f"/incident/{INCIDENT}", Forwarded=forwarded)
    assert og_url(html) == f"https://b.example/incident/{INCIDENT}"  # the nearest proxy's


async def test_without_public_url_feeds_link_relative_to_themselves(proxied: Collector) -> None:
    atom = await text(proxied, "/incidents.atom", **{"X-Forwarded-Host": "status.example.net"})
    assert f"/incident/{INCIDENT}" in atom_links(atom)
    assert "example.net" not in atom
    rss = await text(proxied, "/incidents.rss", Host="evil.example")
    assert ET.fromstring(rss).findtext("channel/item/link") == f"/incident/{INCIDENT}"
    assert "evil.example" not in rss


async def test_forwarded_headers_from_anyone_else_are_ignored(direct: Collector) -> None:
    html = await text(
        direct, f"/incident/{INCIDENT}", Host="status.example.com",
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )  # fmt: skip
    assert og_url(html) == f"http://status.example.com/incident/{INCIDENT}"
    for feed in ("/incidents.atom", "/incidents.rss", "/incidents.json"):
        assert "evil.example" not in await text(direct, feed, **FORGED)


async def test_a_host_that_is_no_host_is_replaced_by_the_listen_address(direct: Collector) -> None:
    html = await text(direct, f"/incident/{INCIDENT}", Host="x/../evil.example")
    assert og_url(html) == f"http://127.0.0.1:8080/incident/{INCIDENT}"


@pytest.mark.parametrize(
    "value",
    ["status.example.org", "ftp://status.example.org", "https://status.example.org/status",
     "https://user@status.example.org", "https://status.example.org/?x=1", "https://"],
)  # fmt: skip
def test_public_url_must_be_an_origin(value: str) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        resolve(None, {}, {"public_url": value})


def test_public_url_from_the_environment_is_normalised() -> None:
    config = resolve(None, {"CENSORWATCH_PUBLIC_URL": "HTTPS://Status.Example.org:8443/"}, {})
    assert config.public_url == "https://status.example.org:8443"
