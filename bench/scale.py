"""Benchmark of Hearback at scale: 1, 2 and 3 workers sharing PostgreSQL and Redis, in webhook mode.

Production's multi-worker set-up, each part real: N worker processes (bench/_bot_process.py: the
real `Application` in webhook mode, as `hearback run --webhook`), each on its own port behind a
round-robin proxy that is the webhook URL (tests/e2e/test_webhook_workers.py's), sharing one
PostgreSQL database (jobs claimed with FOR UPDATE SKIP LOCKED) and one redis-server (REDIS_URL:
seen updates, and the send budget once it is shared). This process, the driver, holds the Bot API
emulator, the simulated customers, the proxy and all the measuring. Each worker count gets a
fresh database, a fresh emulator and an emptied Redis, for each of two runs:

1. Conversations (emulator limits off, Telegram's pacing lifted in the workers as in
   bench/conversation.py, so the bot is measured and not Telegram's 30 messages/s). Set-up:
   ``--customers`` + ``rate × seconds / 2`` customers, each with a survey the workers' scheduler
   sent. Burst: all ``--customers`` tap a score and then type a comment as soon as the tap is
   answered (bench/conversation.py's `burst`): updates/s = updates answered ÷ (first update
   pushed → the bots' last call). Steady: ``--rate`` updates/s for ``--seconds``, open loop
   (conversation.py's `steady`): p50 and p99 from an update pushed into the emulator to the
   bot's reply to that chat, as the emulator recorded it. The emulator posts each update to the
   webhook URL; the proxy hands the posts to the workers in turn. During the burst the driver
   samples where the backlog is: updates still waiting at "Telegram" to be posted (the
   emulator posts one at a time, as Telegram does with max_connections=1), and updates in the
   workers' hands (their in-flight counts).
2. Surveys (emulator limits on: Telegram's 30 messages/s per bot; the workers with production's
   limiter). ``--surveys`` due before the workers start, so that while they send the driver
   only plays Telegram. sends/s = accepted sendMessage calls per second after the limiter's
   opening burst (its bucket's 3 tokens), from the emulator's timestamps; the goal is at least
   98 % of 30/s with no 429. ``most sends in any 1 s window``: sliding, a window starting at
   every call. Several workers stay within the bot's limit only because they share one budget
   (REDIS_URL); each on a budget of its own would send its own 29.5/s.

PostgreSQL with ``--database-url`` or HEARBACK_TEST_DATABASE_URL (a throw-away database is made
there per run and dropped); without either, the script runs itself under scripts/with-postgres
(a throw-away cluster). redis-server is started on a free port (tests/redis_server.py).

    .venv/bin/python bench/scale.py [--workers 1,2,3] [--customers 600] [--rate 50]
        [--seconds 20] [--surveys 900]

About 2½ minutes per worker count on the 2-core machine (``--runs surveys`` or
``--runs conversations`` for one of the two). Prints a table, then one JSON object as
the last line: {"workers": [1, 2, 3], "updates_per_s": […], "sends_per_s": […], "p99_ms": […],
…}.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversation import (  # bench/conversation.py, next to this script
    BotFailed,
    BotProcess,
    ReplyWatch,
    Run,
    burst,
    hearback_settings,
    hearback_turns,
    mix,
    sent,
    steady,
    surveyed,
    surveys_due,
)
from redis.asyncio import Redis

from bot.emulator import BotAccount, Emulator, Limits
from bot.ratelimit import SendLimits
from bot.settings import Settings
from storage.db import create_database, drop_database
from storage.migrate import upgrade_async

ROOT = Path(__file__).resolve().parent.parent
# The tests' redis-server and round-robin proxy, used as they are (tests/ is not installed).
sys.path.insert(0, str(ROOT))
from tests.e2e.test_webhook_workers import round_robin  # noqa: E402
from tests.net import free_port  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402

TELEGRAM_LIMIT_PER_S = 30
GOAL_SHARE = 0.98
SECRET = "bench-scale-workers"


# ----------------------------------------------------------------------------------- the workers


class Workers:
    """N bot processes as one: started together, stopped together; idle when all are. Stands in
    for conversation.py's `BotProcess` where its runs take one (`check`, `idle`, `cpu_seconds`)."""

    def __init__(self, processes: Sequence[BotProcess]) -> None:
        self.processes = list(processes)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Workers:
        # All at once, so that they serve from about the same moment; a failure stops them all.
        self._stack.push_async_exit(self._stop_all)
        started = await asyncio.gather(
            *(process.start() for process in self.processes), return_exceptions=True
        )
        failures = [result for result in started if isinstance(result, BaseException)]
        if failures:
            await self._stack.aclose()
            raise failures[0]
        return self

    async def _stop_all(self, *exc: object) -> None:
        stopped = await asyncio.gather(*(process.stop() for process in self.processes))
        failure = next((message for message in stopped if message), None)
        if failure and exc[0] is None:
            raise BotFailed(failure)

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(*exc)

    def check(self) -> None:
        for process in self.processes:
            process.check()

    def idle(self) -> bool:
        return all(process.idle() for process in self.processes)

    def in_flight(self) -> int:
        return sum(process.in_flight() for process in self.processes)

    def cpu_seconds(self) -> float:
        return sum(process.cpu_seconds() for process in self.processes)

    @property
    def reports(self) -> list[dict[str, Any]]:
        return [process.report for process in self.processes]


