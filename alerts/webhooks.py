"""Standard Webhooks: signatures, message bodies (signed JSON, Slack, Telegram), retry plan.

Pure: no sockets. The collector's delivery worker posts what `render` and `sign` produce and
asks `next_attempt` what to do after each response.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from alerts.correlation import Link, Stats
from alerts.model import Change
from alerts.text import headline, lines

SECRET_PREFIX = "whsec_"
Format = Literal["json", "slack", "telegram"]


class WebhookSecretError(ValueError):
    """A secret that is not `whsec_<base64>` of at least 24 bytes."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError as exc:
        raise WebhookSecretError(f"webhook secret is not base64: {secret[:10]}…") from exc
    if len(key) < 24:
        raise WebhookSecretError(f"webhook secret too short: {len(key)} bytes, need 24")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers for one message; `secret` may hold several space-separated secrets (rotation)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secret.split()
    ]
    if not signatures:
        raise WebhookSecretError("no webhook secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def render(
    format: Format,
    change: Change,
    links: Sequence[Link],
    stats: Sequence[Stats],
    *,
    chat_id: str | None = None,
    timestamp: datetime | None = None,
) -> tuple[str, bytes]:
    """(content type, body) of the message for one change, in the subscriber's format.

    `timestamp` defaults to when the change happened (resolution or last sighting), so the
    same change always renders to the same bytes.
    """
    if format == "json":
        payload: dict[str, Any] = _json_payload(change, links, stats, timestamp)
    elif format == "slack":
        payload = _slack_payload(change, links, stats)
    elif format == "telegram":
        if not chat_id:
            raise ValueError("a Telegram subscriber needs a chat_id")
        payload = {
            "chat_id": chat_id,
            "text": "\n".join(lines(change, links, stats)),
            "disable_web_page_preview": True,
        }
    else:
        raise ValueError(f"unknown webhook format {format!r}")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return "application/json", body


def _json_payload(
    change: Change, links: Sequence[Link], stats: Sequence[Stats], timestamp: datetime | None
) -> dict[str, Any]:
    inc = change.incident
    when = timestamp or inc.resolved_at or inc.last_seen
    return {
        "type": change.kind,
        "timestamp": _iso(when),
        "data": {
            "id": inc.id,
            "kind": inc.kind,
            "status": inc.status,
            "confirmed_at": _iso(inc.confirmed_at) if inc.confirmed_at else None,
            "voices": inc.voices,
            "service": inc.service,
            "cc": inc.cc,
            "asns": list(inc.asns),
            "onset": _iso(inc.onset),
            "last_seen": _iso(inc.last_seen),
            "resolved_at": _iso(inc.resolved_at) if inc.resolved_at else None,
            "methods": list(inc.methods),
            "confidence": inc.confidence,
            "probes": inc.probes,
            "evidence": list(inc.evidence),
            "rules": list(inc.rules),
            "rules_version": inc.rules_version,
            "summary": " ".join(lines(change, links, stats)),
            "events": [
                {"event_id": lk.event_id, "delay_seconds": lk.delay_seconds, "title": lk.title}
                for lk in links
            ],
            "correlation": [s.line for s in stats],
        },
    }


def _slack_payload(change: Change, links: Sequence[Link], stats: Sequence[Stats]) -> dict[str, Any]:
    text = lines(change, links, stats)
    evidence = "\n".join(f"• {e}" for e in change.incident.evidence)
    inc = change.incident
    rules = f"rules {', '.join(inc.rules)} (v{inc.rules_version}) · incident {inc.id}"
    return {
        "text": headline(change),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(" ".join(text))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(evidence)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(rules)}]},
        ],
    }


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") or " "


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


# --- retry plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "dead", "disable", "done"]
    delay: float  # seconds until the next attempt; 0 unless retrying


BASE_DELAY = 5.0
MAX_DELAY = 6 * 3600.0
MAX_RETRY_AFTER = 24 * 3600.0


def next_attempt(
    attempt: int,
    *,
    retry_after: float | None,
    status: int | None,
    rng: random.Random,
    max_attempts: int = 12,
) -> Decision:
    """What to do after attempt number `attempt` (1 = the first) got `status` (None: no answer).

    2xx → done; 410 → disable the subscriber; other 4xx except 408/429 → dead letter;
    otherwise retry after full-jitter exponential backoff (uniform in
    [0, min(MAX_DELAY, BASE_DELAY * 2**(attempt-1))]), never sooner than Retry-After (capped
    at a day), until `max_attempts` attempts have been made → dead letter. (The probe's
    upload backoff, `probe.daemon.backoff`, is a different plan; its docstring says why.)
    """
    if status is not None and 200 <= status < 300:
        return Decision("done", 0.0)
    if status == 410:
        return Decision("disable", 0.0)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return Decision("dead", 0.0)
    if attempt >= max_attempts:
        return Decision("dead", 0.0)
    ceiling = min(MAX_DELAY, BASE_DELAY * 2.0 ** min(attempt - 1, 40))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return Decision("retry", delay)
