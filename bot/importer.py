"""CSV import of visits: ``hearback import visits.csv``.

The file is UTF-8 CSV (a byte-order mark, as Excel writes it, is fine) whose first line is the
header. Columns, in any order, names in any case; unknown columns are ignored, so an export
with more columns can be imported as it is:

=================  ========  ===============================================================
column             required  value
=================  ========  ===============================================================
visit_id           yes       the business's own visit id, 1-128 characters (idempotency key)
customer_ref       yes       the business's own customer id, 1-128 characters
occurred_at        yes       ISO-8601 with a time zone: 2026-01-05T14:30:00+01:00 or …Z
telegram_user_id   no        the customer's Telegram user id, a positive integer
name               no        how to address the customer, up to 256 characters
language           no        language tag such as en or pt-br
timezone           no        IANA time zone such as Europe/Berlin
location           no        up to 128 characters
staff              no        up to 128 characters
service            no        up to 128 characters
=================  ========  ===============================================================

An empty cell is an absent value. Each row is checked by `bot.visit_input.parse_visit`, the
same function the HTTP API uses, and recorded through `VisitService.record_many` in batches
(500 rows by default), so importing behaves exactly like posting the same visits: a visit_id
seen before is counted as a duplicate and changes nothing, which makes re-importing a file (or
a file that overlaps an earlier one) safe.

The file is streamed: one batch of rows is in memory at a time, however long the file is.
Rejected rows are written, as they come, to ``<name>.rejected.csv`` next to the file: the same
header plus a ``reason`` column, so the file can be fixed and imported again as it is (the
reason column is ignored then). When no row is rejected, no such file is left behind.
"""

from __future__ import annotations

import _csv
import csv
import io
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.clock import Clock, SystemClock
from bot.policy import SurveyPolicy
from bot.settings import Settings
from bot.visit_input import CONFLICT_MESSAGE, FieldError, VisitRecorder, parse_visit, record_batch
from bot.visits import VisitIn, VisitService
from storage.db import create_engine, create_session_factory
from storage.jobs import JobQueue
from storage.models import SurveyScale, VisitSource

__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportFailed",
    "ImportSummary",
    "import_visits",
    "rejected_path_for",
    "run_import",
]

COLUMNS = (
    "visit_id",
    "customer_ref",
    "telegram_user_id",
    "name",
    "language",
    "timezone",
    "location",
    "staff",
    "service",
    "occurred_at",
)
REQUIRED_COLUMNS = ("visit_id", "customer_ref", "occurred_at")
REASON_COLUMN = "reason"
BATCH_SIZE = 500

# The CSV column behind each field path `parse_visit` reports.
_COLUMN_OF = {
    "visit_id": "visit_id",
    "customer": "customer_ref",
    "customer.ref": "customer_ref",
    "customer.telegram_user_id": "telegram_user_id",
    "customer.name": "name",
    "customer.language": "language",
    "customer.timezone": "timezone",
    "location": "location",
    "staff": "staff",
    "service": "service",
    "occurred_at": "occurred_at",
}

_INTEGER = re.compile(r"[+-]?\d{1,30}")