def workers(
    count: int,
    folder: Path,
    account: BotAccount,
    emulator: Emulator,
    settings: dict[str, Any],
    ports: Sequence[int],
    *,
    paced: bool,
) -> Workers:
    return Workers(
        [
            BotProcess(
                "hearback",
                folder,
                {
                    "token": account.token,
                    "api_url": emulator.url,
                    "settings": {**settings, "http_port": port},
                    "webhook": True,
                    "paced": paced,
                },
                name=f"worker{n + 1}",
            )
            for n, port in zip(range(count), ports, strict=True)
        ]
    )


def worker_settings(url: str, redis_url: str, webhook_url: str) -> dict[str, Any]:
    return {
        **hearback_settings(url),
        "redis_url": redis_url,
        "webhook_url": webhook_url,
        "webhook_secret": SECRET,
        "quiet_hours": "",
        "worker_poll_interval": 0.2,
    }


# ---------------------------------------------------------------------------------------- runs


@dataclass
class Figures:
    """One worker count's results."""

    workers: int
    burst: Run = field(default_factory=Run)
    steady: Run = field(default_factory=Run)
    sends_per_s: float = math.nan
    max_window: int = 0  # most sends accepted in any 1-s window
    steady_max_window: int = 0  # the same, after the opening burst
    http_429: int = 0
    surveys_lost: int = 0
    surveys_twice: int = 0
    handler_failures: int = 0
    #: Burst samples: updates waiting at Telegram (the emulator), and in the workers' hands.
    waiting: list[int] = field(default_factory=list)
    handling: list[int] = field(default_factory=list)


async def fresh_database(server: str) -> str:
    url = await create_database(server)
    await upgrade_async(url)
    return url


async def conversations(
    server: str, redis_url: str, folder: Path, count: int, args: argparse.Namespace, into: Figures
) -> None:
    """The conversation runs with ``count`` workers: burst (updates/s) and steady (latency)."""
    url = await fresh_database(server)
    steady_customers = max(1, round(args.rate * args.seconds / 2))
    ports = [free_port() for _ in range(count)]
    proxy, webhook_url = await round_robin(ports)
    try:
        async with Emulator(limits=Limits.off(), max_calls=10**6) as emulator:
            watch = ReplyWatch(emulator)
            account = emulator.add_bot(username="hearback_scale_bot", first_name="Rice Shop")
            options = worker_settings(url, redis_url, webhook_url)
            group = workers(count, folder, account, emulator, options, ports, paced=False)
            async with group:
                pairs = await surveyed(
                    Settings(_env_file=None, **options),
                    emulator,
                    account,
                    group,  # type: ignore[arg-type]  # the BotProcess calls it makes, for all
                    args.customers + steady_customers,
                )
                turns = hearback_turns(pairs, mix(len(pairs), count))
                crowd, paced = turns[: args.customers], turns[args.customers :]
                gc.collect()
                gc.freeze()
                sampling = asyncio.create_task(backlog(account, group, into))
                try:
                    into.burst = await burst(emulator, account, group, watch, crowd)  # type: ignore[arg-type]
                    sampling.cancel()
                    await asyncio.sleep(0.5)
                    into.steady = await steady(  # type: ignore[arg-type]
                        emulator, account, group, watch, paced, args.rate
                    )
                finally:
                    sampling.cancel()
                    gc.unfreeze()
            into.handler_failures += sum(r.get("handler_failures", 0) for r in group.reports)
    finally:
        await proxy.cleanup()
        await drop_database(url)


