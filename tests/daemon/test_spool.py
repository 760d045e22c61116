"""The spool on a real SQLite file: durability settings, fates, quarantine, counted drops."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from lab.harness.samples import measurement
from probe.daemon.spool import Limits, Spool
from probe.model import Verdict, encode


def test_written_durably_and_privately(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    try:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        m = measurement()
        assert spool.add([m, m]) == 1
    finally:
        spool.close()
    assert stat.S_IMODE((tmp_path / "spool.sqlite3").stat().st_mode) == 0o600
    # A second connection (another process after a crash) sees it committed.
    db = sqlite3.connect(tmp_path / "spool.sqlite3")
    assert db.execute("SELECT id FROM pending").fetchall() == [(str(m.id),)]
    db.close()


def test_fates_and_quarantine(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    try:
        a, b, c = measurement(), measurement(), measurement()
        spool.add([a, b, c])
        spool.acknowledge({str(a.id): "accepted", str(b.id): "duplicate"})
        spool.quarantine({str(c.id): "invalid measurement: bad"})
        assert spool.depth() == 0
        assert spool.quarantined() == [(str(c.id), "invalid measurement: bad")]
        assert spool.history() == {
            str(a.id): "accepted",
            str(b.id): "duplicate",
            str(c.id): "rejected",
        }
        assert spool.counters() == {"accepted": 1, "duplicate": 1, "rejected": 1}
    finally:
        spool.close()


def test_drops_are_counted_and_evidence_kept(tmp_path: Path) -> None:
    verdicts: list[Verdict] = ["offline", "ok", "blocked", "ok"]
    spooled = [measurement(verdict=v) for v in verdicts]
    room = len(encode(spooled[0])) + len(encode(spooled[2]))  # for two of them
    spool = Spool(tmp_path / "spool.sqlite3", Limits(max_bytes=room))
    try:
        for i, m in enumerate(spooled):
            spool.add([m], now=float(i))
        history = spool.history()
        assert spool.counters()["dropped_size"] == 2
        assert history[str(spooled[1].id)] == "dropped_size"
        assert history[str(spooled[3].id)] == "dropped_size"
        assert {p.id for p in spool.batch(10)} == {str(spooled[0].id), str(spooled[2].id)}
        spool.add([measurement()], now=40 * 86400.0)
        assert spool.counters()["dropped_age"] == 2
    finally:
        spool.close()
