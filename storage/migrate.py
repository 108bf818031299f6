"""Run the schema migrations from code (`hearback db upgrade`, start-up, tests).

The Alembic configuration is built here rather than read from alembic.ini, and points at the
migrations directory inside this package, so it works from an installed wheel in any working
directory. The database URL travels in `Config.attributes`, not in the ini options, because
configparser would try to interpolate a `%` in a password.

`upgrade`, `downgrade` and `current` are synchronous: Alembic's env.py runs its own event loop
(`asyncio.run`), which cannot start inside a running one. Async code uses `upgrade_async`, which
runs the migration in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from storage.db import create_engine, normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic Config for this package's migrations against `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = normalize_url(url).render_as_string(hide_password=False)
    return config


def _refuse_inside_event_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"storage.migrate.{name}() cannot run inside a running event loop; "
        "await storage.migrate.upgrade_async() instead"
    )


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (creating the SQLite file if needed)."""
    _refuse_inside_event_loop("upgrade")
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Take the database at `url` down to `revision` ("base" removes every table)."""
    _refuse_inside_event_loop("downgrade")
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str | URL, revision: str = "head") -> None:
    """`upgrade` for async callers: runs in a thread, which has no event loop of its own."""
    await asyncio.to_thread(upgrade, url, revision)


async def downgrade_async(url: str | URL, revision: str) -> None:
    """`downgrade` for async callers (in a thread, like `upgrade_async`)."""
    await asyncio.to_thread(downgrade, url, revision)


def current(url: str | URL) -> str | None:
    """The revision the database at `url` is at; None for a database never migrated."""
    _refuse_inside_event_loop("current")
    return asyncio.run(current_async(url))


async def current_async(url: str | URL) -> str | None:
    """`current` for async callers (no thread needed: it only reads a table)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return revision
