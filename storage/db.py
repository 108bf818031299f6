"""Engines and sessions for SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).

SQLite is tuned so several writers on one file wait their turn instead of failing:

- WAL journal: readers never block the writer, and the writer never blocks readers.
- A busy timeout: a writer that finds the file locked waits (up to `SQLITE_BUSY_TIMEOUT`) rather
  than raising "database is locked" at once.
- The driver's default transaction handling is kept on purpose: it opens the transaction at the
  first write (INSERT/UPDATE/DELETE), so a transaction never holds a read snapshot that it later
  has to upgrade to a write lock. Such upgrades fail immediately with SQLITE_BUSY whatever the
  busy timeout is; this way every writer simply queues for the lock. The price: reads before the
  first write of a transaction are not isolated from other writers, so write code as conditional
  statements (`UPDATE … WHERE state = …`, `INSERT … ON CONFLICT`) rather than read-then-write.
- Foreign keys are enforced (SQLite leaves them off unless asked, per connection).

Also here: `create_database` / `drop_database`, to make and remove throw-away databases for tests
and benchmarks on either backend.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from storage import sqlite_driver

#: How long a SQLite writer waits for the lock before giving up, in seconds.
SQLITE_BUSY_TIMEOUT = 30.0

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def normalize_url(url: str | URL) -> URL:
    """The URL with its async driver: `sqlite://…` → aiosqlite, `postgres(ql)://…` → asyncpg.

    Hosting platforms hand out `postgres://` URLs; accepting them saves users a surprise.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database {parsed.drivername!r}: use sqlite+aiosqlite:// or "
            "postgresql+asyncpg://"
        )
    # No driver, or the default synchronous one: use the async driver we ship with.
    if driver in ("", "pysqlite", "psycopg2"):
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    return parsed


def backend_name(url: str | URL) -> str:
    """Which backend a URL is for: "sqlite" or "postgresql"."""
    return normalize_url(url).get_backend_name()


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`, set up for this project (see the module docstring).

    For SQLite the file's parent directory is created if missing. Extra keyword arguments go to
    SQLAlchemy's `create_async_engine` (e.g. `poolclass=NullPool`, `pool_size=…`).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _create_sqlite_engine(parsed, **kwargs)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = _create_async_engine(parsed, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


def _without_nul(
    _connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
) -> tuple[str, Any]:
    """PostgreSQL refuses the NUL character in text ("invalid byte sequence"), which anyone can
    type into a Telegram message; SQLite keeps it. Dropping it here keeps every backend storing
    the same words, and a customer's message is never lost to one invisible character."""
    if many:
        return statement, [_strip_nul(row) for row in parameters]
    return statement, _strip_nul(parameters)


def _strip_nul(parameters: Any) -> Any:
    # Every statement passes here: copy nothing unless a NUL is there, as it almost never is.
    if isinstance(parameters, dict):
        if any(_has_nul(v) for v in parameters.values()):
            return {k: _one_without_nul(v) for k, v in parameters.items()}
    elif isinstance(parameters, list | tuple) and any(_has_nul(v) for v in parameters):
        return type(parameters)(_one_without_nul(v) for v in parameters)
    return parameters


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def _one_without_nul(value: Any) -> Any:
    return value.replace("\x00", "") if _has_nul(value) else value


def serving_options(url: str | URL) -> dict[str, Any]:
    """Engine options for the running bot (not for tools and tests, which may hold a session
    while another does its work).

    SQLite: one connection. SQLite has one writer at a time anyway; with several connections the
    waiting writers sleep in SQLite's busy handler in growing steps (up to 100 ms each), which
    the conversation benchmark saw as seconds of p99 latency under load. With one connection they
    wait their turn in the pool instead, in order and without sleeping. Code that holds a
    session must therefore never wait for a second one (services open one session per unit of
    work and close it before talking to Telegram).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite" and _sqlite_file(parsed) is not None:
        return {"pool_size": 1, "max_overflow": 0, "pool_timeout": 120}
    return {}


def _create_sqlite_engine(url: URL, **kwargs: Any) -> AsyncEngine:
    path = _sqlite_file(url)
    if path is None:
        # Every connection to ":memory:" is a new, empty database: share a single one.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    # sqlite3's own busy handler; the PRAGMA below sets the same, for clarity in the database.
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT)
    # aiosqlite with one round trip to its thread per statement (storage.sqlite_driver); the
    # dialect calls it with the arguments it would give aiosqlite.connect.
    connect_args.setdefault("async_creator_fn", sqlite_driver.connect)
    engine = _create_async_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
                # With WAL, NORMAL is durable against application crashes (a power loss may
                # lose the last transactions, never corrupt the file) and much faster than FULL.
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each. Objects stay readable after commit
    (`expire_on_commit=False`): with async IO a lazy reload after commit would fail."""
    return async_sessionmaker(engine, expire_on_commit=False)


# ----------------------------------------------------------------- throw-away databases


_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def create_database(server_url: str | URL, name: str | None = None) -> str:
    """Create a new, empty database and return its URL (with the password, for connecting).

    PostgreSQL: `server_url` points at any database on the server (e.g. `…/postgres`); a database
    `name` (default: a unique `hearback_<hex>`) is created there. SQLite: `server_url` names a
    file or a directory (a URL ending in "/"); a new file `name`.db is made next to / in it.
    """
    parsed = normalize_url(server_url)
    name = name or f"hearback_{uuid.uuid4().hex[:12]}"
    if not _SAFE_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_SAFE_NAME.pattern}")
    if parsed.get_backend_name() == "sqlite":
        return _new_sqlite_file(parsed, name)
    engine = _create_async_engine(parsed, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str | URL) -> None:
    """Remove a database made by `create_database` (ends other sessions on it first).
    Missing databases are not an error."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        _remove_sqlite_files(parsed)
        return
    name = parsed.database
    if not name or not _SAFE_NAME.match(name):
        raise ValueError(f"refusing to drop database {name!r}")
    # Connect to the maintenance database: a database cannot be dropped from inside itself.
    engine = _create_async_engine(
        parsed.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await engine.dispose()


# SQLite's "databases" are files; these run quick local file operations, fine from async code.


def _new_sqlite_file(url: URL, name: str) -> str:
    base = _sqlite_file(url)
    if base is None:
        raise ValueError("an in-memory SQLite URL cannot hold another database")
    directory = base if str(url.database).endswith("/") else base.parent
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.db"
    if target.exists():
        raise FileExistsError(target)
    return url.set(database=str(target)).render_as_string(hide_password=False)


def _remove_sqlite_files(url: URL) -> None:
    path = _sqlite_file(url)
    if path is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def insert_for(session: AsyncSession) -> Callable[[Any], sqlite.Insert | postgresql.Insert]:
    """The dialect's INSERT, which has ON CONFLICT (both backends support it)."""
    return insert_for_dialect(session.get_bind().dialect.name)


def insert_for_dialect(name: str) -> Callable[[Any], sqlite.Insert | postgresql.Insert]:
    """`insert_for` by dialect name ("sqlite", "postgresql")."""
    return postgresql.insert if name == "postgresql" else sqlite.insert
