"""Enrolment, check-in and upload: the only module that talks to the collector.

aiohttp errors are translated here, at the edge, into a small tree: ``Unreachable`` (try
again later), ``Refused`` (the collector answered with an error status; carries it and any
``Retry-After``), and ``TokenRevoked`` (401/403 to a probe token: stop and say so). Requests
carry the token and the data, nothing that says where the probe is.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
import msgspec

from probe import SOFTWARE_NAME, __version__
from probe.daemon.backoff import parse_retry_after

T = TypeVar("T")
USER_AGENT: Final = f"{SOFTWARE_NAME}/{__version__}"


class CollectorError(Exception):
    """Any failure to get an answer the probe can use."""


class Unreachable(CollectorError):
    """No HTTP answer (connection refused, timeout, DNS): the network or the collector is down."""


class Refused(CollectorError):
    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"collector answered {status}: {message}")
        self.status = status
        self.retry_after = retry_after


class TokenRevoked(CollectorError):
    """401/403 to the probe's token: it was revoked (or never valid here)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(
            f"the collector refused this probe's token ({status}: {message}): it was revoked, "
            "or belongs to another collector"
        )
        self.status = status


class Enrolment(msgspec.Struct, kw_only=True):
    probe_id: str
    token: str


class Schedule(msgspec.Struct, kw_only=True):
    interval_seconds: float
    jitter_seconds: float


class TargetText(msgspec.Struct, kw_only=True):
    format: str
    sha256: str
    text: str


class WatchWindow(msgspec.Struct, kw_only=True):
    """Denser measuring around an announced event (``alerts.watch`` on the collector)."""

    id: str
    title: str = ""
    start: dt.datetime
    end: dt.datetime
    services: list[str] | None = None  # None: every service
    intervals: dict[str, float] = {}


class Watch(msgspec.Struct, kw_only=True):
    windows: list[WatchWindow] = []


class CheckIn(msgspec.Struct, kw_only=True):
    probe_id: str
    control: bool = False
    cc: str | None = None
    asn: int | None = None
    attestation: str | None = None  # the collector's signed word on this network, for a while
    schedule: Schedule
    targets: TargetText
    watch: Watch = msgspec.field(default_factory=Watch)
    check_in_seconds: float | None = None  # how often the collector asks to hear from us


class ItemResult(msgspec.Struct, kw_only=True):
    index: int
    result: str
    id: str | None = None
    reason: str | None = None


class BatchResult(msgspec.Struct, kw_only=True):
    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


@dataclass
class CollectorClient:
    base_url: str
    timeout: float = 60.0
    _session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=10),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def enrol(self, enrolment_token: str | None) -> Enrolment:
        headers = {"Authorization": f"Bearer {enrolment_token}"} if enrolment_token else {}
        headers["Content-Type"] = "application/json"
        status, body, _ = await self._post("/api/v1/probes", b"{}", headers)
        if status in (401, 403):
            raise Refused(status, _message(body) + " (enrolment token missing or invalid)", None)
        _expect(status, body, 201)
        return _decode(body, Enrolment)

    async def check_in(self, token: str) -> CheckIn:
        status, body, _ = await self._post("/api/v1/probes/check-in", b"{}", _auth(token))
        _probe_status(status, body, None)
        return _decode(body, CheckIn)

    async def upload(self, token: str, bodies: Sequence[bytes]) -> BatchResult:
        """Post measurements (as encoded) as gzipped NDJSON; the per-item results."""
        payload = gzip.compress(b"\n".join(bodies), compresslevel=6)
        headers = {
            **_auth(token),
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }
        status, body, retry_after = await self._post("/api/v1/measurements", payload, headers)
        _probe_status(status, body, retry_after)
        return _decode(body, BatchResult)

    async def _post(
        self, path: str, data: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, float | None]:
        try:
            async with self.session().post(self.base_url + path, data=data, headers=headers) as r:
                body = await r.read()
                retry = parse_retry_after(r.headers.get("Retry-After"), dt.datetime.now(dt.UTC))
                return r.status, body, retry
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unreachable(f"collector unreachable: {type(exc).__name__}") from exc


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _probe_status(status: int, body: bytes, retry_after: float | None) -> None:
    if status in (401, 403):
        raise TokenRevoked(status, _message(body))
    _expect(status, body, 200, retry_after)


def _expect(status: int, body: bytes, wanted: int, retry_after: float | None = None) -> None:
    if status != wanted:
        raise Refused(status, _message(body), retry_after)


def _message(body: bytes) -> str:
    try:
        value: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(value.get("message") or error or value)[:200]
    return str(value)[:200]


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Refused(200, f"unreadable answer: {exc}", None) from exc
