"""Benchmark of /stats: its figures, text and chart over a million answers and 100,000 cases.

The data set (bench/stats_data.py: five locations, half a year of surveys, answers, reasons and
cases, seeded) is written in bulk into a freshly migrated database with the big tables' indexes
dropped and built again afterwards (SQLite: executemany in one transaction; PostgreSQL: COPY),
in a child process, so that the peak RSS measured here is /stats's and not the loader's.

Then /stats's work — `StatsService.figures`, `render` and `bot.charts.stats_chart` — is timed
for `all` before the daily roll-up exists (every row counted, as right after a bulk load), then
the roll-up is built as the job builds it at start (`StatsRollup.refresh`, timed on its own),
then for each of `all`, `30d` and `30d` at one location. Each is run once to warm up
(matplotlib's first import, the page cache) and then ``--repeats`` times (3); the median is
reported. The JSON's figures are `all` with the roll-up built.

SQLite (a temporary file) always. PostgreSQL with ``--database-url`` or
HEARBACK_TEST_DATABASE_URL (a throw-away database is made there and dropped); without either,
the script runs itself under scripts/with-postgres when PostgreSQL is installed, and says so
when it is not.

    .venv/bin/python bench/stats.py [--answers 1000000] [--cases 100000] [--repeats 3]

Prints a table, then one JSON object as the last line (the `all` figures):
{"answers": 1000000, "sqlite_s": …, "postgresql_s": …, "peak_rss_mb": …}.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from stats_data import COLUMNS, NOW, Shape, rows  # bench/stats_data.py, next to this script

from bot.charts import stats_chart
from bot.clock import FakeClock
from bot.periods import parse_period
from bot.stats import Scope, StatsService, render
from bot.stats_rollup import StatsRollup
from storage import migrate
from storage.db import (
    backend_name,
    create_database,
    create_engine,
    create_session_factory,
    drop_database,
)

ROOT = Path(__file__).resolve().parent.parent
#: (name in the table and JSON, period typed, location or None).
CASES = (("all", "all", None), ("30d", "30d", None), ("30d_location", "30d", "Airport"))
BIG_TABLES = ("visits", "surveys", "answers", "answer_reasons", "cases")
BATCH = 50_000


# -- loading ------------------------------------------------------------------------------------


def _sqlite_value(value: object) -> object:
    # As storage.models.UTCDateTime stores it on SQLite: naive UTC text.
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        )
    return value


def _load_sqlite(url: str, shape: Shape) -> None:
    import sqlite3

    path = url.split("///", 1)[1]
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({', '.join('?' * len(BIG_TABLES))})",
            BIG_TABLES,
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        for table, generated in rows(shape).items():
            columns = COLUMNS[table]
            connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))})",
                (tuple(_sqlite_value(v) for v in row) for row in generated),
            )
        for _, sql in indexes:
            connection.execute(sql)
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def _load_postgresql(url: str, shape: Shape) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # Plain indexes only: those behind primary keys and unique constraints stay.
        indexes = await connection.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public'"
            " AND i.tablename = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            " WHERE c.conname = i.indexname)",
            list(BIG_TABLES),
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        for table, generated in rows(shape).items():
            batch: list[tuple] = []
            for row in generated:
                batch.append(row)
                if len(batch) >= BATCH:
                    await connection.copy_records_to_table(
                        table, records=batch, columns=COLUMNS[table]
                    )
                    batch = []
            if batch:
                await connection.copy_records_to_table(table, records=batch, columns=COLUMNS[table])
        for index in indexes:
            await connection.execute(index["indexdef"])
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def build(url: str, shape: Shape) -> None:
    migrate.upgrade(url)
    if backend_name(url) == "sqlite":
        _load_sqlite(url, shape)
    else:
        asyncio.run(_load_postgresql(url, shape))


# -- measuring ----------------------------------------------------------------------------------


async def _stats_once(service: StatsService, period_text: str, location: str | None) -> float:
    started = time.perf_counter()
    period = parse_period(period_text, NOW, service.zone)
    scope = Scope.everything() if location is None else Scope.location(location)
    figures = await service.figures(period, scope)
    render(figures, service.zone)
    stats_chart(figures)
    return time.perf_counter() - started


async def measure(url: str, repeats: int) -> dict[str, float]:
    engine = create_engine(url)
    try:
        sessions = create_session_factory(engine)
        service = StatsService(sessions, FakeClock(NOW), UTC)
        async with engine.connect() as connection:
            answers = (await connection.execute(text("SELECT count(*) FROM answers"))).scalar()
        print(f"  {backend_name(url)}: {answers:,} answers; measuring", file=sys.stderr)
        timings: dict[str, float] = {}
        # Before the roll-up exists (a fresh load, the job not run yet): every row counted.
        await _stats_once(service, "all", None)  # warm-up
        runs = [await _stats_once(service, "all", None) for _ in range(repeats)]
        timings["all_unrolled"] = statistics.median(runs)
        # The roll-up's first build, as the job does it at start (bot.stats_rollup).
        started = time.perf_counter()
        await StatsRollup(sessions, FakeClock(NOW), zone=lambda: service.zone).refresh()
        timings["rollup_build_s"] = time.perf_counter() - started
        for name, period_text, location in CASES:
            await _stats_once(service, period_text, location)  # warm-up
            runs = [await _stats_once(service, period_text, location) for _ in range(repeats)]
            timings[name] = statistics.median(runs)
        return timings
    finally:
        await engine.dispose()


def _build_in_child(url: str, shape: Shape) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--build-only",
            url,
            "--answers",
            str(shape.answers),
            "--cases",
            str(shape.cases),
        ],
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - started


async def run_backend(server: str, shape: Shape, repeats: int) -> dict[str, float]:
    url = await create_database(server, "hearback_stats_bench")
    try:
        print(f"  {backend_name(url)}: building the data set", file=sys.stderr)
        built_s = _build_in_child(url, shape)
        timings = await measure(url, repeats)
        return {**timings, "build_s": built_s}
    finally:
        await drop_database(url)


def _postgresql_elsewhere(args: argparse.Namespace) -> dict[str, float] | str:
    """Runs this script's PostgreSQL part under scripts/with-postgres (a throw-away cluster);
    its figures come back as its last line. A string says why there are none."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL is not installed (scripts/with-postgres can install it)"
    command = [
        str(ROOT / "scripts" / "with-postgres"),
        sys.executable,
        str(Path(__file__).resolve()),
        "--postgresql-only",
        "--answers",
        str(args.answers),
        "--cases",
        str(args.cases),
        "--repeats",
        str(args.repeats),
    ]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return f"PostgreSQL run failed (exit {done.returncode})"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server URL (default: a throw-away cluster via scripts/with-postgres)",
    )
    parser.add_argument("--build-only", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--postgresql-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = Shape(answers=args.answers, cases=args.cases)

    if args.build_only:
        build(args.build_only, shape)
        return
    if args.postgresql_only:
        if not args.database_url:
            sys.exit("--postgresql-only needs HEARBACK_TEST_DATABASE_URL")
        figures = asyncio.run(run_backend(args.database_url, shape, args.repeats))
        print(json.dumps({**figures, "peak_rss_mb": _peak_rss_mb()}))
        return

    with tempfile.TemporaryDirectory(prefix="hearback-stats-") as scratch:
        sqlite = asyncio.run(run_backend(f"sqlite+aiosqlite:///{scratch}/", shape, args.repeats))
    sqlite_rss = _peak_rss_mb()
    if args.database_url:
        postgresql: dict[str, float] | str = asyncio.run(
            run_backend(args.database_url, shape, args.repeats)
        )
        postgresql_rss = _peak_rss_mb()
    else:
        postgresql = _postgresql_elsewhere(args)
        postgresql_rss = postgresql.get("peak_rss_mb", 0.0) if isinstance(postgresql, dict) else 0

    print(
        f"/stats (figures + text + chart) over {shape.answers:,} answers, {shape.cases:,} cases:"
        f" median of {args.repeats} runs after a warm-up (s)"
    )
    print(f"{'':<22}{'SQLite':>10}{'PostgreSQL':>12}")
    labels = {
        "all_unrolled": "all, no roll-up yet",
        "rollup_build_s": "roll-up first built",
        "all": "all",
        "30d": "30d",
        "30d_location": "30d, one location",
    }
    for key, label in labels.items():
        pg = f"{postgresql[key]:.3f}" if isinstance(postgresql, dict) else "–"
        print(f"{label:<22}{sqlite[key]:>10.3f}{pg:>12}")
    pg_build = f"{postgresql['build_s']:.0f}" if isinstance(postgresql, dict) else "–"
    print(f"{'data set built in':<22}{sqlite['build_s']:>10.0f}{pg_build:>12}")
    pg_rss = f"{postgresql_rss:.0f}" if isinstance(postgresql, dict) else "–"
    print(f"{'peak RSS (MB)':<22}{sqlite_rss:>10.0f}{pg_rss:>12}")
    if isinstance(postgresql, str):
        print(f"PostgreSQL: not measured: {postgresql}")
    print("JSON: the `all` figures; peak RSS the larger of the two measuring processes")
    print(
        json.dumps(
            {
                "answers": shape.answers,
                "sqlite_s": round(sqlite["all"], 3),
                "postgresql_s": round(postgresql["all"], 3)
                if isinstance(postgresql, dict)
                else None,
                "peak_rss_mb": round(max(sqlite_rss, postgresql_rss), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
