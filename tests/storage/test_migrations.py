"""The migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, inspect
from sqlalchemy.pool import NullPool

from storage import migrate
from storage.db import create_engine
from storage.models import Base


async def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:

            def diff(sync: Connection) -> list[object]:
                context = MigrationContext.configure(
                    sync, opts={"compare_type": True, "compare_server_default": True}
                )
                return list(compare_metadata(context, Base.metadata))

            return await connection.run_sync(diff)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def _check_constraints(url: str) -> dict[str, set[str]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:

            def read(sync: Connection) -> dict[str, set[str]]:
                inspector = inspect(sync)
                return {
                    table.name: {
                        str(check["name"]) for check in inspector.get_check_constraints(table.name)
                    }
                    for table in Base.metadata.sorted_tables
                }

            return await connection.run_sync(read)
    finally:
        await engine.dispose()


def _model_check_constraints() -> dict[str, set[str]]:
    return {
        table.name: {
            str(constraint.name)
            for constraint in table.constraints
            if isinstance(constraint, CheckConstraint)
        }
        for table in Base.metadata.sorted_tables
    }


async def test_upgrade_downgrade_upgrade_matches_models(empty_database_url: str) -> None:
    url = empty_database_url
    assert await migrate.current_async(url) is None

    await migrate.upgrade_async(url)
    assert await migrate.current_async(url) == migrate.head()
    assert await _schema_diff(url) == []
    assert await _tables(url) == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}

    await migrate.downgrade_async(url, "base")
    assert await migrate.current_async(url) is None
    assert await _tables(url) == {"alembic_version"}

    await migrate.upgrade_async(url)
    assert await _schema_diff(url) == []


async def test_migrated_check_constraints_are_the_models(empty_database_url: str) -> None:
    """compare_metadata does not look at CHECK constraints: the enum CHECKs are hand-written in
    the migration, so make sure each one exists under the name the models give it."""
    await migrate.upgrade_async(empty_database_url)
    assert await _check_constraints(empty_database_url) == _model_check_constraints()


def test_sync_upgrade_refuses_a_running_event_loop() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="upgrade_async"):
            migrate.upgrade("sqlite+aiosqlite:///unused.db")

    asyncio.run(inside())


def test_sync_upgrade_creates_the_sqlite_directory(tmp_path: Path) -> None:
    """The sync API, as `hearback db upgrade` uses it; the data directory may not exist yet."""
    target = tmp_path / "data" / "nested" / "hearback.db"
    url = f"sqlite+aiosqlite:///{target}"
    migrate.upgrade(url)
    assert target.exists()
    assert migrate.current(url) == migrate.head()
    migrate.downgrade(url, "base")
    assert migrate.current(url) is None


def test_migrations_ship_inside_the_package() -> None:
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    newest = max(path.name for path in (migrate.MIGRATIONS_DIR / "versions").glob("0*.py"))
    assert migrate.head() == newest.split("_", 1)[0]
