"""CSV import of visits: counts, rejected rows with reasons, BOM, re-import, progress, streaming,
and `hearback import` as a process on a database it migrates first."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.importer import ImportFailed, ImportSummary, import_visits, rejected_path_for
from bot.policy import SurveyPolicy
from bot.values import QuietHours
from bot.visits import SEND_SURVEY, VisitIn, VisitService, VisitView
from storage.jobs import JobQueue
from storage.models import Customer, Job, Visit, VisitSource

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "visit_id,customer_ref,telegram_user_id,name,language,timezone,location,staff,service,"
    "occurred_at"
)


@pytest.fixture
def visits(session_factory, engine, clock: FakeClock) -> VisitService:
    policy = SurveyPolicy(quiet_hours=QuietHours.off())
    return VisitService(session_factory, JobQueue(engine, clock=clock), policy, clock)


def write(path: Path, *lines: str, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "\n".join(lines).encode() + b"\n")
    return path


def rejected_rows(path: Path) -> list[dict[str, str]]:
    with rejected_path_for(path).open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


async def count(session_factory, model, *where) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_an_import_counts_and_writes_each_rejected_row_with_its_reason(
    tmp_path: Path, visits: VisitService, clock: FakeClock, session_factory
) -> None:
    source = write(
        tmp_path / "visits.csv",
        HEADER,
        "v1,c1,101,Anna,en,Europe/Berlin,Downtown,Maria,Haircut,2026-01-05T10:00:00+01:00",
        "v2,c2,,,,,,,,2026-01-05T09:00:00Z",
        "v3,c3,abc,,english,,,,,2026-01-05 09:00",
        "v1,c1,101,Anna,en,Europe/Berlin,Downtown,Maria,Haircut,2026-01-05T10:00:00+01:00",
        ",c4,,,,,,,,2026-01-05T09:00:00Z",
        "v5,c5,,,,Mars/Olympus,,,,2026-01-07T09:00:00Z",
        "v6,c6,,,,,,,,2026-01-05T09:00:00Z,surplus",
        "",
        ",,,,,,,,,",
        "v7,c7,,,,,,,,2026-01-05T08:00:00Z",
    )
    summary = await import_visits(source, visits, clock, batch_size=2)

    assert summary == ImportSummary(
        rows=8,
        created=3,
        duplicates=1,
        rejected=4,
        rejected_path=tmp_path / "visits.rejected.csv",
    )
    assert await count(session_factory, Visit) == 3
    assert await count(session_factory, Job, Job.kind == SEND_SURVEY) == 3
    async with session_factory() as session:
        anna = await session.scalar(select(Customer).where(Customer.external_ref == "c1"))
        recorded = await session.scalar(select(Visit).where(Visit.external_id == "v1"))
    assert (anna.telegram_user_id, anna.first_name, anna.timezone) == (101, "Anna", "Europe/Berlin")
    assert recorded.source is VisitSource.CSV

    rows = rejected_rows(source)
    assert list(rows[0]) == [*HEADER.split(","), "reason"]
    assert [row["visit_id"] for row in rows] == ["v3", "", "v5", "v6"]
    reasons = [row["reason"] for row in rows]
    assert "telegram_user_id: must be a positive integer" in reasons[0]
    assert "language: must be a language tag" in reasons[0]
    assert "occurred_at: needs a time zone" in reasons[0]
    assert reasons[1].startswith("visit_id: must be 1-128 characters")
    assert "timezone: must be an IANA time zone" in reasons[2]
    assert "occurred_at: must not be more than 1 day in the future" in reasons[2]
    assert "has 11 values but the header has 10 columns" in reasons[3]


async def test_a_bom_any_column_order_and_case_and_unknown_columns_are_fine(
    tmp_path: Path, visits: VisitService, clock: FakeClock
) -> None:
    source = write(
        tmp_path / "export.csv",
        "Notes, Occurred_At ,Customer_Ref,VISIT_ID,Branch",
        'anything,2026-01-05T09:00:00Z,c1,v1,"North, upstairs"',
        "more,2026-01-05T09:30:00Z,c2,v2,South",
        bom=True,
    )
    summary = await import_visits(source, visits, clock)
    assert (summary.rows, summary.created, summary.rejected) == (2, 2, 0)
    assert summary.rejected_path is None
    assert not rejected_path_for(source).exists()
    assert (await visits.get("v1")).customer_ref == "c1"


async def test_importing_again_is_all_duplicates_and_fixed_rejects_import_as_they_are(
    tmp_path: Path, visits: VisitService, clock: FakeClock, session_factory
) -> None:
    source = write(
        tmp_path / "visits.csv",
        HEADER,
        "v1,c1,,,,,,,,2026-01-05T09:00:00Z",
        "v2,c2,,,,,,,,2026-01-05T09:00",
    )
    first = await import_visits(source, visits, clock)
    assert (first.created, first.rejected) == (1, 1)

    # The rejected file is the same CSV plus a reason column: fix it and import it as it is.
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(
        rejected_path_for(source).read_text().replace("2026-01-05T09:00,", "2026-01-05T09:00Z,")
    )
    assert (await import_visits(fixed, visits, clock)).created == 1

    # The whole file again: nothing new, and the earlier rejections are gone once none remain.
    write(source, HEADER, "v1,c1,,,,,,,,2026-01-05T09:00:00Z", "v2,c2,,,,,,,,2026-01-05T09:00Z")
    again = await import_visits(source, visits, clock)
    assert (again.rows, again.created, again.duplicates, again.rejected) == (2, 0, 2, 0)
    assert not rejected_path_for(source).exists()
    assert await count(session_factory, Visit) == 2


async def test_a_row_whose_ref_and_telegram_id_are_two_customers_is_rejected_alone(
    tmp_path: Path, visits: VisitService, clock: FakeClock, session_factory
) -> None:
    async with session_factory.begin() as session:  # someone who pressed Start: id, no ref
        session.add(Customer(telegram_user_id=777, created_at=clock.now()))
    source = write(
        tmp_path / "visits.csv",
        HEADER,
        "v1,ref-a,,,,,,,,2026-01-05T09:00:00Z",
        "v2,ref-a,777,,,,,,,2026-01-04T09:00:00Z",
        "v3,ref-b,,,,,,,,2026-01-05T09:00:00Z",
    )
    summary = await import_visits(source, visits, clock)
    assert (summary.rows, summary.rejected) == (3, 1)
    assert summary.created + summary.duplicates == 2
    [row] = rejected_rows(source)
    assert row["visit_id"] == "v2"
    assert "two different customers" in row["reason"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty: its first line must be the header"),
        (b"v1,c1,2026-01-05T09:00:00Z\n", "must be the header naming at least visit_id"),
        (b"visit_id,occurred_at,name\n", "(missing: customer_ref;"),
        (b"visit_id,customer_ref,occurred_at,VISIT_ID\n", "names the column visit_id twice"),
        (b"visit_id,customer_ref,occurred_at\nv1,Jos\xe9,2026\n", "is not UTF-8 text: save"),
    ],
)
async def test_a_file_that_cannot_be_imported_says_why(
    tmp_path: Path, visits: VisitService, clock: FakeClock, content: bytes, message: str
) -> None:
    source = tmp_path / "visits.csv"
    source.write_bytes(content)
    with pytest.raises(ImportFailed) as failed:
        await import_visits(source, visits, clock)
    assert message in str(failed.value)


async def test_a_file_not_utf8_further_down_keeps_the_rows_before_it(
    tmp_path: Path, visits: VisitService, clock: FakeClock
) -> None:
    # Past the first block of text the reader decodes (8 KiB), so some rows come before it.
    long = "Alexandra Example,en,Europe/Berlin,Downtown,Maria,Haircut and styling"
    rows = [f"u{n},c{n},,{long},2026-01-05T09:00:00Z" for n in range(120)]
    source = write(tmp_path / "visits.csv", HEADER, *rows)
    with source.open("ab") as file:
        file.write(b"u-latin1,Jos\xe9,,,,,,,,2026-01-05T09:00:00Z\n")
    with pytest.raises(ImportFailed) as failed:
        await import_visits(source, visits, clock)
    assert "is not UTF-8 text" in str(failed.value)
    assert failed.value.summary is not None
    assert failed.value.summary.created > 0
    assert (await visits.get("u0")) is not None


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(
    tmp_path: Path, visits: VisitService, clock: FakeClock
) -> None:
    rows = [f"p{n},c{n},,,,,,,,2026-01-05T09:00:00Z" for n in range(40)]
    source = write(tmp_path / "visits.csv", HEADER, *rows)

    terminal = FakeTerminal()
    await import_visits(source, visits, clock, batch_size=10, progress=terminal)
    shown = terminal.getvalue()
    assert shown.startswith("\r[")
    assert shown.endswith("\n")
    last = shown.rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("[" + "#" * 30 + "] 100%")
    assert "40 rows" in last

    log = io.StringIO()
    await import_visits(source, visits, clock, batch_size=10, progress=log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[-1].startswith("import: 100% of ")
    assert lines[-1].endswith("40 rows: 0 created, 40 duplicate, 0 rejected")


class CountingRecorder:
    """Stands in for VisitService to measure the importer's own memory: no database."""

    def __init__(self) -> None:
        self.recorded = 0

    async def record(self, visit: VisitIn) -> VisitView:
        return (await self.record_many([visit]))[0]

    async def record_many(self, visits: Sequence[VisitIn]) -> list[VisitView]:
        self.recorded += len(visits)
        return [
            VisitView(
                visit_id=visit.visit_id,
                created=True,
                customer_ref=visit.customer.ref,
                location=visit.location,
                staff=visit.staff,
                service=visit.service,
                occurred_at=visit.occurred_at,
                source=visit.source,
                survey_state=None,
                survey_due_at=None,
                survey_reason=None,
            )
            for visit in visits
        ]