class ImportFailed(Exception):
    """The file cannot be imported (missing, no usable header, not UTF-8). ``summary`` holds
    what was imported before the problem showed, when anything was."""

    def __init__(self, message: str, summary: ImportSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_path: Path | None = None


def rejected_path_for(path: Path) -> Path:
    """``visits.csv`` → ``visits.rejected.csv``, next to it."""
    return path.with_name(f"{path.stem if path.suffix else path.name}.rejected.csv")


def visit_mapping(row: Mapping[str, str]) -> dict[str, object]:
    """A CSV row (column → text) in the API's JSON shape, for `parse_visit`.

    Only the known columns are taken. Empty cells become absent values. A telegram_user_id
    made of digits becomes a number; anything else stays text, for `parse_visit` to refuse
    with its usual message.
    """

    def cell(column: str) -> str | None:
        value = row.get(column)
        return value if value and value.strip() else None

    telegram_user_id: object = cell("telegram_user_id")
    if isinstance(telegram_user_id, str) and _INTEGER.fullmatch(telegram_user_id.strip()):
        telegram_user_id = int(telegram_user_id)
    return {
        "visit_id": row.get("visit_id", ""),
        "customer": {
            "ref": row.get("customer_ref", ""),
            "telegram_user_id": telegram_user_id,
            "name": cell("name"),
            "language": cell("language"),
            "timezone": cell("timezone"),
        },
        "location": cell("location"),
        "staff": cell("staff"),
        "service": cell("service"),
        "occurred_at": row.get("occurred_at", ""),
    }


def reason_for(errors: list[FieldError]) -> str:
    """The errors of one row, by CSV column: ``occurred_at: needs a time zone …; name: …``."""
    return "; ".join(
        f"{_COLUMN_OF.get(error.field, error.field)}: {error.message}" for error in errors
    )


# ------------------------------------------------------------------------------- progress


class Progress:
    """Shows how far the import is, on stderr: a bar redrawn in place (bytes read of the file
    size) when it is a terminal; otherwise a plain line at every further 10 % or 30 s, which
    reads well in a log file or CI output."""

    BAR_WIDTH = 30

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        *,
        tty: bool | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._total = max(total_bytes, 1)
        self._tty = stream.isatty() if tty is None else tty
        self._monotonic = monotonic
        self._started = self._last = monotonic()
        self._last_tenth = 0

    def update(self, done_bytes: int, summary: ImportSummary, *, final: bool = False) -> None:
        now = self._monotonic()
        fraction = min(done_bytes / self._total, 1.0)
        if self._tty:
            if final or now - self._last >= 0.1:
                self._last = now
                self._stream.write("\r" + self._bar(fraction, done_bytes, summary, now))
                if final:
                    self._stream.write("\n")
                self._stream.flush()
            return
        tenth = int(fraction * 10)
        if final or tenth > self._last_tenth or now - self._last >= 30:
            self._last, self._last_tenth = now, tenth
            self._stream.write(
                f"import: {fraction:4.0%} of {_megabytes(self._total)}, {summary.rows:,} rows: "
                f"{summary.created:,} created, {summary.duplicates:,} duplicate, "
                f"{summary.rejected:,} rejected\n"
            )
            self._stream.flush()

    def _bar(self, fraction: float, done_bytes: int, summary: ImportSummary, now: float) -> str:
        filled = int(fraction * self.BAR_WIDTH)
        bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
        elapsed = max(now - self._started, 1e-9)
        return (
            f"[{bar}] {fraction:4.0%}  {_megabytes(done_bytes)} / {_megabytes(self._total)}  "
            f"{summary.rows:,} rows  {summary.rows / elapsed:,.0f} rows/s  "
            f"{summary.rejected:,} rejected\x1b[K"  # and clear what a longer line left
        )


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


# --------------------------------------------------------------------------------- import


class _RejectedRows:
    """``<name>.rejected.csv``, opened at the first rejected row and written as rows come."""

    def __init__(self, path: Path, header: list[str], stack: ExitStack) -> None:
        self.path = path
        self._header = header
        self._stack = stack
        self._writer: _csv.Writer | None = None

    @property
    def used(self) -> bool:
        return self._writer is not None

    def write(self, values: list[str], reason: str) -> None:
        if self._writer is None:
            file = self._stack.enter_context(self.path.open("w", encoding="utf-8", newline=""))
            self._writer = csv.writer(file)
            self._writer.writerow([*self._header, REASON_COLUMN])
        width = len(self._header)
        self._writer.writerow([*(values + [""] * width)[:width], reason])


def _read_header(reader: Iterator[list[str]], path: Path) -> tuple[list[str], dict[str, int]]:
    """The header as written, and the column index of each known column."""
    header = next(reader, None)
    if header is None:
        raise ImportFailed(f"{path} is empty: its first line must be the header")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in COLUMNS:
            if name in index:
                raise ImportFailed(f"the header of {path} names the column {name} twice")
            index[name] = position
    missing = [column for column in REQUIRED_COLUMNS if column not in index]
    if missing:
        raise ImportFailed(
            f"the first line of {path} must be the header naming at least "
            f"{', '.join(REQUIRED_COLUMNS)} (missing: {', '.join(missing)}; "
            f"optional: {', '.join(c for c in COLUMNS if c not in REQUIRED_COLUMNS)})"
        )
    return [name.strip().lstrip("\ufeff") for name in header], index


def _not_utf8(path: Path) -> str:
    return f"{path} is not UTF-8 text: save it as UTF-8 CSV and import it again"


async def import_visits(
    path: Path,
    visits: VisitRecorder,
    clock: Clock,
    *,
    batch_size: int = BATCH_SIZE,
    progress: TextIO | None = None,
) -> ImportSummary:
    """Import the visits in the CSV file at ``path``; see the module docstring for the format.

    Raises ImportFailed when the file cannot be imported at all. ``progress``: the stream to
    show progress on (usually stderr), or None for none.
    """
    summary = ImportSummary()
    rejected_path = rejected_path_for(path)
    with ExitStack() as stack:
        try:
            raw = stack.enter_context(path.open("rb"))
        except OSError as error:
            raise ImportFailed(f"cannot read {path}: {error.strerror or error}") from None
        text = stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        reader = csv.reader(text)
        meter = Progress(progress, os.fstat(raw.fileno()).st_size) if progress else None
        try:
            header, index = _read_header(reader, path)
        except UnicodeDecodeError:
            raise ImportFailed(_not_utf8(path)) from None
        rejected = _RejectedRows(rejected_path, header, stack)
        pending: list[tuple[VisitIn, list[str]]] = []

        async def flush() -> None:
            views = await record_batch(visits, [visit for visit, _ in pending])
            for (_, values), view in zip(pending, views, strict=True):
                if view is None:
                    summary.rejected += 1
                    rejected.write(values, f"customer_ref: {CONFLICT_MESSAGE}")
                elif view.created:
                    summary.created += 1
                else:
                    summary.duplicates += 1
            pending.clear()

        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                summary.rows += 1
                summary.rejected += 1
                rejected.write([], f"line {reader.line_num}: unreadable CSV: {error}")
                continue
            except UnicodeDecodeError:
                # Text is decoded a block ahead of the rows: the rows read so far are good.
                await flush()
                raise ImportFailed(
                    _not_utf8(path) + " (the rows before it are imported, and count as "
                    "duplicates then)",
                    summary,
                ) from None
            if not any(value.strip() for value in values):
                continue  # blank lines, and the rows of only commas spreadsheets leave at the end
            summary.rows += 1
            if len(values) > len(header):
                summary.rejected += 1
                rejected.write(
                    values,
                    f"has {len(values)} values but the header has {len(header)} columns "
                    "(a comma inside a value needs the value in double quotes)",
                )
            else:
                row = {name: values[at] for name, at in index.items() if at < len(values)}
                parsed = parse_visit(visit_mapping(row), VisitSource.CSV, clock.now())
                if isinstance(parsed, list):
                    summary.rejected += 1
                    rejected.write(values, reason_for(parsed))
                else:
                    pending.append((parsed, values))
                    if len(pending) >= batch_size:
                        await flush()
            if meter is not None and summary.rows % batch_size == 0:
                meter.update(raw.tell(), summary)
        await flush()
        if meter is not None:
            meter.update(raw.tell(), summary, final=True)

    if rejected.used:
        summary.rejected_path = rejected_path
    else:
        # What is on disk describes the latest import: a previous run's rejections are gone.
        rejected_path.unlink(missing_ok=True)
    return summary


async def run_import(
    settings: Settings,
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """``hearback import``: import, print the counts; the exit status says how it went:
    0 every row recorded (or a duplicate), 1 some rows rejected, 2 nothing could be imported.
    The database must be migrated already (the CLI does that first)."""
    if batch_size < 1:
        print(f"Import failed: the batch size must be 1 or more (got {batch_size})", file=err)
        return 2
    engine = create_engine(settings.database_url)
    clock = SystemClock()
    service = VisitService(
        create_session_factory(engine),
        JobQueue(engine, clock=clock),
        SurveyPolicy.from_settings(settings),
        clock,
        SurveyScale(settings.survey_scale),
    )
    try:
        summary = await import_visits(path, service, clock, batch_size=batch_size, progress=err)
    except ImportFailed as error:
        print(f"Import failed: {error}", file=err)
        if error.summary is not None:
            _print_summary(path, error.summary, out)
        return 2
    finally:
        await engine.dispose()
    _print_summary(path, summary, out)
    return 1 if summary.rejected else 0


def _print_summary(path: Path, summary: ImportSummary, out: TextIO) -> None:
    print(f"{path.name}: {summary.rows:,} rows", file=out)
    print(f"created: {summary.created:,}", file=out)
    print(f"duplicate: {summary.duplicates:,}", file=out)
    where = f" (rows and reasons in {summary.rejected_path})" if summary.rejected_path else ""
    print(f"rejected: {summary.rejected:,}{where}", file=out)
