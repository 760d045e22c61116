"""Fixtures: a throwaway PostgreSQL cluster for the session, a collector per test.

Storage tests take the ``backend`` fixture and run once on SQLite and once on PostgreSQL.
Each PostgreSQL test gets its own database, copied from a migrated template.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from collector_harness import Collector, start_collector

from collector.config import Config
from collector.store import migrate
from collector.store.db import Database
from lab.harness.postgres import PostgresUnavailable, ThrowawayCluster

ASN_TABLE = (
    "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n"
    "10.0.0.0\t10.255.255.255\t64501\tRU\tTEST-RU\n"
    "127.0.0.0\t127.255.255.255\t64500\tKZ\tTEST-KZ\n"
    "::1\t::1\t64500\tKZ\tTEST-KZ\n"
)
TEMPLATE = "cw_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    try:
        cluster = ThrowawayCluster()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with cluster.running():
        cluster.create_database(TEMPLATE)
        asyncio.run(_migrate(cluster.url(TEMPLATE)))
        yield cluster


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()


def fresh_pg_database(cluster: ThrowawayCluster) -> str:
    return cluster.create_database(f"cw_test_{next(_counter)}", template=TEMPLATE)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'collector.db'}"
    cluster: ThrowawayCluster = request.getfixturevalue("pg_cluster")
    return fresh_pg_database(cluster)


@pytest.fixture
def asn_table_file(tmp_path: Path) -> Path:
    path = tmp_path / "ip2asn.tsv"
    path.write_text(ASN_TABLE)
    return path


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """The store alone, migrated, with no collector and so none of its background tasks."""
    database = Database(db_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def config(db_url: str, tmp_path: Path, asn_table_file: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        db=db_url,
        ip_asn_db=asn_table_file,
        rate_per_second=0,
        metrics_refresh_seconds=0.1,
    )


@pytest.fixture
async def collector(config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(config)
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
def sqlite_config(tmp_path: Path, asn_table_file: Path) -> Config:
    """For tests of behaviour that does not depend on the database."""
    return Config(
        data_dir=tmp_path / "data",
        db=f"sqlite:///{tmp_path / 'collector.db'}",
        ip_asn_db=asn_table_file,
        rate_per_second=0,
    )


@pytest.fixture
async def sqlite_collector(sqlite_config: Config) -> AsyncIterator[Collector]:
    running = await start_collector(sqlite_config)
    try:
        yield running
    finally:
        await running.client.close()
