"""Benchmark of the durable job queue (storage/jobs.py).

Measures, on a fresh migrated database per repeat:
- schedule: jobs scheduled per second, one transaction per job, one caller;
- drain: jobs claimed and completed per second by 1, 4 and 8 concurrent workers sharing one
  engine (as the bot's scheduler does), claiming `--batch` jobs at a time;
- claim latency: median and 95th percentile of one `claim_due` call, per worker count.
Each figure is the median over `--repeats` runs. Every drain is also checked: no job handed out
twice, none left behind.

SQLite (a temporary file) by default; PostgreSQL with `--database-url` or
HEARBACK_TEST_DATABASE_URL (a throw-away database is created on that server and dropped).

    .venv/bin/python bench/jobqueue.py [--database-url URL] [--jobs 500] [--repeats 3]

Prints a table, then one JSON object with the figures as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from storage import migrate
from storage.db import (
    backend_name,
    create_database,
    create_engine,
    create_session_factory,
    drop_database,
)
from storage.jobs import JobQueue

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
WORKER_COUNTS = (1, 4, 8)


@dataclass
class Run:
    schedule_per_s: float = 0.0
    drain_per_s: dict[int, float] = field(default_factory=dict)
    claim_p50_ms: dict[int, float] = field(default_factory=dict)
    claim_p95_ms: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    lost: int = 0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure_schedule(queue: JobQueue, jobs: int) -> float:
    started = time.perf_counter()
    for n in range(jobs):
        await queue.schedule("send_survey", NOW, {"survey_id": n})
    return jobs / (time.perf_counter() - started)


async def _fill(queue: JobQueue, sessions: async_sessionmaker[AsyncSession], jobs: int) -> set[int]:
    async with sessions() as session, session.begin():
        return {
            await queue.schedule("send_survey", NOW, {"survey_id": n}, session=session)
            for n in range(jobs)
        }


async def _measure_drain(
    queue: JobQueue, workers: int, batch: int
) -> tuple[float, list[float], Counter[int]]:
    latencies: list[float] = []
    handed_out: Counter[int] = Counter()
    done = 0

    async def work(number: int) -> None:
        nonlocal done
        while True:
            started = time.perf_counter()
            claimed = await queue.claim_due(NOW, batch, lease=LEASE, worker=f"bench-{number}")
            latencies.append((time.perf_counter() - started) * 1000)
            if not claimed:
                return
            for job in claimed:
                handed_out[job.id] += 1
                if await queue.complete(job):
                    done += 1

    started = time.perf_counter()
    await asyncio.gather(*(work(n) for n in range(workers)))
    elapsed = time.perf_counter() - started
    return done / elapsed, latencies, handed_out


async def _one_run(server: str, jobs: int, batch: int) -> Run:
    url = await create_database(server)
    run = Run()
    try:
        await migrate.upgrade_async(url)
        engine = create_engine(url, pool_size=max(WORKER_COUNTS) + 2)
        try:
            sessions = create_session_factory(engine)
            queue = JobQueue(engine, clock=FakeClock(NOW))
            run.schedule_per_s = await _measure_schedule(queue, jobs)
            await _drain_quietly(queue)
            for workers in WORKER_COUNTS:
                ids = await _fill(queue, sessions, jobs)
                rate, latencies, handed_out = await _measure_drain(queue, workers, batch)
                run.drain_per_s[workers] = rate
                run.claim_p50_ms[workers] = statistics.median(latencies)
                run.claim_p95_ms[workers] = _percentile(latencies, 0.95)
                run.duplicates += sum(count - 1 for count in handed_out.values() if count > 1)
                run.lost += len(ids - set(handed_out))
        finally:
            await engine.dispose()
    finally:
        await drop_database(url)
    return run


async def _drain_quietly(queue: JobQueue) -> None:
    """Finish the jobs left by the schedule measurement, so each drain starts from the same
    state."""
    while claimed := await queue.claim_due(NOW, 500, lease=LEASE, worker="setup"):
        for job in claimed:
            await queue.complete(job)


def _server(url: str | None) -> tuple[str, tempfile.TemporaryDirectory[str] | None]:
    if url:
        return url, None
    scratch = tempfile.TemporaryDirectory(prefix="hearback-bench-")
    return f"sqlite+aiosqlite:///{scratch.name}/", scratch


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server URL (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--jobs", type=int, default=500, help="jobs per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10, help="jobs per claim_due call")
    args = parser.parse_args()

    server, scratch = _server(args.database_url)
    backend = backend_name(server)
    runs: list[Run] = []
    try:
        for _ in range(args.repeats):
            runs.append(await _one_run(server, args.jobs, args.batch))
    finally:
        if scratch is not None:
            scratch.cleanup()

    def median(values: list[float]) -> float:
        return statistics.median(values)

    figures: dict[str, object] = {
        "backend": backend,
        "jobs": args.jobs,
        "repeats": args.repeats,
        "batch": args.batch,
        "schedule_per_s": round(median([r.schedule_per_s for r in runs]), 1),
    }
    for workers in WORKER_COUNTS:
        figures[f"drain_per_s_{workers}"] = round(median([r.drain_per_s[workers] for r in runs]), 1)
    for workers in WORKER_COUNTS:
        figures[f"claim_p50_ms_{workers}"] = round(
            median([r.claim_p50_ms[workers] for r in runs]), 2
        )
        figures[f"claim_p95_ms_{workers}"] = round(
            median([r.claim_p95_ms[workers] for r in runs]), 2
        )
    figures["duplicates"] = sum(r.duplicates for r in runs)
    figures["lost"] = sum(r.lost for r in runs)

    columns = "".join(f"{f'{w} worker' + ('s' if w > 1 else ''):>12}" for w in WORKER_COUNTS)

    def row(label: str, key: str) -> str:
        cells = "".join(f"{figures[f'{key}_{w}']:>12}" for w in WORKER_COUNTS)
        return f"{label:<32}{cells}"

    print(
        f"Job queue on {backend}: {args.jobs} jobs, claims of {args.batch}, "
        f"median of {args.repeats} runs"
    )
    print(f"{'':<32}{columns}")
    print(row("claimed+completed (jobs/s)", "drain_per_s"))
    print(row("claim latency p50 (ms)", "claim_p50_ms"))
    print(row("claim latency p95 (ms)", "claim_p95_ms"))
    print(f"{'scheduled, one caller (jobs/s)':<32}{figures['schedule_per_s']:>12}")
    integrity = f"{figures['duplicates']} / {figures['lost']}"
    print(f"{'handed out twice / lost':<32}{integrity:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
