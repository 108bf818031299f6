"""Benchmark of survey delivery: the scheduler, the rate limiter and the bot against the emulator.

Three runs, each on a fresh migrated database and a fresh emulator with Telegram's limits on
(3 messages at once then 1/s per private chat, 30 at once then 30/s per bot):

1. free: ``--count`` surveys (3,000) due now for as many customers, the default settings. How
   fast they go out once the opening burst is spent (goal: at least 29.4/s, 98 % of Telegram's
   30/s), how many 429s came back (goal 0), how many surveys were never sent (0) and how many
   were sent twice (0).
2. faults: ``--fault-count`` surveys (1,000) while 5 % of sendMessage calls fail: half answered
   502, half held past the client's timeout without being performed. Every survey must still
   go out, none twice. The bot's request timeout is 2 s for this run (aiogram's default is
   60 s, which would only make the run longer).
3. paid: ``--count`` surveys with PAID_BROADCAST=true. The emulator does not model paid
   broadcast, so for this run its per-bot limit is raised to Telegram's paid 1,000/s
   (``Limits().but(global_burst=1000, global_per_second=1000)``); per-chat limits stay.
   WORKER_CONCURRENCY is ``--paid-concurrency`` (300): 40 jobs in flight keep 30/s busy,
   not 1,000/s.

The bot runs as a child process (the real `Application`, polling the emulator over HTTP), so
the peak RSS is the bot's own, without the emulator and its thousands of simulated people.
Sends are counted by the emulator: ``sendMessage`` calls it accepted, per chat.

SQLite (a temporary file) by default; PostgreSQL with ``--database-url`` or
HEARBACK_TEST_DATABASE_URL (a throw-away database is created on that server and dropped).

    .venv/bin/python bench/dispatch.py [--count 3000] [--fault-count 1000] [--runs free,faults,paid]

Prints a table, then one JSON object with the figures as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import func, select

from bot.emulator import Emulator, Limits
from bot.ratelimit import SendLimits
from bot.simulation import surveys_due_before_start
from storage import migrate
from storage.db import (
    backend_name,
    create_database,
    create_engine,
    create_session_factory,
    drop_database,
)
from storage.models import Survey, SurveyState

TELEGRAM_LIMIT_PER_S = 30
PAID_LIMIT_PER_S = 1000
#: The bot's request timeout in the faults run, and how long a "timed out" call is held.
CLIENT_TIMEOUT = 2.0
HOLD = 5.0


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    count: int
    limits: Limits
    limit_per_s: int
    paid: bool = False
    fault_fraction: float = 0.0
    concurrency: int = 40
    client_timeout: float | None = None


@dataclass
class Result:
    scenario: Scenario
    sent: int = 0
    sends_per_s: float = 0.0
    seconds: float = 0.0
    http_429: int = 0
    lost: int = 0
    duplicates: int = 0
    failed: int = 0
    server_errors: int = 0
    timeouts: int = 0
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- the bot process


def _bot_process(options: dict[str, Any], conn: Connection) -> None:
    """The child: the real application until SIGTERM, then its peak RSS back to the parent."""
    from bot.app import Application, run_until_signalled
    from bot.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="bot: %(levelname)s %(name)s: %(message)s")

    async def serve() -> None:
        settings = Settings(_env_file=None, **options["settings"])
        app = Application(settings, token=options["token"], api_url=options["api_url"])
        if options["client_timeout"] is not None:
            app.bot.session.timeout = options["client_timeout"]
        await run_until_signalled(app)

    asyncio.run(serve())
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
    conn.close()


# ------------------------------------------------------------------------------- one run


async def _seed(url: str, emulator: Emulator, scenario: Scenario) -> list[int]:
    """``count`` people who started the bot, each with a visit whose survey is due now."""
    account = next(iter(emulator.world.bots.values()))
    people = [emulator.add_user(first_name=f"Guest{n}") for n in range(scenario.count)]
    engine = create_engine(url)
    try:
        await surveys_due_before_start(create_session_factory(engine), engine, account, people)
    finally:
        await engine.dispose()
    return [person.id for person in people]


async def _inject_timeouts(emulator: Emulator, fraction: float, seed: int) -> None:
    """Hold about ``fraction`` of sendMessage calls past the client's timeout, at random."""
    rng = random.Random(seed)
    next_at = 1 + int(rng.expovariate(fraction))
    while True:
        if emulator.stats.by_method["sendMessage"] >= next_at and not any(
            fault["kind"] == "timeout" for fault in emulator.faults.active
        ):
            emulator.faults.timeout_next(1, hold=HOLD, methods=["sendMessage"])
            next_at = emulator.stats.by_method["sendMessage"] + 1 + int(rng.expovariate(fraction))
        await asyncio.sleep(0.005)


