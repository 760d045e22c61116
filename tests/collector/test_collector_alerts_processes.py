"""Delivery survives ``kill -9``, and two replicas on one PostgreSQL never double-send."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from pathlib import Path

import pytest
from alert_receiver import Receiver
from alert_scenarios import FAST_ENV
from collector_harness import ServerProcess, http

from lab.harness.postgres import ThrowawayCluster
from lab.harness.samples import measurement
from probe import model


async def _call(
    server: ServerProcess, method: str, path: str, body: object = None, token: str | None = None
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    headers |= {"Authorization": f"Bearer {token}"} if token else server.admin_headers()
    data = None if body is None else json.dumps(body).encode()
    return await asyncio.to_thread(http, method, server.url + path, data, headers)


async def _subscribe(server: ServerProcess, receiver: Receiver) -> None:
    status, body = await _call(server, "POST", "/api/v1/subscribers", {"url": receiver.url})
    assert status == 201, body
    receiver.secret = json.loads(body)["secret"]


async def _block(server: ServerProcess, service: str, probes: int = 2) -> None:
    now = dt.datetime.now(dt.UTC)
    for _ in range(probes):
        token, checked_in = await asyncio.to_thread(server.enrol_vetted)
        items = [
            measurement(
                service=service,
                verdict="blocked",
                cc=checked_in["cc"],
                asn=checked_in["asn"],
                start=now - dt.timedelta(seconds=s),
                attestation=checked_in["attestation"],
            )
            for s in (60, 30)
        ]
        body = b"[" + b",".join(model.encode(m) for m in items) + b"]"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        status, answer = await asyncio.to_thread(
            http, "POST", server.url + "/api/v1/measurements", body, headers
        )
        assert status == 200, answer


def _serve(workdir: Path, db: str) -> ServerProcess:
    table = workdir / "ip2asn.tsv"
    table.write_text("127.0.0.0\t127.255.255.255\t64500\tKZ\tTEST-KZ\n")
    server = ServerProcess(workdir, db, "--ip-asn-db", str(table), env=FAST_ENV)
    server.wait_ready()
    return server


@pytest.mark.slow
async def test_collector_killed_mid_retry_delivers_once_after_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    receiver = Receiver(script=[503])
    await receiver.start()
    first = _serve(tmp_path, db)
    try:
        await _subscribe(first, receiver)
        await _block(first, "telegram")
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
        assert [r.status for r in receiver.received] == [503]
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        second = _serve(tmp_path, db)
        try:
            await receiver.wait_delivered(1, within=40)
            await asyncio.sleep(1.0)
        finally:
            second.stop()
    finally:
        first.stop()
        await receiver.stop()
    assert list(receiver.delivered().values()) == [1]
    assert {r.webhook_id for r in receiver.received} == set(receiver.delivered())
    assert all(r.verified for r in receiver.received)


@pytest.mark.slow
async def test_two_replicas_on_postgresql_never_double_send(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    db = pg_cluster.create_database("cw_alert_replicas")
    receivers = [Receiver(script=[503]), Receiver(), Receiver()]
    for r in receivers:
        await r.start()
    one = _serve(tmp_path, db)
    two = _serve(tmp_path, db)
    try:
        for r in receivers:
            await _subscribe(one, r)
        for n, service in enumerate(("telegram", "whatsapp", "signal")):
            await _block((one, two)[n % 2], service)
        for r in receivers:
            await r.wait_delivered(3, within=40)
        await asyncio.sleep(1.5)
    finally:
        one.stop()
        two.stop()
        for r in receivers:
            await r.stop()
    for r in receivers:
        assert sorted(r.delivered().values()) == [1, 1, 1]
        assert all(x.verified for x in r.received)