async def backlog(account: BotAccount, group: Workers, into: Figures) -> None:
    """Every 50 ms until cancelled: updates waiting at Telegram to be posted, and being handled
    by the workers. Where the backlog sits says what holds the burst back."""
    while True:
        into.waiting.append(len(account.updates))
        into.handling.append(group.in_flight())
        await asyncio.sleep(0.05)


def sliding_max(times: Sequence[float], window: float = 1.0) -> int:
    """The most of ``times`` (sorted) in any half-open window [t, t + window) starting at one."""
    best = start = 0
    for end, moment in enumerate(times):
        while times[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def surveys(
    server: str, redis_url: str, folder: Path, count: int, args: argparse.Namespace, into: Figures
) -> None:
    """The survey run with ``count`` workers: ``--surveys`` due at once, Telegram's limits on."""
    url = await fresh_database(server)
    ports = [free_port() for _ in range(count)]
    proxy, webhook_url = await round_robin(ports)
    try:
        async with Emulator(limits=Limits(), max_calls=10**6) as emulator:
            account = emulator.add_bot(username="hearback_scale_bot", first_name="Rice Shop")
            options = worker_settings(url, redis_url, webhook_url)
            settings = Settings(_env_file=None, **options)
            # Due before the workers start: while they send, the driver only plays Telegram
            # (its own work would delay the emulator's answers and bunch their timestamps).
            people = await surveys_due(settings, emulator, account, args.surveys)
            group = workers(count, folder, account, emulator, options, ports, paced=True)
            # A full collection over the emulator's thousands of chats would hold its answers
            # back and stamp them late, together (conversation.py does the same).
            gc.collect()
            gc.freeze()
            try:
                async with group:
                    await sent(settings, emulator, account, group, people)  # type: ignore[arg-type]
            finally:
                gc.unfreeze()
            into.handler_failures += sum(r.get("handler_failures", 0) for r in group.reports)
            calls = emulator.calls_to("sendMessage", ok=True)
            times = sorted(call.time for call in calls)
            skip = min(SendLimits().burst, len(times) // 10)
            span = times[-1] - times[skip] if len(times) > skip + 1 else 0.0
            into.sends_per_s = (len(times) - 1 - skip) / span if span > 0 else math.nan
            into.max_window = sliding_max(times)
            into.steady_max_window = sliding_max(times[skip:])
            into.http_429 = emulator.stats.too_many_requests
            per_chat = Counter(call.params["chat_id"] for call in calls)
            into.surveys_twice = sum(n - 1 for n in per_chat.values())
            into.surveys_lost = args.surveys - len(per_chat)
    finally:
        await proxy.cleanup()
        await drop_database(url)


RUNS = {"surveys": surveys, "conversations": conversations}


async def measure(server: str, args: argparse.Namespace) -> list[Figures]:
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="hearback-scale-") as scratch:
        folder = Path(scratch)
        async with redis_server(folder) as redis_url:
            redis = Redis.from_url(redis_url)
            try:
                for count in args.workers:
                    figures = Figures(count)
                    for name, run in RUNS.items():
                        if name not in args.runs:
                            continue
                        await redis.flushall()  # the update ids start again in a new emulator
                        print(f"{count} worker(s): {name} …", file=sys.stderr, flush=True)
                        began = time.monotonic()
                        await run(server, redis_url, folder, count, args, figures)
                        print(
                            f"  done in {time.monotonic() - began:.0f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                    results.append(figures)
            finally:
                await redis.aclose()
    return results


# ------------------------------------------------------------------------------------------ main


def _figure(value: float, digits: int) -> float | None:
    """Rounded; None (JSON null) for a run that was not made."""
    return None if math.isnan(value) or not value else round(value, digits)


def _mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else math.nan


def report(results: Sequence[Figures], args: argparse.Namespace) -> None:
    print()
    print(
        "Hearback with N workers in webhook mode behind a round-robin proxy, sharing PostgreSQL "
        "and Redis (2-core machine: the workers, PostgreSQL, Redis and the driver share it)"
    )
    header = f"{'figure':<46}" + "".join(f"{f'{r.workers} worker(s)':>13}" for r in results)
    print(header)
    print("-" * len(header))

    def row(label: str, values: list[float], digits: int = 1) -> None:
        print(f"{label:<46}" + "".join(f"{value:>13.{digits}f}" for value in values))

    row(
        f"burst of {args.customers} customers: updates answered/s",
        [r.burst.per_s for r in results],
    )
    row("  update → reply p50 (ms)", [r.burst.percentile(50) for r in results])
    row("  update → reply p99 (ms)", [r.burst.percentile(99) for r in results])
    row("  replies missing", [r.burst.missing for r in results], 0)
    row("  CPU per update, all workers (ms)", [r.burst.cpu_ms_per_update for r in results], 2)
    row(
        "  CPU per update, driver: emulator, proxy (ms)",
        [r.burst.driver_cpu_ms_per_update for r in results],
        2,
    )
    row("  mean updates waiting at Telegram", [_mean(r.waiting) for r in results])
    row("  mean updates in the workers' hands", [_mean(r.handling) for r in results])
    row(f"steady {args.rate:g}/s: updates pushed/s", [r.steady.pushed_per_s for r in results])
    row("  update → reply p50 (ms)", [r.steady.percentile(50) for r in results])
    row("  update → reply p99 (ms)", [r.steady.percentile(99) for r in results])
    row("  replies missing", [r.steady.missing for r in results], 0)
    row(f"{args.surveys} surveys: sends/s after the opening", [r.sends_per_s for r in results], 2)
    row("  most sends in any 1 s window", [r.max_window for r in results], 0)
    row("    after the opening burst", [r.steady_max_window for r in results], 0)
    row("  429 answers", [r.http_429 for r in results], 0)
    row("  surveys lost", [r.surveys_lost for r in results], 0)
    row("  surveys sent twice", [r.surveys_twice for r in results], 0)
    row("handler exceptions logged", [r.handler_failures for r in results], 0)
    print()
    goal = GOAL_SHARE * TELEGRAM_LIMIT_PER_S
    print(
        f"sends/s goal: ≥ {goal:.1f} ({GOAL_SHARE:.0%} of Telegram's {TELEGRAM_LIMIT_PER_S}/s) "
        f"and never more than {TELEGRAM_LIMIT_PER_S} in a 1-s window; updates/s with Telegram's "
        "pacing lifted (emulator limits off), as in bench/conversation.py."
    )
    figures: dict[str, Any] = {
        "workers": [r.workers for r in results],
        "updates_per_s": [_figure(r.burst.per_s, 1) for r in results],
        "sends_per_s": [_figure(r.sends_per_s, 2) for r in results],
        "p99_ms": [_figure(r.steady.percentile(99), 1) for r in results],
        "p50_ms": [_figure(r.steady.percentile(50), 1) for r in results],
        "max_sends_in_1s": [r.max_window for r in results],
        "http_429": [r.http_429 for r in results],
        "customers": args.customers,
        "rate": args.rate,
        "surveys": args.surveys,
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server URL (default: a throw-away cluster via scripts/with-postgres)",
    )
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 3],
        help="worker counts, comma-separated",
    )
    parser.add_argument("--customers", type=int, default=600, help="customers in the burst")
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s in the steady run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the steady run")
    parser.add_argument("--surveys", type=int, default=900, help="surveys due in the send run")
    parser.add_argument(
        "--runs",
        type=lambda text: text.split(","),
        default=list(RUNS),
        help="surveys,conversations (default both)",
    )
    args = parser.parse_args()
    if not args.database_url:
        # PostgreSQL only: a throw-away cluster, this script run again inside it.
        script = str(ROOT / "scripts" / "with-postgres")
        os.execv(script, [script, sys.executable, *sys.argv])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = asyncio.run(measure(args.database_url, args))
    report(results, args)


if __name__ == "__main__":
    main()