async def _surveys_in(url: str, state: SurveyState) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            statement = select(func.count()).select_from(Survey).where(Survey.state == state)
            return int(await connection.scalar(statement) or 0)
    finally:
        await engine.dispose()


def _delivered(emulator: Emulator) -> Counter[int]:
    return Counter(c.params["chat_id"] for c in emulator.calls_to("sendMessage", ok=True))


def _sustained_rate(emulator: Emulator, skip: int) -> tuple[float, float]:
    """Sends per second after the first ``skip`` (the opening burst), and the whole span."""
    times = sorted(c.time for c in emulator.calls_to("sendMessage", ok=True))
    if len(times) < 2:
        return 0.0, 0.0
    skip = min(skip, len(times) // 10)
    span = times[-1] - times[skip]
    return ((len(times) - 1 - skip) / span if span > 0 else 0.0), times[-1] - times[0]


async def _one_run(server: str, scenario: Scenario) -> Result:
    result = Result(scenario)
    url = await create_database(server)
    try:
        await migrate.upgrade_async(url)
        async with Emulator(limits=scenario.limits) as emulator:
            account = emulator.add_bot(username="hearback_bench_bot", first_name="Rice Shop")
            customers = await _seed(url, emulator, scenario)
            injector = None
            if scenario.fault_fraction:
                half = scenario.fault_fraction / 2
                emulator.faults.fail_fraction(half, status=502, seed=1, methods=["sendMessage"])
                injector = asyncio.create_task(_inject_timeouts(emulator, half, seed=2))
            options = {
                "token": account.token,
                "api_url": emulator.url,
                "client_timeout": scenario.client_timeout,
                "settings": {
                    "database_url": url,
                    "business_name": "Rice Shop",
                    "http_port": 0,
                    "log_level": "WARNING",
                    "quiet_hours": "",
                    "paid_broadcast": scenario.paid,
                    "worker_concurrency": scenario.concurrency,
                    "worker_poll_interval": 0.2,
                },
            }
            context = multiprocessing.get_context("spawn")
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(target=_bot_process, args=(options, sender), daemon=True)
            child.start()
            deadline = time.monotonic() + 120 + scenario.count / 20
            try:
                # Until no survey is scheduled any more: each was sent (and that recorded, which
                # follows Telegram's answer) or failed for good.
                while time.monotonic() < deadline:
                    if not child.is_alive():
                        raise RuntimeError(f"the bot exited early (code {child.exitcode})")
                    if not await _surveys_in(url, SurveyState.SCHEDULED):
                        break
                    await asyncio.sleep(0.25)
            finally:
                if injector is not None:
                    injector.cancel()
                child.terminate()  # SIGTERM: the bot shuts down in order
                await asyncio.to_thread(child.join, 60)
            if receiver.poll(5):
                result.peak_rss_mb = receiver.recv()
            delivered = _delivered(emulator)
            skip = SendLimits().paid_burst if scenario.paid else SendLimits().burst
            result.sends_per_s, result.seconds = _sustained_rate(emulator, skip)
            result.sent = sum(delivered.values())
            result.http_429 = emulator.stats.too_many_requests
            result.lost = sum(1 for customer in customers if not delivered[customer])
            result.duplicates = sum(count - 1 for count in delivered.values() if count > 1)
            result.server_errors = emulator.stats.server_errors
            result.timeouts = emulator.stats.timeouts
            result.failed = await _surveys_in(url, SurveyState.FAILED)
    finally:
        await drop_database(url)
    return result


# ---------------------------------------------------------------------------------- main


def _server(url: str | None) -> tuple[str, tempfile.TemporaryDirectory[str] | None]:
    if url:
        return url, None
    scratch = tempfile.TemporaryDirectory(prefix="hearback-bench-")
    return f"sqlite+aiosqlite:///{scratch.name}/", scratch


def _scenarios(args: argparse.Namespace) -> list[Scenario]:
    telegram = Limits()
    every = {
        "free": Scenario("free", "free, 30/s", args.count, telegram, TELEGRAM_LIMIT_PER_S),
        "faults": Scenario(
            "faults",
            f"{args.fault_fraction:.0%} 5xx+timeouts",
            args.fault_count,
            telegram,
            TELEGRAM_LIMIT_PER_S,
            fault_fraction=args.fault_fraction,
            client_timeout=CLIENT_TIMEOUT,
        ),
        "paid": Scenario(
            "paid",
            "paid broadcast, 1000/s",
            args.count,
            telegram.but(global_burst=PAID_LIMIT_PER_S, global_per_second=PAID_LIMIT_PER_S),
            PAID_LIMIT_PER_S,
            paid=True,
            concurrency=args.paid_concurrency,
        ),
    }
    names = [name.strip() for name in args.runs.split(",") if name.strip()]
    unknown = set(names) - set(every)
    if unknown:
        raise SystemExit(f"unknown run(s): {', '.join(sorted(unknown))}")
    return [every[name] for name in names]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server URL (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--count", type=int, default=3000, help="surveys in the free/paid runs")
    parser.add_argument("--fault-count", type=int, default=1000, help="surveys in the fault run")
    parser.add_argument("--fault-fraction", type=float, default=0.05)
    parser.add_argument("--paid-concurrency", type=int, default=300)
    parser.add_argument("--runs", default="free,faults,paid", help="which runs, comma-separated")
    args = parser.parse_args()

    server, scratch = _server(args.database_url)
    backend = backend_name(server)
    results: dict[str, Result] = {}
    try:
        for scenario in _scenarios(args):
            print(f"running {scenario.name}: {scenario.count} surveys …", flush=True)
            results[scenario.name] = await _one_run(server, scenario)
    finally:
        if scratch is not None:
            scratch.cleanup()

    print()
    print(f"Survey dispatch through the Bot API emulator, Telegram's limits on ({backend})")
    header = (
        f"{'run':<24}{'surveys':>8}{'sent':>7}{'sends/s':>9}{'limit/s':>8}{'429s':>6}"
        f"{'lost':>6}{'twice':>6}{'failed':>7}{'5xx':>5}{'t/o':>5}{'RSS MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for result in results.values():
        scenario = result.scenario
        print(
            f"{scenario.label:<24}{scenario.count:>8}{result.sent:>7}"
            f"{result.sends_per_s:>9.2f}{scenario.limit_per_s:>8}{result.http_429:>6}"
            f"{result.lost:>6}{result.duplicates:>6}{result.failed:>7}"
            f"{result.server_errors:>5}{result.timeouts:>5}{result.peak_rss_mb:>8.1f}"
        )
    print()
    print("sends/s: accepted sendMessage calls per second after the opening burst.")
    if "faults" in results:
        print(
            f"faults: half of the faults answered 502, half held {HOLD:.0f} s past the bot's "
            f"{CLIENT_TIMEOUT:.0f} s request timeout, unperformed."
        )
    if "paid" in results:
        print(
            "paid: the emulator does not model paid broadcast; for this run its per-bot limit "
            f"was raised to {PAID_LIMIT_PER_S}/s (Limits().but(global_burst=1000, "
            f"global_per_second=1000)); WORKER_CONCURRENCY={args.paid_concurrency}."
        )
    print("RSS: peak resident memory of the bot process (the emulator runs in another).")

    free, faults, paid = results.get("free"), results.get("faults"), results.get("paid")
    figures = {
        "sends_per_s": round(free.sends_per_s, 2) if free else None,
        "limit_per_s": TELEGRAM_LIMIT_PER_S,
        "http_429": sum(result.http_429 for result in results.values()),
        "lost": free.lost if free else None,
        "duplicates": free.duplicates if free else None,
        "faults_lost": faults.lost if faults else None,
        "paid_sends_per_s": round(paid.sends_per_s, 1) if paid else None,
        "peak_rss_mb": round(max(result.peak_rss_mb for result in results.values()), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