def big_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as file:
        file.write(HEADER + "\n")
        for n in range(rows):
            # Every tenth row is rejected, so the rejected file is streamed too.
            when = "2026-01-05T09:00:00" if n % 10 == 0 else "2026-01-05T09:00:00Z"
            file.write(f"visit-{n:08},cust-{n:08},{n + 1},Anna,en,,Downtown,Maria,Cut,{when}\n")
    return path


async def test_the_file_is_streamed_so_memory_stays_flat_however_long_it_is(
    tmp_path: Path, clock: FakeClock
) -> None:
    peaks: dict[int, int] = {}
    for rows in (2_000, 20_000):
        source = big_csv(tmp_path / f"rows-{rows}.csv", rows)
        recorder = CountingRecorder()
        tracemalloc.start()
        try:
            summary = await import_visits(source, recorder, clock, batch_size=500)
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (summary.rows, summary.rejected) == (rows, rows // 10)
        assert recorder.recorded == rows - rows // 10
    # Ten times the rows, (nearly) the same peak: one batch in memory, never the file.
    assert peaks[20_000] < peaks[2_000] * 1.25, peaks


# ----------------------------------------------------------------------- the command


async def hearback(tmp_path: Path, database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env |= {"PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "SURVEY_DELAY": "2h"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_hearback_import_migrates_a_new_database_then_imports(
    tmp_path: Path, empty_database_url: str
) -> None:
    write(
        tmp_path / "visits.csv",
        HEADER,
        "v1,c1,,,,,,,,2020-01-05T09:00:00Z",
        "v2,c2,,,,,,,,2020-01-05T09:00",
    )
    status, out, err = await hearback(tmp_path, empty_database_url, "import", "visits.csv")
    assert status == 1, err  # some rows were rejected
    assert out.splitlines() == [
        "visits.csv: 2 rows",
        "created: 1",
        "duplicate: 0",
        "rejected: 1 (rows and reasons in visits.rejected.csv)",
    ]
    assert "Database ready at revision" in err  # migrated first, like `hearback run`
    assert "import: 100% of " in err  # not a terminal: plain progress lines
    assert "Traceback" not in err

    status, out, err = await hearback(tmp_path, empty_database_url, "import", "missing.csv")
    assert status == 2
    assert out == ""
    assert "Import failed: cannot read missing.csv" in err
