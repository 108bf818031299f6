"""CSV export of surveys: `/export [period]` in an admin's chat and `hearback export`.

One row per survey **whose visit occurred in the period** (not "created" or "sent" in it): a
month's export is that month's service, whenever the survey went out or was answered, and
exporting a past month again gives the same rows (their states may have moved on). Every state
is exported (scheduled, sent, answered, expired, skipped, failed), so a spreadsheet can work out
the response rate itself. Rows are in survey id order, which is the order visits were recorded.

Left out:

- test surveys (visit ids starting with `storage.test_visits.TEST_VISIT_PREFIX`), as statistics
  leave them out;
- unsolicited feedback: it is no survey (no visit, no score, no survey state), and a second
  kind of row would make every column mean two things. Its cases and sentiment reach /stats.
- anything about the customer: no name, no Telegram id, no reference. For a customer who used
  /forget, the words (comment, reasons suggested from it) are blank even if a copy survived;
  the score, tapped reasons and times stay, as they do in the database (`bot.privacy`).

The file is UTF-8 with a byte-order mark (Excel reads BOM-less CSV in the system's code page and
turns Chinese into mojibake), RFC 4180: comma-separated, CRLF line ends, fields with commas,
quotes or line breaks in double quotes, so a comment's line breaks stay inside its cell. Times
are local (TIMEZONE) ISO 8601 with the offset, e.g. 2026-11-05T14:30:00+08:00.

Formula injection (OWASP "CSV injection"): a text cell that starts with =, +, -, @, a tab or a
carriage return is a formula to a spreadsheet, and comments, staff names and visit ids come from
outside. Such cells get a leading apostrophe, which spreadsheets read as "this is text". Only
text we did not write is defused; scores stay numbers.

Streaming: the surveys are read a page at a time (`storage.export_repository`, keyset by id, a
short read transaction per page) and each page is written out before the next is read, so memory
stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from bot.live_settings import LiveSettings
from bot.periods import Period, PeriodError, parse_period
from bot.settings import Settings
from storage.db import create_engine, create_session_factory
from storage.export_repository import ExportRepository, SurveyRecord
from storage.repositories import AuditRepository

__all__ = [
    "BOM",
    "EXPORT_ACTION",
    "HEADER",
    "PAGE_SIZE",
    "ExportService",
    "Exported",
    "csv_row",
    "defuse",
    "file_name",
    "run_export",
]

#: What an export is called in the audit log.
EXPORT_ACTION = "survey.export"
#: Who exported, in the audit log, when it was `hearback export` on the server.
COMMAND_LINE = "hearback export (command line)"

BOM = "\ufeff"
HEADER = (
    "visit_id",
    "occurred_at",
    "location",
    "staff",
    "service",
    "survey_state",
    "sent_at",
    "answered_at",
    "scale",
    "score",
    "reasons",
    "comment",
    "sentiment",
    "sentiment_corrected",
    "suggested_reasons",
    "contact_requested",
    "case_id",
    "case_state",
    "case_severity",
    "case_opened_at",
    "first_response_at",
    "resolved_at",
    "recovered",
)
#: Surveys read (and written) per page: big enough that the per-query cost fades, small enough
#: that a page is a few hundred kilobytes at most.
PAGE_SIZE = 2000

# The first characters that make a spreadsheet read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_JOIN = "; "
_ONE_MICROSECOND = timedelta(microseconds=1)


def defuse(text: str | None) -> str:
    """``text`` as a cell no spreadsheet runs as a formula ("" for None)."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _when(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def csv_row(
    record: SurveyRecord, tapped: Sequence[str], labels: dict[str, str], zone: tzinfo
) -> list[str | int]:
    """The CSV cells of one survey (`HEADER` order). ``tapped``: the labels of the chips the
    customer tapped; ``labels``: every reason's label by code, for the suggested ones."""
    erased = record.customer_erased
    sentiment = record.sentiment_corrected or record.sentiment_label
    suggested = [] if erased else record.suggested_reasons or []
    return [
        defuse(record.visit_id),
        _when(record.occurred_at, zone),
        defuse(record.location),
        defuse(record.staff),
        defuse(record.service),
        record.state.value,
        _when(record.sent_at, zone),
        _when(record.answered_at, zone),
        record.scale.value,
        "" if record.score is None else record.score,
        defuse(_JOIN.join(tapped)),
        "" if erased else defuse(record.comment),
        sentiment.value if sentiment else "",
        _yes_no(record.sentiment_corrected is not None) if record.answer_id else "",
        defuse(_JOIN.join(labels.get(code, code) for code in suggested)),
        _yes_no(record.contact_requested),
        "" if record.case_id is None else record.case_id,
        record.case_state.value if record.case_state else "",
        record.case_severity.value if record.case_severity else "",
        _when(record.case_opened_at, zone),
        _when(record.first_responded_at, zone),
        _when(record.resolved_at, zone),
        _yes_no(record.recovered),
    ]


