"""storage.sqlite_driver under SQLAlchemy: results of every size, counts, streaming, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, serving_options
from storage.sqlite_driver import PREFETCH, Connection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


async def test_the_bots_engine_runs_on_the_one_round_trip_driver(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/serving.db"
    engine = create_engine(url, **serving_options(url))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert isinstance(raw.dbapi_connection.driver_connection, Connection)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("rows", [0, 1, PREFETCH - 1, PREFETCH, PREFETCH + 1, 3 * PREFETCH + 7])
async def test_results_of_every_size_come_whole_and_in_order(
    engine: AsyncEngine, rows: int
) -> None:
    if rows:
        async with engine.begin() as connection:
            inserted = await connection.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"row{n}"} for n in range(rows)]
            )
            assert inserted.rowcount == rows
    async with engine.connect() as connection:
        values = (await connection.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
        # Streamed (a server-side cursor): read a chunk at a time.
        streamed = [v async for v in await connection.stream_scalars(text("SELECT v FROM t"))]
    assert values == [f"row{n}" for n in range(rows)]
    assert sorted(streamed) == sorted(values)


async def test_counts_and_ids_are_read_after_the_cursor_closed(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        second = await connection.execute(text("INSERT INTO t (v) VALUES ('b')"))
        assert (first.lastrowid, second.lastrowid) == (1, 2)
        changed = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 0"))
        assert changed.rowcount == 2
        none = await connection.execute(text("UPDATE t SET v = 'x' WHERE id = 99"))
        assert none.rowcount == 0
        returned = await connection.execute(text("INSERT INTO t (v) VALUES ('c') RETURNING id"))
        assert returned.scalar_one() == 3


async def test_a_result_left_unread_ends_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": str(n)} for n in range(2 * PREFETCH)]
        )
    async with engine.connect() as connection:
        streamed = await connection.stream(text("SELECT v FROM t"))
        assert await streamed.fetchone() is not None
        await streamed.close()  # the rest is never read
        # A writer can still take the file: no read snapshot was left open.
        async with engine.begin() as other:
            await other.execute(text("DELETE FROM t"))
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_errors_and_rollbacks_are_sqlalchemys_as_before(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (v) VALUES ('other')"))
            await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))
    async with engine.connect() as connection:
        values = (await connection.execute(text("SELECT v FROM t"))).scalars().all()
    assert values == ["same"]  # the failed transaction left nothing behind
