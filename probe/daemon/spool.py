"""The durable spool between measuring and uploading: SQLite in WAL mode, synchronous=FULL.

A measurement is committed here before anything else happens to it, and leaves only when the
collector has acknowledged it (accepted or duplicate), when the collector rejected it (then it
moves to a quarantine that keeps the reason), or when the bounds force a drop (then it is
counted and named in the history). ``history`` remembers the fate of every id ever spooled,
which is how an operator, or a test, can account for each measurement.

Bounds are a pure decision (``choose_drops``): when the spool is over its size, the oldest
``ok`` measurements go first, and the evidence that matters most (``offline``, ``blocked``)
last; anything older than the age bound goes regardless. The quarantine is bounded too (count
and bytes, oldest first, counted as ``dropped_quarantine``).

Faults never stop the daemon. A full disk makes a write impossible, not an error: the
measurements it would have kept are counted (``dropped_disk_full``, held in memory and
written once there is room again) and ``disk_full_since`` says so. A file SQLite cannot
read (``file is not a database``, ``database disk image is malformed``) is moved aside with
a timestamp and a new spool started; the status says where the old one went.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from probe.model import Measurement, encode

log = logging.getLogger("censorwatch.probe.spool")
T = TypeVar("T")

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
# Counters without a fate: nothing of these reached ``history`` or stays in it.
DROPPED_DISK_FULL: Final = "dropped_disk_full"
DROPPED_QUARANTINE: Final = "dropped_quarantine"
SPOOL_RESETS: Final = "spool_resets"
MOVED_ASIDE: Final = "spool_moved_aside"  # status key: where the unreadable file went
KEPT_ASIDE: Final = 3  # unreadable spools kept for inspection; older ones are deleted

# Lower drops first: plain successes before the evidence of blocking and shutdowns.
_DROP_ORDER: Final = {"ok": 0, "down": 1, "anomaly": 2, "blocked": 3, "offline": 4}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024 * 1024
    max_age_seconds: float = 30 * 86400
    history_seconds: float = 30 * 86400
    quarantine_max_items: int = 10_000
    quarantine_max_bytes: int = 16 * 1024 * 1024


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


def choose_quarantine_drops(sizes: Sequence[tuple[str, int]], limits: Limits) -> tuple[str, ...]:
    """Which quarantined measurements (oldest first, with their sizes) must go so the
    quarantine fits its count and byte bounds (pure)."""
    count, total = len(sizes), sum(size for _, size in sizes)
    dropped: list[str] = []
    for ident, size in sizes:
        if count <= limits.quarantine_max_items and total <= limits.quarantine_max_bytes:
            break
        dropped.append(ident)
        count, total = count - 1, total - size
    return tuple(dropped)


def disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def unreadable(exc: BaseException) -> bool:
    """SQLite's word that the file is not (or no longer) a database it can read."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


@dataclass(frozen=True)
class Pending:
    id: str
    body: bytes


