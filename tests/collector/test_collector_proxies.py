"""Trusted proxies, enrolment-token defaults, and the admin token file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from collector_harness import Collector, start_collector

from collector import auth
from collector.config import Config, ConfigError, resolve
from collector.enrolment.proxies import client_address, parse_networks
from lab.paths import REPO_ROOT, checkout_env

PROXY = parse_networks("127.0.0.0/8, 2001:db8:ffff::/48")


@pytest.mark.parametrize(
    ("remote", "forwarded", "xff", "expected"),
    [
        ("127.0.0.1", None, "10.1.2.3", "10.1.2.3"),
        ("127.0.0.1", None, "1.0.0.1, 10.1.2.3", "10.1.2.3"),  # the left is the client's to forge
        ("127.0.0.1", None, "10.1.2.3, 127.0.0.9", "10.1.2.3"),  # two trusted proxies
        ("127.0.0.1", 'for="[2001:db8::7]:443";proto=https', None, "2001:db8::7"),
        ("127.0.0.1", "for=10.9.9.9:5000, for=127.0.0.2", "1.0.0.1", "10.9.9.9"),
        ("127.0.0.1", None, None, "127.0.0.1"),
        ("127.0.0.1", "for=unknown", None, None),
        ("198.51.100.1", None, "10.1.2.3", "198.51.100.1"),  # not a proxy: headers ignored
    ],
)
def test_client_address(
    remote: str, forwarded: str | None, xff: str | None, expected: str | None
) -> None:
    assert client_address(remote, forwarded, xff, PROXY) == expected


def test_without_trusted_proxies_headers_are_ignored() -> None:
    assert client_address("127.0.0.1", "for=10.1.2.3", "10.1.2.3", ()) == "127.0.0.1"


def test_a_bad_proxy_list_names_the_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(None, {"CENSORWATCH_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"}, {})
    assert caught.value.key == "trusted_proxies"


@pytest.fixture
async def behind_proxy(sqlite_config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(dataclasses.replace(sqlite_config, trusted_proxies="127.0.0.1"))
    try:
        yield running
    finally:
        await running.client.close()


async def _register(collector: Collector, headers: dict[str, str]) -> dict[str, object]:
    token = await collector.enrolment_token()
    headers = {**headers, "Authorization": f"Bearer {token}"}
    response = await collector.client.post("/api/v1/probes", headers=headers)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def test_behind_a_trusted_proxy_the_probe_network_is_the_forwarded_one(
    behind_proxy: Collector,
) -> None:
    body = await _register(behind_proxy, {"X-Forwarded-For": "10.1.2.3"})
    assert (body["cc"], body["asn"]) == ("RU", 64501)


async def test_forwarded_headers_from_anyone_else_are_ignored(sqlite_collector: Collector) -> None:
    body = await _register(sqlite_collector, {"X-Forwarded-For": "10.1.2.3"})
    assert (body["cc"], body["asn"]) == ("KZ", 64500)  # the loopback peer, as the table says


async def test_enrolment_tokens_are_finite_by_default(sqlite_collector: Collector) -> None:
    response = await sqlite_collector.client.post(
        "/api/v1/enrolment-tokens", json={}, headers=sqlite_collector.admin_headers
    )
    body = await response.json()
    assert body["uses"] == 1
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=6) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    headers = {"Authorization": f"Bearer {body['token']}"}
    first = await sqlite_collector.client.post("/api/v1/probes", headers=headers)
    second = await sqlite_collector.client.post("/api/v1/probes", headers=headers)
    assert (first.status, second.status) == (201, 401)


async def test_the_admin_token_file_is_the_admin_token(sqlite_config: Config) -> None:
    path = sqlite_config.admin_token_path
    path.parent.mkdir(parents=True, exist_ok=True)
    first = auth.new_token("admin")
    path.write_text(first + "\n")
    running = await start_collector(sqlite_config)
    try:
        ok = {"Authorization": f"Bearer {first}"}
        assert (await running.client.get("/api/v1/subscribers", headers=ok)).status == 200
        await auth.rotate_admin_token(running.state.db, path)  # as `censorwatch admin-token rotate`
        second = path.read_text().strip()
        assert second != first
        assert path.stat().st_mode & 0o077 == 0
        assert (await running.client.get("/api/v1/subscribers", headers=ok)).status == 401
        new = {"Authorization": f"Bearer {second}"}
        assert (await running.client.get("/api/v1/subscribers", headers=new)).status == 200
    finally:
        await running.client.close()


@pytest.mark.parametrize(
    "text", ["", "cwp_abcdefghijklmnopqrstuvwxyz", "cwa_short", "cwa_a b c d e f g h i j k"]
)
def test_an_unusable_admin_token_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "admin-token"
    path.write_text(text)
    with pytest.raises(auth.AdminTokenFileError) as caught:
        auth.read_admin_token(path)
    assert str(path) in str(caught.value)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "collector", *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=checkout_env(), capture_output=True, text=True, timeout=60
    )


def test_admin_token_commands(tmp_path: Path) -> None:
    new = _cli("admin-token", "new")
    assert new.returncode == 0
    assert new.stdout.startswith("cwa_")
    rotated = []
    for _ in range(2):
        run = _cli("admin-token", "rotate", "--data-dir", str(tmp_path))
        assert run.returncode == 0, run.stderr
        assert new.stdout.strip() not in run.stdout  # the token goes to the file, not the screen
        rotated.append((tmp_path / "admin-token").read_text())
    assert rotated[0] != rotated[1]
    (tmp_path / "admin-token").write_text("not a token\n")
    serve = _cli("serve", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0")
    assert serve.returncode == 2
    assert "admin token file" in serve.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [("CENSORWATCH_LISTEN", "0.0.0.0:²"), ("CENSORWATCH_SCHEDULE_INTERVAL_SECONDS", "²")],
)
def test_a_digit_int_cannot_read_is_refused_naming_the_setting(key: str, value: str) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` fails: a setting's check says so itself."""
    with pytest.raises(ConfigError) as caught:
        resolve(None, {key: value}, {})
    assert caught.value.key == key.removeprefix("CENSORWATCH_").lower()
    assert "invalid literal" not in str(caught.value)
