"""Three workers of one bot, sending at once, stay within Telegram's limits through one budget.

Three real Applications (webhook mode, so they do not fight over getUpdates) each send to 80
customers as fast as their limiter lets them, through the emulator over HTTP with Telegram's
flood limits on (30 at once, then 30/s per bot). With REDIS_URL they share one send budget in a
real redis-server: the emulator answers no 429 and the bot as a whole sends at about 29.5/s.
Each on its own budget, the same three would send three times that, and Telegram says so.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from bot.app import Application
from bot.emulator import BotAccount, Emulator, SimUser
from bot.ratelimit import MemoryBudget, RedisBudget, SendLimits
from tests.e2e.conftest import e2e_settings, running
from tests.net import free_port

WORKERS = 3
MESSAGES = 240


async def other_clients(url: str) -> int:
    """Connections to Redis other than the one asking."""
    client = Redis.from_url(url)
    try:
        return len(await client.client_list()) - 1
    finally:
        await client.aclose()


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "each-its-own"])
async def test_three_workers_sending_at_once_stay_within_the_bots_limit(
    database_url: str,
    emulator: Emulator,
    telegram_bot: BotAccount,
    redis_url: str,
    shared: bool,
) -> None:
    people: list[SimUser] = []
    for n in range(MESSAGES):
        person = emulator.add_user(first_name=f"Customer{n}")
        person.started.add(telegram_bot.id)  # pressed Start before: the bot may write
        people.append(person)

    async with AsyncExitStack() as stack:
        workers: list[Application] = []
        for _ in range(WORKERS):
            port = free_port()
            settings = e2e_settings(
                database_url,
                http_port=port,
                webhook_url=f"http://127.0.0.1:{port}/telegram",
                redis_url=redis_url if shared else "",
            )
            app = Application(
                settings, token=telegram_bot.token, api_url=emulator.url, webhook=True
            )
            workers.append(await stack.enter_async_context(running(app)))
        budget = RedisBudget if shared else MemoryBudget
        assert all(isinstance(w.limiter.budget, budget) for w in workers)

        started = time.monotonic()
        await asyncio.gather(
            *(
                workers[n % WORKERS].bot.send_message(
                    person.id, f"How was it, {person.first_name}?"
                )
                for n, person in enumerate(people)
            )
        )
        elapsed = time.monotonic() - started
        sent = [w.limiter.stats.sent for w in workers]
        refused = sum(w.limiter.stats.too_many_requests for w in workers)
        if shared:
            assert await other_clients(redis_url) > 0  # the workers are connected...
    if shared:
        assert await other_clients(redis_url) == 0  # ...and every connection closed on stop

    # Nothing lost either way: each customer has their one message.
    assert all(len(person.inbox(telegram_bot)) == 1 for person in people)
    assert sent == [MESSAGES // WORKERS] * WORKERS
    times = sorted(c.time for c in emulator.calls_to("sendMessage", ok=True))
    burst = SendLimits().burst
    rate = (len(times) - burst) / (times[-1] - times[burst - 1])
    print(
        f"\n{'shared' if shared else 'separate'} budgets: {rate:.1f} messages/s accepted, "
        f"{emulator.stats.too_many_requests} answered 429, {elapsed:.1f}s in all"
    )
    if shared:
        assert emulator.stats.too_many_requests == 0
        assert refused == 0
        # The whole bot kept to the limit and used it: about 29.5/s (transit jitter can shorten
        # the measured span a little, as with one worker).
        assert 0.9 * 29.5 <= rate <= 1.03 * 30
    else:
        # What REDIS_URL is for: each worker kept to the limit, the three together did not.
        assert emulator.stats.too_many_requests > 0
        assert refused == emulator.stats.too_many_requests
