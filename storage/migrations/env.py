"""Alembic environment for Hearback: async engines, SQLite and PostgreSQL.

The database URL comes, in this order, from `config.attributes["url"]` (set by
`storage.migrate`), the `sqlalchemy.url` option, the DATABASE_URL environment variable, and the
project's default. A caller that already holds a connection can pass it as
`config.attributes["connection"]` (a sync `Connection`, e.g. inside `AsyncConnection.run_sync`).

On SQLite each migration runs in one real transaction (the driver's implicit transactions would
commit DDL statement by statement) and with foreign keys off: Alembic's batch mode rebuilds a
table by copying and dropping it, and a DROP with foreign keys on would cascade into other
tables. `PRAGMA foreign_key_check` runs before the commit so no dangling reference slips in.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from storage.db import create_engine, normalize_url
from storage.models import Base, UTCDateTime

DEFAULT_URL = "sqlite+aiosqlite:///./data/hearback.db"

config = context.config
if config.config_file_name is not None:  # alembic.ini, i.e. the alembic command line
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_URL
    )
    return normalize_url(url).render_as_string(hide_password=False)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write project types as the plain SQLAlchemy types they store as, so that migrations
    never import storage.models (a migration must keep meaning what it meant when written)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite can hardly ALTER a table: let op.batch_alter_table() rebuild it instead.
        render_as_batch=sqlite,
        transactional_ddl=True,
        render_item=_render_item,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration left dangling foreign keys: {problems[:10]}")


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = _url()
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _migration_connection(dbapi_connection: Any, _record: Any) -> None:
            # Runs after storage.db's own listener: take over transaction control, FKs off.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
