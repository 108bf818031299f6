"""Benchmark: visits recorded per second through the HTTP API, on SQLite and on PostgreSQL.

Each repeat makes a fresh migrated database and serves the bot's real HTTP app
(`bot.http.build_http_app` with the visits API, as the Application does) on a loopback port,
then measures over real HTTP, with an API key, every visit new (its own visit id and customer):

- single: ``--single`` visits, one ``POST /api/v1/visits`` each, ``--concurrency`` clients at a
  time (as a business's systems posting visits as they happen);
- batch: ``--batches`` requests of ``--batch-size`` visits to ``POST /api/v1/visits:batch``,
  one after the other (as a nightly sync).

Every visit must come back 201, or the benchmark fails. Figures are the medians of
``--repeats`` runs. PostgreSQL is measured when a server is given by ``--postgres-url`` or
HEARBACK_TEST_DATABASE_URL (``scripts/with-postgres .venv/bin/python bench/ingest.py`` starts
a throw-away one); a database is created on it per repeat and dropped after. Without one, its
figures are null.

    .venv/bin/python bench/ingest.py [--single 300] [--concurrency 8] [--batches 1]
                                     [--batch-size 500] [--repeats 3] [--postgres-url URL]

Prints a table, then, as the last line, one JSON object:
{"sqlite_single_per_s", "sqlite_batch_per_s", "postgresql_single_per_s",
"postgresql_batch_per_s"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.clock import SystemClock
from bot.http import build_http_app, start_http_server
from bot.policy import SurveyPolicy
from bot.settings import Settings
from bot.visits import VisitService
from storage.db import (
    backend_name,
    create_database,
    create_engine,
    create_session_factory,
    drop_database,
)
from storage.jobs import JobQueue
from storage.migrate import upgrade_async
from storage.models import SurveyScale

KEY = "bench-key-0123456789abcdef"


@dataclass(frozen=True)
class Plan:
    single: int
    concurrency: int
    batches: int
    batch_size: int


@dataclass(frozen=True)
class Run:
    single_per_s: float
    batch_per_s: float


def visits(prefix: str, count: int) -> Iterator[dict[str, Any]]:
    """New visits, each of its own customer, ten minutes ago (by the wall clock, which the API
    checks occurred_at against)."""
    occurred_at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    for n in range(count):
        yield {
            "visit_id": f"{prefix}-{n:06}",
            "customer": {"ref": f"{prefix}-cust-{n:06}", "name": "Anna", "language": "en"},
            "location": "Downtown",
            "staff": "Maria",
            "service": "Haircut",
            "occurred_at": occurred_at,
        }


async def measure_single(http: aiohttp.ClientSession, plan: Plan) -> float:
    pending = visits("single", plan.single)

    async def client() -> None:
        for visit in pending:  # the clients share one iterator: each visit is sent once
            async with http.post("/api/v1/visits", json=visit) as response:
                if response.status != 201:
                    raise RuntimeError(f"visit answered {response.status}: {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(plan.concurrency)))
    return plan.single / (time.perf_counter() - started)


async def measure_batch(http: aiohttp.ClientSession, plan: Plan) -> float:
    every = list(visits("batch", plan.batches * plan.batch_size))
    bodies = [
        {"visits": every[start : start + plan.batch_size]}
        for start in range(0, len(every), plan.batch_size)
    ]
    started = time.perf_counter()
    for body in bodies:
        async with http.post("/api/v1/visits:batch", json=body) as response:
            answer = await response.json()
            if response.status != 200 or answer["created"] != len(body["visits"]):
                raise RuntimeError(f"batch answered {response.status}: {str(answer)[:500]}")
    return len(every) / (time.perf_counter() - started)


async def one_run(server: str, plan: Plan) -> Run:
    url = await create_database(server)
    try:
        await upgrade_async(url)
        settings = Settings(_env_file=None, database_url=url, api_keys=KEY, http_port=0)
        engine = create_engine(url)
        clock = SystemClock()
        service = VisitService(
            create_session_factory(engine),
            JobQueue(engine, clock=clock),
            SurveyPolicy.from_settings(settings),
            clock,
            SurveyScale(settings.survey_scale),
        )
        app = build_http_app(settings, engine, visits=service, clock=clock)
        runner = await start_http_server(app, "127.0.0.1", 0)
        try:
            host, port = runner.addresses[0][:2]
            async with aiohttp.ClientSession(
                f"http://{host}:{port}", headers={"Authorization": f"Bearer {KEY}"}
            ) as http:
                single = await measure_single(http, plan)
                batch = await measure_batch(http, plan)
        finally:
            await runner.cleanup()
            await engine.dispose()
        return Run(single_per_s=single, batch_per_s=batch)
    finally:
        await drop_database(url)


async def measure(server: str, plan: Plan, repeats: int) -> Run:
    runs = [await one_run(server, plan) for _ in range(repeats)]
    return Run(
        single_per_s=round(statistics.median(run.single_per_s for run in runs), 1),
        batch_per_s=round(statistics.median(run.batch_per_s for run in runs), 1),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=300, help="visits posted one by one")
    parser.add_argument("--concurrency", type=int, default=8, help="clients posting at once")
    parser.add_argument("--batches", type=int, default=1, help="batch requests per run")
    parser.add_argument("--batch-size", type=int, default=500, help="visits per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server (default: HEARBACK_TEST_DATABASE_URL; none: SQLite only)",
    )
    args = parser.parse_args()
    plan = Plan(args.single, args.concurrency, args.batches, args.batch_size)

    results: dict[str, Run | None] = {}
    with tempfile.TemporaryDirectory(prefix="hearback-bench-") as scratch:
        results["sqlite"] = await measure(f"sqlite+aiosqlite:///{scratch}/", plan, args.repeats)
    if args.postgres_url and backend_name(args.postgres_url) == "postgresql":
        results["postgresql"] = await measure(args.postgres_url, plan, args.repeats)
    else:
        results["postgresql"] = None
        print(
            "PostgreSQL: no server given (--postgres-url or HEARBACK_TEST_DATABASE_URL, e.g. "
            "scripts/with-postgres .venv/bin/python bench/ingest.py); its figures are null"
        )

    print(
        f"Visits in through the HTTP API, median of {args.repeats} runs: single = "
        f"{plan.single} POSTs, {plan.concurrency} at a time; batch = {plan.batches} x "
        f"{plan.batch_size} visits"
    )
    print(f"{'backend':<12}{'single (visits/s)':>20}{'batch (visits/s)':>20}")
    figures: dict[str, float | None] = {}
    for backend, run in results.items():
        single = None if run is None else run.single_per_s
        batch = None if run is None else run.batch_per_s
        shown = ("-" if value is None else f"{value:,.1f}" for value in (single, batch))
        print(f"{backend:<12}{next(shown):>20}{next(shown):>20}")
        figures[f"{backend}_single_per_s"] = single
        figures[f"{backend}_batch_per_s"] = batch
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
