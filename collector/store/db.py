"""The database connection: an embedded SQLite file by default, PostgreSQL by URL.

Everything dialect-specific the rest of the collector needs lives here: the driver for a
URL, the ``INSERT … ON CONFLICT`` construct, and which errors are worth a retry. SQLite
allows one writer at a time, so writes in this process queue on a lock instead of failing
with ``database is locked``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

Dialect = Literal["sqlite", "postgresql"]
T = TypeVar("T")

_TRANSIENT_SQLSTATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_RETRIES: Final = 5


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive times; everything stored is UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def as_utc_or_none(moment: dt.datetime | None) -> dt.datetime | None:
    """:func:`as_utc` for a column that may be empty."""
    return None if moment is None else as_utc(moment)


class DatabaseURLError(ValueError):
    """A database URL the collector cannot use."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = redact(url)
        self.problem = problem
        super().__init__(f"database URL {self.url!r}: {problem}")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def normalise_url(url: str) -> tuple[URL, Dialect]:
    """Pick the async driver: ``sqlite:///file`` → aiosqlite, ``postgresql://`` → asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(url, "not a URL like sqlite:///file.db or postgresql://…") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+aiosqlite"):
            raise DatabaseURLError(url, "SQLite works through aiosqlite only")
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError(url, "SQLite needs a file path (sqlite:///path/to/file.db)")
        return parsed.set(drivername="sqlite+aiosqlite"), "sqlite"
    if backend in ("postgresql", "postgres"):
        if parsed.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise DatabaseURLError(url, "PostgreSQL works through asyncpg only")
        return parsed.set(drivername="postgresql+asyncpg"), "postgresql"
    raise DatabaseURLError(url, f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def is_transient(exc: BaseException) -> bool:
    """A deadlock, serialization failure or busy SQLite file: retrying may succeed."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state in _TRANSIENT_SQLSTATES or "database is locked" in str(orig)


async def driver_of(connection: AsyncConnection) -> Any:
    """The asyncpg connection under ``connection`` (from ``Database.autocommit``)."""
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def asyncpg_in_transaction(connection: AsyncConnection) -> Any:
    """The asyncpg connection under ``connection``, for bulk statements SQLAlchemy would
    spell row by row. It must already be inside the caller's transaction, or what it
    writes would commit on its own."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("bulk statement outside a transaction: run a query through it first")
    return driver


class Database:
    """An async engine plus the dialect facts the collector's SQL depends on."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        parsed, self.dialect = normalise_url(url)
        self.url = parsed
        if self.dialect == "sqlite":
            assert parsed.database is not None
            Path(parsed.database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(parsed)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """``INSERT`` that understands ``on_conflict_do_nothing``/``_update`` here."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        if self._write_lock is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._write_lock, self.engine.begin() as connection:
            yield connection

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction, again from the start after a deadlock."""
        for attempt in range(_RETRIES):
            try:
                async with self.writing() as connection:
                    return await work(connection)
            except DBAPIError as exc:
                if not is_transient(exc) or attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def autocommit(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` on a connection in autocommit mode, again from the start after a
        deadlock. Each statement commits on its own, so reads pay no BEGIN and ROLLBACK
        round trips and a batch written in one statement holds its locks only while it
        runs; ``driver_of`` gives the asyncpg connection for bulk statements."""
        for attempt in range(_RETRIES):
            try:
                async with self.engine.connect() as connection:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    return await work(connection)
            except Exception as exc:  # SQLAlchemy's, or asyncpg's own from the driver
                retry = is_transient(exc) or getattr(exc, "sqlstate", None) in _TRANSIENT_SQLSTATES
                if not retry or attempt == _RETRIES - 1:
                    raise
            await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
