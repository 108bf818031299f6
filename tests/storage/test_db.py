"""Engine set-up: URLs, SQLite's pragmas and lock waiting, throw-away databases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import (
    SQLITE_BUSY_TIMEOUT,
    backend_name,
    create_database,
    create_engine,
    drop_database,
    normalize_url,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite+aiosqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        normalize_url("mysql://u@h/db")


def test_backend_name() -> None:
    assert backend_name("sqlite:///x.db") == "sqlite"
    assert backend_name("postgres://h/db") == "postgresql"


async def _pragma(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as connection:
        return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()


async def test_sqlite_is_set_up_for_concurrent_use(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        assert await _pragma(engine, "journal_mode") == "wal"
        assert await _pragma(engine, "foreign_keys") == 1
        assert await _pragma(engine, "busy_timeout") == int(SQLITE_BUSY_TIMEOUT * 1000)
        assert await _pragma(engine, "synchronous") == 1  # NORMAL
        assert path.exists()
    finally:
        await engine.dispose()


async def test_sqlite_writers_wait_for_each_other(tmp_path: Path) -> None:
    """A second writer (another engine, as another process would be) waits for the lock
    instead of failing with "database is locked"; a reader is not blocked at all."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    first, second = create_engine(url), create_engine(url)
    try:
        async with first.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        holding = asyncio.Event()

        async def slow_writer() -> None:
            async with first.begin() as connection:
                await connection.exec_driver_sql("INSERT INTO t VALUES (1)")
                holding.set()
                await asyncio.sleep(0.3)

        async def second_writer() -> float:
            await holding.wait()
            started = time.perf_counter()
            async with second.begin() as connection:
                await connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            return time.perf_counter() - started

        async def reader() -> tuple[float, object]:
            await holding.wait()
            started = time.perf_counter()
            async with second.connect() as connection:
                count = (await connection.exec_driver_sql("SELECT count(*) FROM t")).scalar()
            return time.perf_counter() - started, count

        _, waited, (read_time, seen) = await asyncio.gather(
            slow_writer(), second_writer(), reader()
        )
        assert waited >= 0.15
        assert seen == 0  # the uncommitted row is invisible; the read did not wait for it
        assert read_time < waited
        async with first.connect() as connection:
            rows = (await connection.exec_driver_sql("SELECT n FROM t ORDER BY n")).all()
        assert [row.n for row in rows] == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()


async def test_in_memory_sqlite_is_one_database() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            await connection.exec_driver_sql("INSERT INTO t VALUES (7)")
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("SELECT n FROM t")).scalar() == 7
    finally:
        await engine.dispose()


async def test_throw_away_databases(empty_database_url: str, backend: str) -> None:
    """The helpers the fixtures and benchmarks use, on the suite's backend."""
    assert backend_name(empty_database_url) == backend
    server = empty_database_url  # any database on the same server, or a file beside it
    url = await create_database(server, "hearback_throwaway_check")
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
    await drop_database(url)
    await drop_database(url)  # dropping twice is fine
    with pytest.raises(ValueError, match="must match"):
        await create_database(server, "Robert'); DROP TABLE students;--")
