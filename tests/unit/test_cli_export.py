"""`hearback export` as a shop owner runs it, through the CLI's main function, on a SQLite file
in an empty directory: migrations first, the CSV to a file or to stdout (BOM included), a line
on stderr, and exit status 2 with a clear message for a period it does not understand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.export import BOM, COMMAND_LINE, EXPORT_ACTION, HEADER
from bot.settings import Settings
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import AuditEntry
from tests.services.test_export import CHINESE, add_survey, parse


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Only DATABASE_URL and TIMEZONE set, in an empty directory; the file does not exist yet."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/data/hearback.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMEZONE", "Asia/Shanghai")
    monkeypatch.chdir(tmp_path)
    return url


def seed(url: str) -> None:
    async def surveys() -> None:
        engine = create_engine(url)
        try:
            async with create_session_factory(engine).begin() as session:
                await add_survey(
                    session,
                    "POS-1",
                    datetime(2026, 1, 3, 4, 30, tzinfo=UTC),
                    score=2,
                    comment=CHINESE,
                )
                await add_survey(session, "POS-2", datetime(2026, 2, 1, tzinfo=UTC), score=5)
        finally:
            await engine.dispose()

    (Path(url.removeprefix("sqlite+aiosqlite:///")).parent).mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    asyncio.run(surveys())


def audit(url: str) -> list[AuditEntry]:
    async def entries() -> list[AuditEntry]:
        engine = create_engine(url)
        try:
            async with create_session_factory(engine)() as session:
                return list(await session.scalars(select(AuditEntry)))
        finally:
            await engine.dispose()

    return asyncio.run(entries())


def test_export_writes_the_file_and_says_what_it_wrote(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(database)
    out = tmp_path / "exports" / "january.csv"

    assert main(["export", "--period", "2026-01", "--out", str(out)]) == 0

    rows = parse(out.read_bytes())
    assert rows[0] == list(HEADER)
    assert [(row[0], row[1], row[HEADER.index("comment")]) for row in rows[1:]] == [
        ("POS-1", "2026-01-03T12:30:00+08:00", CHINESE)
    ]
    assert not list(out.parent.glob("*.part"))
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"Exported 1 survey about visits in January 2026 (Asia/Shanghai, "
            f"{out.stat().st_size:,} bytes) to {out}."
        )
    )
    [entry] = audit(database)
    assert (entry.action, entry.actor_id, entry.actor_name, entry.target) == (
        EXPORT_ACTION,
        None,
        COMMAND_LINE,
        "January 2026",
    )


def test_export_goes_to_stdout_with_its_bom(
    database: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    seed(database)

    assert main(["export", "--period", "2026-02"]) == 0

    data = capsysbinary.readouterr().out
    assert data.startswith(BOM.encode())  # so `> file.csv` opens right in a spreadsheet
    assert [row[0] for row in parse(data)[1:]] == ["POS-2"]


def test_export_migrates_a_new_database_first(
    database: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["export", "--period", "all"]) == 0

    captured = capsysbinary.readouterr()
    assert captured.out == (BOM + ",".join(HEADER) + "\r\n").encode()
    assert b"No surveys about visits in all time: only the header written." in captured.err


def test_a_bad_period_is_refused_with_status_2(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.csv"

    assert main(["export", "--period", "fortnight", "--out", str(out)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hearback export: 'fortnight' is not a period I know. Try one")
    assert not out.exists()