class Spool:
    def __init__(self, path: Path, limits: Limits = Limits(), repair: bool = True) -> None:
        """``repair=False`` (for readers beside a running daemon, such as ``status``): an
        unreadable file raises ``sqlite3.DatabaseError`` instead of being moved aside."""
        self.path = path
        self.limits = limits
        self.repair = repair
        self.unsaved: Counter[str] = Counter()  # counts a full disk kept from the file
        self.disk_full_since: float | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not (repair and unreadable(exc)):
                raise
            self._renew(exc)

    def _open(self) -> sqlite3.Connection:
        # Measurements are the volunteer's: readable by this user only (SQLite gives its
        # -wal and -shm files the database file's mode).
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _write(self, work: Callable[[sqlite3.Connection], T], lost: int = 0) -> T | None:
        """``work`` in one transaction, with the faults handled (see the module's doc):
        on a full disk nothing is written, ``lost`` measurements are counted and None
        returned; an unreadable file is moved aside and ``work`` done on the new one."""
        for tries_left in (1, 0):
            try:
                with self._transaction() as db:
                    for name, amount in self.unsaved.items():
                        _bump(db, name, amount)
                    result = work(db)
            except sqlite3.DatabaseError as exc:
                if disk_full(exc):
                    self._note_full(lost)
                    return None
                if not (self.repair and unreadable(exc)) or not tries_left:
                    raise
                self._db.close()
                self._renew(exc)
                continue
            self.unsaved.clear()
            if self.disk_full_since is not None:
                log.warning("the disk has room again; the spool is written as before")
                self.disk_full_since = None
            return result
        return None  # pragma: no cover - the loop always returns

    def _note_full(self, lost: int) -> None:
        self.unsaved[DROPPED_DISK_FULL] += lost
        if self.disk_full_since is None:
            self.disk_full_since = time.time()
            log.error(
                "the disk holding %s is full: measuring goes on, but measurements cannot be "
                "kept until there is room (they are counted as dropped_disk_full)",
                self.path,
            )

    def _read(self, query: str, parameters: Sequence[object] = ()) -> list[Any]:
        """Rows of a read; an unreadable file is moved aside (and reads as a new spool)."""
        try:
            return self._db.execute(query, parameters).fetchall()
        except sqlite3.DatabaseError as exc:
            if not (self.repair and unreadable(exc)):
                raise
            self._db.close()
            self._renew(exc)
            return self._db.execute(query, parameters).fetchall()

    def _renew(self, exc: sqlite3.DatabaseError) -> None:
        """Keep the unreadable file (already closed) for inspection under a timestamped
        name, and start a new spool."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        for old in sorted(self.path.parent.glob(f"{self.path.name}.corrupt-*"))[:-KEPT_ASIDE]:
            old.unlink(missing_ok=True)
        log.error(
            "the spool %s could not be read (%s): moved it aside to %s and started a new one",
            self.path,
            exc,
            aside.name,
        )
        self._db = self._open()
        self.unsaved[SPOOL_RESETS] += 1
        moved = {"path": str(aside), "at": time.time(), "error": str(exc)}
        self._write(lambda db: _set(db, {MOVED_ASIDE: moved}))

    # -- writing ------------------------------------------------------------------------

    def add(self, measurements: Iterable[Measurement], now: float | None = None) -> int:
        """Commit measurements durably (one transaction); returns how many were new."""
        moment = time.time() if now is None else now
        rows = [(str(m.id), encode(m), m) for m in measurements]

        def work(db: sqlite3.Connection) -> int:
            added = 0
            for ident, body, m in rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO pending (id, body, created, verdict) VALUES (?,?,?,?)",
                    (ident, body, moment, m.analysis.verdict),
                )
                if cursor.rowcount:
                    added += 1
                    db.execute(
                        "INSERT OR IGNORE INTO history VALUES (?,?,?,?,?)",
                        (ident, m.service, m.start_time.isoformat(), PENDING, moment),
                    )
            self._enforce(db, moment)
            return added

        return self._write(work, lost=len(rows)) or 0

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
        """Remove what the collector acknowledged (``accepted`` or ``duplicate``). On a full
        disk they stay, are sent again, and come back as duplicates."""
        moment = time.time() if now is None else now

        def work(db: sqlite3.Connection) -> None:
            for fate in (ACCEPTED, DUPLICATE):
                ids = [i for i, f in fates.items() if f == fate]
                self._settle(db, ids, fate, moment)
                _bump(db, fate, len(ids))

        self._write(work)

    def quarantine(self, reasons: dict[str, str], now: float | None = None) -> None:
        """Move what the collector rejected aside, with its reason: never retried blindly."""
        moment = time.time() if now is None else now

        def work(db: sqlite3.Connection) -> None:
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
            self._bound_quarantine(db)

        self._write(work)

    def quarantine_all(self, reason: str, now: float | None = None) -> int:
        """Quarantine everything pending (measurements the collector will never take, such
        as those of a revoked probe); how many."""
        pending = [ident for (ident,) in self._read("SELECT id FROM pending")]
        self.quarantine({str(ident): reason for ident in pending}, now)
        return len(pending)

    def _bound_quarantine(self, db: sqlite3.Connection) -> None:
        sizes = db.execute("SELECT id, length(body) FROM quarantine ORDER BY at, rowid").fetchall()
        dropped = choose_quarantine_drops(sizes, self.limits)
        for ident in dropped:
            db.execute("DELETE FROM quarantine WHERE id = ?", (ident,))
        _bump(db, DROPPED_QUARANTINE, len(dropped))

    def set_status(self, values: Mapping[str, object]) -> None:
        """Best effort: on a full disk the status keeps its last values."""
        self._write(lambda db: _set(db, values))

    # -- reading ------------------------------------------------------------------------

    def batch(self, limit: int) -> list[Pending]:
        rows = self._read("SELECT id, body FROM pending ORDER BY seq LIMIT ?", (limit,))
        return [Pending(str(ident), bytes(body)) for ident, body in rows]

    def depth(self) -> int:
        return int(self._read("SELECT count(*) FROM pending")[0][0])

    def counters(self) -> dict[str, int]:
        """Counters as written, plus those a full disk still holds in memory."""
        stored = Counter(
            {str(k): int(v) for k, v in self._read("SELECT name, value FROM counters")}
        )
        return dict(stored + self.unsaved)

    def quarantined(self) -> list[tuple[str, str]]:
        rows = self._read("SELECT id, reason FROM quarantine ORDER BY at, rowid")
        return [(str(ident), str(reason)) for ident, reason in rows]

    def status(self) -> dict[str, object]:
        rows = self._read("SELECT key, value FROM status")
        return {str(key): json.loads(str(value)) for key, value in rows}

    def history(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._read("SELECT id, fate FROM history")}


def _set(db: sqlite3.Connection, values: Mapping[str, object]) -> None:
    for key, value in values.items():
        db.execute("INSERT OR REPLACE INTO status VALUES (?, ?)", (key, json.dumps(value)))


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
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:  # SQLite may have rolled back already (a full disk)
            self.db.execute("ROLLBACK")


def utc_iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds")
