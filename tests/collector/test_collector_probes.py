"""Probe enrolment, check-in, revocation and the control flag, on both databases."""

from __future__ import annotations

import dataclasses

import pytest
from collector_harness import Collector, start_collector
from sqlalchemy import select

from collector.config import Config
from collector.store import schema
from lab.harness.samples import measurement
from probe import targets


async def test_check_in_returns_targets_schedule_and_network(collector: Collector) -> None:
    probe_id, token = await collector.register()
    response = await collector.client.post(
        "/api/v1/probes/check-in", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    body = await response.json()
    assert (body["probe_id"], body["cc"], body["asn"]) == (probe_id, "KZ", 64500)
    assert body["schedule"]["interval_seconds"] == 900
    parsed = targets.parse(body["targets"]["text"], "check-in")
    assert "telegram" in {s.name for s in parsed.services}


async def test_no_address_is_stored_anywhere(collector: Collector) -> None:
    _, token = await collector.register()
    auth = {"Authorization": f"Bearer {token}"}
    await collector.client.post("/api/v1/probes/check-in", headers=auth)
    await collector.ingest(token, [measurement()])
    async with collector.state.db.reading() as connection:
        for table in schema.metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                text = repr(tuple(row))
                assert "127.0.0.1" not in text, (table.name, text)
                assert "::1" not in text, (table.name, text)


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "missing Authorization"),
        ("Basic abc", 401, "Bearer"),
        ("Bearer cwp_not-a-real-token", 401, "unknown probe token"),
        ("Bearer cwa_admin-token-in-the-wrong-place", 401, "not a probe token"),
    ],
)
async def test_bad_probe_credentials(
    collector: Collector, header: str | None, status: int, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await collector.client.post("/api/v1/measurements", data=b"[]", headers=headers)
    assert response.status == status
    assert message in (await response.json())["error"]["message"]


async def test_revoked_probe_is_refused(collector: Collector) -> None:
    probe_id, token = await collector.register()
    not_admin = {"Authorization": f"Bearer {token}"}
    response = await collector.client.post(f"/api/v1/probes/{probe_id}/revoke", headers=not_admin)
    assert response.status == 401
    response = await collector.client.post(
        f"/api/v1/probes/{probe_id}/revoke", headers=collector.admin_headers
    )
    assert response.status == 200
    assert (await response.json())["revoked"] is True
    status, body = await collector.ingest(token, [measurement()])
    assert status == 403
    assert "revoked" in body["error"]["message"]


async def test_enrolment_token_uses_run_out(collector: Collector) -> None:
    token = await collector.enrolment_token(uses=1)
    headers = {"Authorization": f"Bearer {token}"}
    first = await collector.client.post("/api/v1/probes", headers=headers)
    second = await collector.client.post("/api/v1/probes", headers=headers)
    assert (first.status, second.status) == (201, 401)


async def test_registration_needs_a_token_unless_enrolment_is_open(collector: Collector) -> None:
    response = await collector.client.post("/api/v1/probes")
    assert response.status == 401


async def test_open_enrolment(sqlite_config: Config) -> None:
    running = await start_collector(dataclasses.replace(sqlite_config, open_enrolment=True))
    try:
        response = await running.client.post("/api/v1/probes", json={})
        assert response.status == 201
        assert (await response.json())["token"].startswith("cwp_")
    finally:
        await running.client.close()


async def test_control_flag_is_stored_with_measurements(collector: Collector) -> None:
    probe_id, token = await collector.register()
    response = await collector.client.patch(
        f"/api/v1/probes/{probe_id}", json={"control": True}, headers=collector.admin_headers
    )
    assert response.status == 200
    await collector.ingest(token, [measurement()])
    _status, body = await collector.get_json("/api/v1/measurements")
    assert body["results"][0]["collector"]["control"] is True


async def test_public_probe_list_has_no_secrets(collector: Collector) -> None:
    _, token = await collector.register(control=True)
    _status, body = await collector.get_json("/api/v1/probes")
    [probe] = body["probes"]
    assert set(probe) == {"id", "cc", "asn", "control", "vetted", "active", "revoked", "registered"}
    assert probe["control"] is True
    assert token not in repr(body)


@pytest.mark.parametrize(
    "body", [b"{", b'{"uses": 0}', b'{"uses": "many"}', b'{"colour": 1}', b"[" * 10000]
)
async def test_bad_enrolment_requests(sqlite_collector: Collector, body: bytes) -> None:
    response = await sqlite_collector.client.post(
        "/api/v1/enrolment-tokens", data=body, headers=sqlite_collector.admin_headers
    )
    assert response.status == 400
