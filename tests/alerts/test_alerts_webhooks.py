"""Webhooks: signatures checked by the independent standardwebhooks package, bodies, retries."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.correlation import Link, Stats
from alerts.model import Change, Incident
from alerts.webhooks import (
    MAX_DELAY,
    Format,
    WebhookSecretError,
    new_secret,
    next_attempt,
    render,
    sign,
)

ONSET = datetime(2024, 5, 1, 19, 4, tzinfo=UTC)
INCIDENT = Incident(
    id="blocking-telegram-KZ-20240501T190400Z",
    kind="blocking",
    service="telegram",
    cc="KZ",
    asns=(9198, 48716),
    onset=ONSET,
    last_seen=ONSET + timedelta(minutes=10),
    resolved_at=None,
    methods=("dns.nxdomain", "tls.reset"),
    confidence=0.97,
    probes=14,
    evidence=("30 blocked measurements from 14 probes in 2 networks (dns.nxdomain, tls.reset).",),
    rules=("block.open.strong",),
    rules_version="2",
    confirmed_at=ONSET,
    voices=14.0,
)
CHANGE = Change("incident.opened", INCIDENT)
LINKS = [Link("ev-1", 240.0, "Evening stream", "livestream")]
STATS = [Stats(7, 8, 0.002, 0.04, "followed 7 of the last 8 livestreams; p = 0.002")]


def test_signature_verified_by_standardwebhooks() -> None:
    secret = new_secret()
    _, body = render("json", CHANGE, LINKS, STATS)
    headers = sign(secret, "msg_1", int(time.time()), body)
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "incident.opened"
    assert payload["data"]["asns"] == [9198, 48716]


def test_tampered_body_fails_verification() -> None:
    secret = new_secret()
    headers = sign(secret, "msg_1", int(time.time()), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def test_rotation_signs_with_every_secret() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"incident.opened"}'
    headers = sign(f"{old} {new}", "msg_2", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


@pytest.mark.parametrize("bad", ["", "whsec_not base64!", "whsec_c2hvcnQ="])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(WebhookSecretError):
        sign(bad, "m", 0, b"")


def test_json_body_is_deterministic_and_complete() -> None:
    kind, body = render("json", CHANGE, LINKS, STATS)
    assert kind == "application/json"
    assert body == render("json", CHANGE, LINKS, STATS)[1]
    data = json.loads(body)["data"]
    assert data["events"] == [
        {"event_id": "ev-1", "delay_seconds": 240.0, "title": "Evening stream"}
    ]
    assert data["correlation"] == ["followed 7 of the last 8 livestreams; p = 0.002"]
    assert data["status"] == "open"
    assert data["onset"] == "2024-05-01T19:04:00Z"


def test_newsroom_text() -> None:
    _, body = render("telegram", CHANGE, LINKS, STATS, chat_id="-100123")
    message = json.loads(body)
    assert message["chat_id"] == "-100123"
    assert message["text"] == (
        "Telegram blocked in Kazakhstan on AS9198, AS48716 since 19:04 UTC on 1 May 2024 "
        "(DNS NXDOMAIN, TLS reset; 14 probes).\n"
        "Began 4 min after the announced livestream 'Evening stream'.\n"
        "Blocking followed 7 of the last 8 livestreams; p = 0.002."
    )


def test_slack_message_and_telegram_needs_chat_id() -> None:
    _, body = render("slack", CHANGE, LINKS, STATS)
    message = json.loads(body)
    assert message["text"].startswith("Telegram blocked in Kazakhstan")
    assert message["blocks"][0]["type"] == "section"
    with pytest.raises(ValueError, match="chat_id"):
        render("telegram", CHANGE, LINKS, STATS)


def test_resolution_text() -> None:
    done = Incident(**{**INCIDENT.__dict__, "resolved_at": ONSET + timedelta(hours=2, minutes=26)})
    _, body = render("telegram", Change("incident.resolved", done), [], [], chat_id="1")
    assert json.loads(body)["text"].startswith(
        "Telegram back in Kazakhstan on AS9198, AS48716 since 21:30 UTC on 1 May 2024, "
        "after being blocked from 19:04 UTC on 1 May 2024 (2 h 26 min)."
    )


# --- retry plan -----------------------------------------------------------------------


@given(st.integers(1, 11), st.sampled_from([None, 500, 502, 503, 408, 429]), st.integers(0, 99))
def test_retry_delays_are_bounded_full_jitter(attempt: int, status: int | None, seed: int) -> None:
    d = next_attempt(attempt, retry_after=None, status=status, rng=random.Random(seed))
    assert d.action == "retry"
    assert 0 <= d.delay <= min(MAX_DELAY, 5.0 * 2 ** (attempt - 1))


@given(st.floats(0.1, 10 * 86400), st.integers(1, 11), st.integers(0, 99))
def test_retry_after_is_honoured(retry_after: float, attempt: int, seed: int) -> None:
    d = next_attempt(attempt, retry_after=retry_after, status=429, rng=random.Random(seed))
    assert d.action == "retry"
    assert d.delay >= min(retry_after, 86400)
    assert d.delay <= max(min(retry_after, 86400), MAX_DELAY)


@pytest.mark.parametrize(
    ("status", "attempt", "action"),
    [
        (200, 1, "done"),
        (204, 5, "done"),
        (410, 1, "disable"),
        (400, 1, "dead"),
        (404, 1, "dead"),
        (401, 1, "dead"),
        (429, 12, "dead"),
        (None, 12, "dead"),
        (503, 11, "retry"),
        (408, 1, "retry"),
        (None, 1, "retry"),
    ],
)
def test_retry_plan_actions(status: int | None, attempt: int, action: str) -> None:
    decision = next_attempt(attempt, retry_after=None, status=status, rng=random.Random(1))
    assert decision.action == action
    if action != "retry":
        assert decision.delay == 0


@pytest.mark.parametrize("format", ["json", "slack", "telegram"])
def test_an_unconfirmed_incident_is_labelled_in_every_format(format: Format) -> None:
    unconfirmed = dataclasses.replace(INCIDENT, confirmed_at=None, voices=1.0)
    _, body = render(format, Change("incident.opened", unconfirmed), [], [], chat_id="-1")
    assert "UNCONFIRMED" in body.decode()
    _, confirmed = render(format, CHANGE, [], [], chat_id="-1")
    assert "UNCONFIRMED" not in confirmed.decode()
    if format == "json":
        assert json.loads(body)["data"]["status"] == "unconfirmed"
