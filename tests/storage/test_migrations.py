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


_ROWS_BEFORE_0006 = (
    "INSERT INTO customers (id, created_at) VALUES (1, '2026-03-01 10:00:00')",
    "INSERT INTO staff_chats (id, chat_id, is_forum, active, created_at)"
    " VALUES (1, -100, false, true, '2026-03-01 10:00:00')",
    "INSERT INTO visits (id, external_id, customer_id, location, occurred_at, source, created_at)"
    " VALUES (1, 'V-1', 1, 'Airport', '2026-03-01 10:00:00', 'api', '2026-03-01 10:00:00'),"
    " (2, 'V-2', 1, NULL, '2026-03-01 10:00:00', 'api', '2026-03-01 10:00:00')",
    "INSERT INTO surveys (id, visit_id, customer_id, state, scale, due_at, sent_at, answered_at,"
    " created_at) VALUES (1, 1, 1, 'answered', 'csat', '2026-03-01 11:00:00',"
    " '2026-03-01 11:00:00', '2026-03-01 11:05:00', '2026-03-01 10:00:00'),"
    " (2, 2, 1, 'sent', 'csat', '2026-03-01 11:00:00', '2026-03-01 11:00:00', NULL,"
    " '2026-03-01 10:00:00')",
    "INSERT INTO answers (id, survey_id, customer_id, unsolicited, scale, score, created_at)"
    " VALUES (1, 1, 1, false, 'csat', 2, '2026-03-01 11:05:00'),"
    " (2, NULL, 1, true, NULL, NULL, '2026-03-01 12:00:00')",
    "INSERT INTO cases (id, answer_id, state, severity, trigger, staff_chat_id, reopened_count,"
    " created_at) VALUES (1, 1, 'open', 'medium', 'low_score', 1, 0, '2026-03-01 11:05:00'),"
    " (2, 2, 'open', 'medium', 'unsolicited', 1, 0, '2026-03-01 12:00:00')",
)


async def _locations(url: str) -> dict[str, list[tuple[int, str | None]]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return {
                table: [
                    (int(row[0]), row[1])
                    for row in await connection.exec_driver_sql(
                        f"SELECT id, location FROM {table} ORDER BY id"
                    )
                ]
                for table in ("surveys", "answers", "cases")
            }
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def test_0006_copies_the_visits_locations_into_existing_and_new_rows(
    empty_database_url: str,
) -> None:
    """Migration 0006 on a database with data: the surveys, answers and cases already there get
    their visit's location; rows inserted later get it from the database itself, whoever
    inserts them; a visit's location put right reaches its copies; and it can be undone."""
    url = empty_database_url
    await migrate.upgrade_async(url, "0005")
    await _execute(url, *_ROWS_BEFORE_0006)

    await migrate.upgrade_async(url)

    assert await _locations(url) == {
        "surveys": [(1, "Airport"), (2, None)],
        "answers": [(1, "Airport"), (2, None)],  # volunteered feedback has no place
        "cases": [(1, "Airport"), (2, None)],
    }
    await _execute(
        url,
        "INSERT INTO visits (id, external_id, customer_id, location, occurred_at, source,"
        " created_at) VALUES (3, 'V-3', 1, 'Harbour', '2026-03-02 10:00:00', 'api',"
        " '2026-03-02 10:00:00')",
        # A writer that names a location of its own is overruled: the visit's is the truth.
        "INSERT INTO surveys (id, visit_id, customer_id, state, scale, due_at, location,"
        " created_at) VALUES (3, 3, 1, 'scheduled', 'nps', '2026-03-02 11:00:00', 'Elsewhere',"
        " '2026-03-02 10:00:00')",
        "INSERT INTO answers (id, survey_id, customer_id, unsolicited, scale, score, created_at)"
        " VALUES (3, 3, 1, false, 'nps', 3, '2026-03-02 11:05:00')",
        "INSERT INTO cases (id, answer_id, state, severity, trigger, reopened_count, created_at)"
        " VALUES (3, 3, 'open', 'medium', 'low_score', 0, '2026-03-02 11:05:00')",
    )
    assert await _locations(url) == {
        "surveys": [(1, "Airport"), (2, None), (3, "Harbour")],
        "answers": [(1, "Airport"), (2, None), (3, "Harbour")],
        "cases": [(1, "Airport"), (2, None), (3, "Harbour")],
    }
    await _execute(url, "UPDATE visits SET location = 'Old Town' WHERE id = 3")
    assert await _locations(url) == {
        "surveys": [(1, "Airport"), (2, None), (3, "Old Town")],
        "answers": [(1, "Airport"), (2, None), (3, "Old Town")],
        "cases": [(1, "Airport"), (2, None), (3, "Old Town")],
    }

    await migrate.downgrade_async(url, "0005")
    await migrate.upgrade_async(url)
    assert await _schema_diff(url) == []
    assert (await _locations(url))["cases"] == [(1, "Airport"), (2, None), (3, "Old Town")]
