"""How fast the real bot answers: updates/s and round-trip time, over real HTTP to the emulator.

Each repeat makes a fresh database, starts the emulator with Telegram's flood limits turned off
and the bot's own pacing lifted (both would cap it at 30 messages/s and measure Telegram's
limit, not the bot), and runs the real `Application` polling it. Two figures:

- burst: N customers press /start at once; updates handled per second until every greeting has
  arrived (each greeting is a database write plus a sendMessage);
- round trip: one customer at a time sends /start and waits for the greeting; the median time.

    .venv/bin/python bench/updates.py [--users 300] [--repeats 3] [--database-url URL]

Prints a table, then one JSON line with the medians of the repeats:
{"backend", "users", "updates_per_s", "roundtrip_ms_median", "roundtrip_ms_p95", "repeats"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

from bot.app import Application
from bot.emulator import Emulator, Limits
from bot.ratelimit import RateLimiter, SendLimits
from bot.settings import Settings
from storage.db import backend_name, create_database, drop_database
from storage.migrate import upgrade_async

# Pacing is lifted on both sides: this measures how fast the bot handles updates, not Telegram's
# 30 messages/s (bench/dispatch.py measures sending within the limits).
UNPACED = RateLimiter(
    SendLimits(per_second=1e6, burst=10**6, private_per_second=1e6, private_burst=10**6)
)


async def one_repeat(database_url: str, users: int, round_trips: int) -> tuple[float, list[float]]:
    await upgrade_async(database_url)
    settings = Settings(_env_file=None, database_url=database_url, http_port=0)
    async with Emulator(limits=Limits.off()) as emulator:
        account = emulator.add_bot(username="bench_bot")
        app = Application(settings, token=account.token, api_url=emulator.url, limiter=UNPACED)
        running = asyncio.create_task(app.run())
        await asyncio.wait_for(app.started.wait(), 30)
        try:
            crowd = [emulator.add_user(first_name=f"Guest{i}") for i in range(users)]
            began = time.perf_counter()
            await asyncio.gather(*(person.send(account, "/start") for person in crowd))
            await emulator.wait_for(
                lambda: all(person.inbox(account) for person in crowd), timeout=300
            )
            rate = users / (time.perf_counter() - began)

            latencies = []
            for i in range(round_trips):
                person = emulator.add_user(first_name=f"Solo{i}")
                sent = time.perf_counter()
                await person.send(account, "/start")
                await emulator.wait_for(lambda p=person: p.inbox(account), 10, interval=0.0005)
                latencies.append((time.perf_counter() - sent) * 1000)
        finally:
            app.stop()
            await running
    return rate, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--round-trips", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL"),
        help="a PostgreSQL server URL (a throw-away database is made on it); default SQLite",
    )
    args = parser.parse_args()

    rates: list[float] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            if args.database_url:
                url = await create_database(args.database_url)
            else:
                url = f"sqlite+aiosqlite:///{folder}/bench{repeat}.db"
            try:
                rate, trips = await one_repeat(url, args.users, args.round_trips)
            finally:
                if args.database_url:
                    await drop_database(url)
            rates.append(rate)
            latencies.extend(trips)
            print(
                f"repeat {repeat + 1}: {rate:8.1f} updates/s, "
                f"round trip median {statistics.median(trips):.1f} ms",
                file=sys.stderr,
            )

    backend = backend_name(args.database_url) if args.database_url else "sqlite"
    p95 = statistics.quantiles(latencies, n=20)[-1]
    figures = {
        "backend": backend,
        "users": args.users,
        "updates_per_s": round(statistics.median(rates), 1),
        "roundtrip_ms_median": round(statistics.median(latencies), 2),
        "roundtrip_ms_p95": round(p95, 2),
        "repeats": args.repeats,
    }
    print(f"\nThe real bot against the emulator ({backend}, flood limits off)")
    print(f"{'figure':<34}{'value':>12}")
    print(f"{'burst of /start, updates/s':<34}{figures['updates_per_s']:>12}")
    print(f"{'round trip /start → greeting, ms':<34}{figures['roundtrip_ms_median']:>12}")
    print(f"{'round trip p95, ms':<34}{figures['roundtrip_ms_p95']:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