def file_name(period: Period, zone: tzinfo) -> str:
    """hearback-2026-11.csv for a calendar month, hearback-2026.csv for a year,
    hearback-2026-11-05.csv for a day, else hearback-<first day>-to-<last day>.csv."""
    first = period.start.astimezone(zone)
    after = period.end.astimezone(zone)
    last = (period.end - _ONE_MICROSECOND).astimezone(zone).date()
    whole_days = first.time() == after.time() == datetime.min.time()
    if whole_days and first.date() == last:
        return f"hearback-{first:%Y-%m-%d}.csv"
    if whole_days and first.day == 1 and after.day == 1:
        if first.month == 1 and after.month == 1 and after.year == first.year + 1:
            return f"hearback-{first:%Y}.csv"
        if (after.year * 12 + after.month) - (first.year * 12 + first.month) == 1:
            return f"hearback-{first:%Y-%m}.csv"
    return f"hearback-{first:%Y-%m-%d}-to-{last:%Y-%m-%d}.csv"


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote: ``rows`` surveys in ``size`` bytes; ``complete`` False when it
    stopped at the size limit it was given (the file then holds only the first rows)."""

    rows: int
    size: int
    complete: bool = True


class ExportService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, page: int = PAGE_SIZE
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._page = page

    async def write(
        self, out: BinaryIO, period: Period, zone: tzinfo, *, max_bytes: int | None = None
    ) -> Exported:
        """Write the CSV of the surveys of ``period`` to ``out`` (bytes, BOM first). With
        ``max_bytes``, stop as soon as the file grows beyond it (the caller cannot send it)."""
        async with self._sessions() as session:
            labels = await ExportRepository(session).reason_labels()
        size = self._write(out, [HEADER], prefix=BOM)
        rows, after = 0, 0
        while True:
            async with self._sessions() as session:
                repository = ExportRepository(session)
                page = await repository.surveys(
                    visited_from=period.start,
                    visited_until=period.end,
                    after=after,
                    limit=self._page,
                )
                if not page:
                    return Exported(rows, size)
                answers = [r.answer_id for r in page if r.answer_id is not None]
                tapped = await repository.tapped_reasons(answers)
            size += self._write(
                out, [csv_row(r, tapped.get(r.answer_id or 0, ()), labels, zone) for r in page]
            )
            rows += len(page)
            after = page[-1].survey_id
            if max_bytes is not None and size > max_bytes:
                return Exported(rows, size, complete=False)

    async def audit(
        self, period: Period, rows: int, *, actor_id: int | None, actor_name: str | None
    ) -> None:
        """Record who exported which period (and how many surveys) in the audit log."""
        async with self._sessions.begin() as session:
            await AuditRepository(session).record(
                at=self._clock.now(),
                action=EXPORT_ACTION,
                actor_id=actor_id,
                actor_name=actor_name,
                target=period.label,
                new={
                    "rows": rows,
                    "from": period.start.isoformat(),
                    "until": period.end.isoformat(),
                },
            )

    @staticmethod
    def _write(out: BinaryIO, rows: Sequence[Sequence[str | int]], *, prefix: str = "") -> int:
        text = io.StringIO()
        text.write(prefix)
        csv.writer(text, lineterminator="\r\n").writerows(rows)
        data = text.getvalue().encode("utf-8")
        out.write(data)
        return len(data)


# -- hearback export -----------------------------------------------------------------------------


async def run_export(
    settings: Settings,
    period_text: str | None,
    out_path: Path | None,
    *,
    stdout: BinaryIO | None = None,
    err: TextIO | None = None,
    clock: Clock | None = None,
) -> int:
    """``hearback export``: the CSV to ``out_path`` (written beside it and renamed when done, so
    a failed export leaves no half file) or to stdout; a line on stderr says what was written.
    Exit status 0, or 2 for a period it does not understand. The database must be migrated
    already (the CLI does that first). The time zone is TIMEZONE as the bot uses it (a value set
    in the chat wins)."""
    clock = clock or SystemClock()
    err = err or sys.stderr  # looked up now: tests and callers may have replaced it
    engine = create_engine(settings.database_url)
    try:
        sessions = create_session_factory(engine)
        live = LiveSettings(sessions, clock, settings)
        await live.load()
        zone = live.current.zone
        try:
            period = parse_period(period_text, clock.now(), zone)
        except PeriodError as error:
            print(f"hearback export: {error}", file=err)
            return 2
        service = ExportService(sessions, clock)
        if out_path is None:
            sink = stdout if stdout is not None else sys.stdout.buffer
            exported = await service.write(sink, period, zone)
            sink.flush()
            where = "stdout"
        else:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            part = out_path.with_name(out_path.name + ".part")
            try:
                with part.open("wb") as sink:
                    exported = await service.write(sink, period, zone)
                os.replace(part, out_path)
            finally:
                part.unlink(missing_ok=True)
            where = str(out_path)
        await service.audit(period, exported.rows, actor_id=None, actor_name=COMMAND_LINE)
    finally:
        await engine.dispose()
    if exported.rows == 0:
        print(f"No surveys about visits in {period.label}: only the header written.", file=err)
    else:
        surveys = "survey" if exported.rows == 1 else "surveys"
        print(
            f"Exported {exported.rows} {surveys} about visits in {period.label} "
            f"({zone}, {exported.size:,} bytes) to {where}.",
            file=err,
        )
    return 0
