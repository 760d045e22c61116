"""A realistic week for the status page, loaded into a real collector.

Kazakhstan: eight probes in four networks; Telegram blocked nationally in the last half
hour (the collector's own detector opens the incident), during yesterday's and three days
ago's evening livestreams too; an announced livestream that started ten minutes ago, and a
protest call tomorrow (the livestream on now opens a watch window). Russia: Instagram
failing for one probe only, an incident the trust rules could not confirm
(``status: unconfirmed``), and a watch window opened by hand. Belarus: a network shutdown, its
probes offline.

Probes register from their own loopback addresses, which the collector's IP-to-ASN table
maps to their networks, and their measurements claim the same networks, so the scenario
holds whichever of the two the collector believes. The unconfirmed and shutdown incidents
are written to the store before the collector starts, as the alert engine writes them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from alerts.model import Incident
from collector.store import incidents as incidentstore
from collector.store import migrate, schema
from collector.store.db import Database
from lab.harness.samples import measurement, traced
from probe import model

NETWORKS: Final = {
    # (first two octets of the probe's loopback address) → (ASN, country)
    "127.10": (9198, "KZ"), "127.11": (21299, "KZ"), "127.12": (35104, "KZ"),
    "127.13": (48716, "KZ"), "127.20": (12389, "RU"), "127.21": (8359, "RU"),
    "127.30": (25106, "BY"), "127.31": (6697, "BY"),
}  # fmt: skip
KZ_PROBES: Final = [
    f"{prefix}.0.{n}" for prefix in ("127.10", "127.11", "127.12", "127.13") for n in (1, 2)
]
RU_PROBES: Final = ["127.20.0.1", "127.20.0.2", "127.21.0.1"]
BY_PROBES: Final = ["127.30.0.1", "127.31.0.1"]
SERVICES: Final = ("telegram", "whatsapp", "youtube", "instagram")
UNCONFIRMED_ID: Final = "inc-ru-instagram-unconfirmed"
SHUTDOWN_ID: Final = "inc-by-shutdown"
LIVESTREAM: Final = "Opposition livestream"
ELECTION_NIGHT: Final = "Election night"


def asn_table() -> str:
    lines = [
        f"{p}.0.0\t{p}.255.255\t{asn}\t{cc}\tTEST-{cc}-{asn}" for p, (asn, cc) in NETWORKS.items()
    ]
    return "\n".join(["127.0.0.0\t127.9.255.255\t64500\tKZ\tTEST-KZ", *lines]) + "\n"


def network_of(address: str) -> tuple[int, str]:
    return NETWORKS[address.rsplit(".", 2)[0]]


@dataclass(frozen=True)
class Scenario:
    now: dt.datetime

    def ago(self, hours: float) -> dt.datetime:
        return self.now - dt.timedelta(hours=hours)

    def verdict(self, address: str, service: str, hours_ago: float) -> model.Verdict:
        _, cc = network_of(address)
        if cc == "KZ" and service == "telegram":
            evening = any(a <= hours_ago < b for a, b in ((27, 30), (75, 78)))
            return "blocked" if hours_ago < 0.5 or evening else "ok"
        if cc == "RU" and service == "instagram" and address == "127.21.0.1":
            return "blocked" if 0.25 <= hours_ago < 0.35 else "ok"  # one lone failure
        if cc == "BY" and hours_ago < 1.5:
            return "offline"
        return "ok"

    def times(self) -> Iterator[float]:
        """Hours ago: every 3 hours over the week, hourly over the last day, then the last
        half hour every 10 minutes."""
        yield from (h for h in range(168, 24, -3))
        yield from (h + 0.75 for h in range(23, 0, -1))
        yield from (0.45, 0.3, 0.15, 0.02)

    def measurements(self, address: str) -> list[model.Measurement]:
        asn, cc = network_of(address)
        made = [
            measurement(service=service, verdict=self.verdict(address, service, h), cc=cc,
                        asn=asn, start=self.ago(h))
            for h in self.times()
            for service in SERVICES
        ]  # fmt: skip
        return [self.located(m) for m in made]

    def located(self, m: model.Measurement) -> model.Measurement:
        """In AS9198, blocked Telegram is traced: the censor sits 2 hops from the subscriber,
        at a router of AS9198 itself (an address the collector's table puts there)."""
        if m.probe.asn != 9198 or m.service != "telegram" or m.analysis.verdict != "blocked":
            return m
        return traced(m, 2, ("127.10.99.2", "127.10.99.1", "127.10.99.3"))

    def events(self) -> list[dict[str, Any]]:
        livestreams = [
            {"kind": "livestream", "title": LIVESTREAM, "cc": "KZ", "start": self.ago(h).isoformat(),
             "duration_seconds": 3 * 3600, "source_url": "https://example.org/live"}
            for h in (75.1, 27.1)
        ]  # fmt: skip
        now_live = {"kind": "livestream", "title": LIVESTREAM, "cc": "KZ",
                    "start": self.ago(10 / 60 + 0.5).isoformat(), "duration_seconds": 2 * 3600,
                    "source_url": "https://example.org/live", "id": "kz-live-now"}  # fmt: skip
        protest = {"kind": "protest", "title": "Call to protest in Almaty", "cc": "KZ",
                   "start": (self.now + dt.timedelta(hours=20)).isoformat(), "duration_seconds": 4 * 3600}  # fmt: skip
        return [*livestreams, now_live, protest]

    def live_window_end(self) -> dt.datetime:
        """Where the watch window around the livestream on now ends: its end plus the
        collector's default 30 minutes."""
        return self.ago(10 / 60 + 0.5) + dt.timedelta(hours=2, minutes=30)

    def manual_window(self) -> dict[str, Any]:
        """A watch window opened by hand in Russia."""
        return {"cc": "RU", "title": ELECTION_NIGHT, "start": self.ago(1).isoformat(),
                "end": (self.now + dt.timedelta(hours=6)).isoformat()}  # fmt: skip

    def seeded(self) -> list[tuple[Incident, dict[str, Any]]]:
        unconfirmed = Incident(
            id=UNCONFIRMED_ID, kind="blocking", service="instagram", cc="RU", asns=(8359,),
            onset=self.ago(1.5), last_seen=self.ago(0.1), resolved_at=None,
            methods=("tls.reset",), confidence=0.4, probes=1,
            evidence=("AS8359: 6 of 6 measurements blocked (tls.reset) from 1 probe",),
            rules=("block.open.repeat",), rules_version="1",
        )  # fmt: skip
        shutdown = Incident(
            id=SHUTDOWN_ID, kind="shutdown", service=None, cc="BY", asns=(25106, 6697),
            onset=self.ago(1.4), last_seen=self.ago(0.05), resolved_at=None, methods=(),
            confidence=0.95, probes=2,
            evidence=("2 of 2 probes offline at once in AS25106, AS6697; control targets unreachable",),
            rules=("shutdown.open.offline",), rules_version="1", confirmed_at=self.ago(1.4),
        )  # fmt: skip
        return [(unconfirmed, {"status": "unconfirmed"}), (shutdown, {})]


async def seed_store(url: str, scenario: Scenario) -> None:
    """Migrate the database and write the incidents the collector does not detect itself."""
    db = Database(url)
    try:
        await migrate.upgrade(db)

        async def write(connection: Any) -> None:
            for incident, extra in scenario.seeded():
                row = incidentstore.to_row(incident, scenario.now)
                row["body"] = json.dumps({**json.loads(row["body"]), **extra})
                await connection.execute(schema.incidents.insert().values(**row))

        await db.transaction(write)
    finally:
        await db.close()


async def _post(session: aiohttp.ClientSession, url: str, body: Any, token: str) -> Any:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        answer = await r.json()
        assert r.status < 300, (url, r.status, answer)
        return answer


async def load(base: str, admin_token: str, scenario: Scenario) -> None:
    """Register every probe from its own address, upload its week, announce the events."""
    async with aiohttp.ClientSession() as admin:
        for event in scenario.events():
            await _post(admin, base + "/api/v1/events", event, admin_token)
        await _post(admin, base + "/api/v1/watch-windows", scenario.manual_window(), admin_token)
        for address in KZ_PROBES + RU_PROBES + BY_PROBES:
            enrolment = (await _post(admin, base + "/api/v1/enrolment-tokens", {}, admin_token))[
                "token"
            ]
            connector = aiohttp.TCPConnector(local_addr=(address, 0))
            async with aiohttp.ClientSession(connector=connector) as probe:
                registered = await _post(probe, base + "/api/v1/probes", None, enrolment)
                body = (
                    b"[" + b",".join(model.encode(m) for m in scenario.measurements(address)) + b"]"
                )
                headers = {"Authorization": f"Bearer {registered['token']}",
                           "Content-Type": "application/json"}  # fmt: skip
                async with probe.post(
                    base + "/api/v1/measurements", data=body, headers=headers
                ) as r:
                    result = await r.json()
                    assert r.status == 200, result
                    assert result["rejected"] == 0, result
