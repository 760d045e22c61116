"""The durable spool between measuring and uploading: SQLite in WAL mode, synchronous=FULL.

A measurement is committed here before anything else happens to it, and leaves only when the
collector has acknowledged it (accepted or duplicate), when the collector rejected it (then it
moves to a quarantine that keeps the reason), or when the bounds force a drop (then it is
counted and named in the history). ``history`` remembers the fate of every id ever spooled,
which is how an operator, or a test, can account for each measurement.

Bounds are a pure decision (``choose_drops``): when the spool is over its size, the oldest
``ok`` measurements go first, and the evidence that matters most (``offline``, ``blocked``)
last; anything older than the age bound goes regardless.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from probe.model import Measurement, encode

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    verdict TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    start_time TEXT NOT NULL,
    fate TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Fates in ``history``: still waiting, acknowledged, quarantined, dropped by a bound.
PENDING: Final = "pending"
ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"
REJECTED: Final = "rejected"
DROPPED_SIZE: Final = "dropped_size"
DROPPED_AGE: Final = "dropped_age"

# Lower drops first: plain successes before the evidence of blocking and shutdowns.
_DROP_ORDER: Final = {"ok": 0, "down": 1, "anomaly": 2, "blocked": 3, "offline": 4}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024 * 1024
    max_age_seconds: float = 30 * 86400
    history_seconds: float = 30 * 86400


@dataclass(frozen=True)
class Item:
    """What the bound decision needs to know about a pending measurement."""

    id: str
    size: int
    created: float
    verdict: str


@dataclass(frozen=True)
class Drops:
    by_size: tuple[str, ...] = ()
    by_age: tuple[str, ...] = ()


def choose_drops(items: Sequence[Item], limits: Limits, now: float) -> Drops:
    """Which pending measurements must go so the spool fits its bounds (pure)."""
    too_old = [i for i in items if now - i.created > limits.max_age_seconds]
    old_ids = {i.id for i in too_old}
    kept = [i for i in items if i.id not in old_ids]
    total = sum(i.size for i in kept)
    by_size: list[str] = []
    for item in sorted(kept, key=lambda i: (_DROP_ORDER.get(i.verdict, 2), i.created)):
        if total <= limits.max_bytes:
            break
        by_size.append(item.id)
        total -= item.size
    return Drops(tuple(by_size), tuple(i.id for i in too_old))


@dataclass(frozen=True)
class Pending:
    id: str
    body: bytes


class Spool:
    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path = path
        self.limits = limits
        # Measurements are the volunteer's: readable by this user only (SQLite gives its
        # -wal and -shm files the database file's mode).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- writing ------------------------------------------------------------------------

    def add(self, measurements: Iterable[Measurement], now: float | None = None) -> int:
        """Commit measurements durably (one transaction); returns how many were new."""
        moment = time.time() if now is None else now
        added = 0
        with self._transaction() as db:
            for m in measurements:
                ident = str(m.id)
                cursor = db.execute(
                    "INSERT OR IGNORE INTO pending (id, body, created, verdict) VALUES (?,?,?,?)",
                    (ident, encode(m), moment, m.analysis.verdict),
                )
                if cursor.rowcount:
                    added += 1
                    db.execute(
                        "INSERT OR IGNORE INTO history VALUES (?,?,?,?,?)",
                        (ident, m.service, m.start_time.isoformat(), PENDING, moment),
                    )
            self._enforce(db, moment)
        return added

    def _enforce(self, db: sqlite3.Connection, now: float) -> None:
        rows = db.execute("SELECT id, length(body), created, verdict FROM pending").fetchall()
        drops = choose_drops([Item(*row) for row in rows], self.limits, now)
        for ids, fate in ((drops.by_size, DROPPED_SIZE), (drops.by_age, DROPPED_AGE)):
            self._settle(db, ids, fate, now)
            _bump(db, fate, len(ids))
        db.execute(
            "DELETE FROM history WHERE fate != ? AND at < ?",
            (PENDING, now - self.limits.history_seconds),
        )

    def _settle(self, db: sqlite3.Connection, ids: Iterable[str], fate: str, now: float) -> None:
        for ident in ids:
            db.execute("DELETE FROM pending WHERE id = ?", (ident,))
            db.execute("UPDATE history SET fate = ?, at = ? WHERE id = ?", (fate, now, ident))

    def acknowledge(self, fates: dict[str, str], now: float | None = None) -> None:
        """Remove what the collector acknowledged (``accepted`` or ``duplicate``)."""
        moment = time.time() if now is None else now
        with self._transaction() as db:
            for fate in (ACCEPTED, DUPLICATE):
                ids = [i for i, f in fates.items() if f == fate]
                self._settle(db, ids, fate, moment)
                _bump(db, fate, len(ids))

    def quarantine(self, reasons: dict[str, str], now: float | None = None) -> None:
        """Move what the collector rejected aside, with its reason: never retried blindly."""
        moment = time.time() if now is None else now
        with self._transaction() as db:
            for ident, reason in reasons.items():
                row = db.execute("SELECT body FROM pending WHERE id = ?", (ident,)).fetchone()
                if row is None:
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?)",
                    (ident, row[0], reason[:2000], moment),
                )
                self._settle(db, [ident], REJECTED, moment)
                _bump(db, REJECTED, 1)

    def set_status(self, values: Mapping[str, object]) -> None:
        with self._transaction() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO status VALUES (?, ?)", (key, json.dumps(value)))

    # -- reading ------------------------------------------------------------------------

    def batch(self, limit: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT id, body FROM pending ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Pending(ident, bytes(body)) for ident, body in rows]

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def quarantined(self) -> list[tuple[str, str]]:
        return self._db.execute("SELECT id, reason FROM quarantine ORDER BY at").fetchall()

    def status(self) -> dict[str, object]:
        rows = self._db.execute("SELECT key, value FROM status").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def history(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT id, fate FROM history").fetchall())


def _bump(db: sqlite3.Connection, name: str, amount: int) -> None:
    if amount:
        db.execute(
            "INSERT INTO counters VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; a rollback on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def utc_iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds")
