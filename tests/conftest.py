"""Database fixtures for the whole suite, on a real database, never a mock.

The backend is chosen by HEARBACK_TEST_DATABASE_URL:
- unset: a SQLite file in a temporary directory;
- a PostgreSQL URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:54329/postgres): a fresh
  throw-away database with a unique name is created on that server for the test session and
  dropped at its end. The URL's own database is only used to issue CREATE/DROP DATABASE.

The database is migrated once per session with `storage.migrate.upgrade` (the real migrations,
not `create_all`), and every table is emptied after each test that used it.

Fixtures: `backend` ("sqlite" | "postgresql"), `database_url`, `engine`, `session_factory`,
`session`, `clock` (a FakeClock), and `empty_database_url` (a new, never-migrated database for
migration tests). Tests that build their own engines on `database_url` must dispose of them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from bot.clock import FakeClock
from storage import migrate
from storage.db import (
    backend_name,
    create_database,
    create_engine,
    create_session_factory,
    drop_database,
)
from storage.models import Base
from tests.redis_server import redis_server

TEST_DATABASE_ENV = "HEARBACK_TEST_DATABASE_URL"

T = TypeVar("T")


def _server_url() -> str | None:
    return os.environ.get(TEST_DATABASE_ENV) or None


def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking set-up code in a thread of its own. `asyncio.run` (used by migrations and
    here) replaces the calling thread's event loop, which must not happen to pytest-asyncio's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def pytest_report_header(config: pytest.Config) -> str:
    server = _server_url()
    if server is None:
        return "hearback database backend: sqlite (temporary file)"
    shown = server.split("@")[-1]
    return f"hearback database backend: {backend_name(server)} (throw-away database on {shown})"


@pytest.fixture(scope="session")
def backend() -> str:
    """Which database the suite runs on: "sqlite" or "postgresql"."""
    server = _server_url()
    return "sqlite" if server is None else backend_name(server)


@pytest.fixture(scope="session")
def _database_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where test databases are made: the PostgreSQL server, or a directory for SQLite files."""
    server = _server_url()
    if server is not None:
        return server
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('databases')}/"


def _new_name() -> str:
    return f"hearback_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def _migrated_database(_database_server: str) -> Iterator[str]:
    url = _in_thread(asyncio.run, create_database(_database_server, _new_name()))
    try:
        _in_thread(migrate.upgrade, url)
        yield url
    finally:
        _in_thread(asyncio.run, drop_database(url))


async def _empty_all_tables(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            # Children before parents, so foreign keys never object.
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
async def database_url(_migrated_database: str) -> AsyncIterator[str]:
    """The URL of the session's migrated database; every table is emptied after the test."""
    yield _migrated_database
    await _empty_all_tables(_migrated_database)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
async def session(
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-01-05 12:00 UTC that moves only when told to."""
    return FakeClock()


@pytest.fixture
async def empty_database_url(_database_server: str) -> AsyncIterator[str]:
    """A brand-new database with no tables at all (not even alembic_version), dropped after."""
    url = await create_database(_database_server, _new_name())
    yield url
    await drop_database(url)


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    """A real redis-server of the test's own, gone when the test ends."""
    async with redis_server(tmp_path) as url:
        yield url
