"""The send budget shared through a real redis-server, against the one in memory.

The first tests run on both implementations and expect the same answers. Redis keeps its own
clock (the server's), so these run on real time with small tolerances, on buckets fast enough
to keep them short. The rest are about sharing: several clients (as several workers would be)
taking from one bucket, one pause for all, keys that expire, and what happens when Redis goes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.ratelimit import (
    Bucket,
    Budget,
    MemoryBudget,
    RateLimiter,
    RedisBudget,
    budget_from_settings,
)
from bot.settings import Settings
from tests.redis_server import redis_server

BOT_ID = 123456
# How far a wait may differ from the exact one: real time passes between calls and round trips.
SLACK = 0.03


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Callable[..., RedisBudget]]:
    """Makes RedisBudgets of one bot, each with a client of its own, as workers would have."""
    made: list[RedisBudget] = []

    def make(**kwargs: object) -> RedisBudget:
        kwargs.setdefault("jitter", lambda: 0.0)
        budget = RedisBudget.from_url(redis_url, BOT_ID, **kwargs)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        await budget.close()


@pytest.fixture(params=["memory", "redis"])
def budget(request: pytest.FixtureRequest, workers: Callable[..., RedisBudget]) -> Budget:
    return MemoryBudget() if request.param == "memory" else workers()


@pytest.fixture
async def server(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client to look at what the budget keeps in Redis."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


# ------------------------------------------------------------------- the same in both


async def test_a_bucket_starts_full_and_refills_evenly(budget: Budget) -> None:
    chat = Bucket("chat:1", capacity=3, per_second=10.0)
    assert [await budget.take([chat]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await budget.take([chat]) == pytest.approx(0.1, abs=SLACK)
    await asyncio.sleep(0.04)
    assert await budget.available_in([chat]) == pytest.approx(0.06, abs=SLACK)
    await asyncio.sleep(await budget.available_in([chat]))
    assert await budget.take([chat]) == 0.0
    await asyncio.sleep(1.0)  # ten tokens' time: never more than the capacity
    assert [await budget.take([chat]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await budget.take([chat]) > 0.05


async def test_taking_is_all_or_nothing(budget: Budget) -> None:
    empty = Bucket("empty", capacity=1, per_second=0.5)
    full = Bucket("full", capacity=5, per_second=0.1)
    assert await budget.take([empty]) == 0.0
    assert await budget.take([empty, full]) == pytest.approx(2.0, abs=SLACK)
    # Nothing was taken from the bucket that had tokens: all five are there.
    assert [await budget.take([full]) for _ in range(5)] == [0.0] * 5
    assert await budget.take([full]) > 9


async def test_a_pause_holds_every_bucket_and_only_grows(budget: Budget) -> None:
    fresh = Bucket("fresh", capacity=30, per_second=30)
    await budget.pause(0.3)
    assert await budget.take([fresh]) == pytest.approx(0.3, abs=SLACK)
    await budget.pause(0.1)  # a shorter pause does not cut the longer one short
    assert await budget.available_in([fresh]) == pytest.approx(0.3, abs=SLACK)
    assert await budget.available_in([]) == pytest.approx(0.3, abs=SLACK)
    await asyncio.sleep(0.31)
    assert await budget.take([fresh]) == 0.0


async def test_looking_takes_nothing(budget: Budget) -> None:
    chat = Bucket("chat:2", capacity=1, per_second=1.0)
    assert [await budget.available_in([chat]) for _ in range(3)] == [0.0] * 3
    assert await budget.take([chat]) == 0.0
    assert await budget.available_in([chat]) == pytest.approx(1.0, abs=SLACK)


# ------------------------------------------------------------------- shared by workers


OVERALL = Bucket("overall", capacity=30, per_second=30.0)


async def for_seconds(seconds: float, work: Callable[[], Awaitable[None]], tasks: int) -> float:
    """Run ``tasks`` copies of ``work`` in a loop for ``seconds``; the seconds it took."""
    started = time.monotonic()

    async def loop() -> None:
        while time.monotonic() - started < seconds:
            await work()

    await asyncio.gather(*(loop() for _ in range(tasks)))
    return time.monotonic() - started


async def test_workers_hammering_one_bucket_take_no_more_than_it_gives(workers) -> None:
    """Atomic: three clients, three tasks each, asking as fast as Redis answers."""
    clients = [workers() for _ in range(3)]
    taken = [0, 0, 0]
    asked = [0]

    def hammer(n: int) -> Callable[[], Awaitable[None]]:
        async def once() -> None:
            asked[0] += 1
            if await clients[n].take([OVERALL]) == 0:
                taken[n] += 1

        return once

    results = await asyncio.gather(*(for_seconds(2.0, hammer(n), tasks=3) for n in range(3)))
    elapsed = max(results)
    allowed = OVERALL.capacity + OVERALL.per_second * elapsed
    print(f"\n{sum(taken)} taken of {asked[0]} asks in {elapsed:.2f}s (allowed {allowed:.0f})")
    assert asked[0] > 10 * allowed  # it was a contest
    assert sum(taken) <= allowed
    assert sum(taken) >= 0.9 * allowed  # and the budget was used, not starved


async def test_workers_waiting_their_turn_share_the_budget_and_do_not_spin(workers) -> None:
    """As the limiter uses it: ask, and if refused sleep for the wait given. Each worker gets
    a fair part of the budget, and the asks stay close to the takes."""
    clients = [workers(jitter=random.random) for _ in range(3)]
    taken = [0, 0, 0]
    asked = [0, 0, 0]

    def politely(n: int) -> Callable[[], Awaitable[None]]:
        async def once() -> None:
            asked[n] += 1
            wait = await clients[n].take([OVERALL])
            if wait == 0:
                taken[n] += 1
            else:
                await asyncio.sleep(wait)

        return once

    results = await asyncio.gather(*(for_seconds(3.0, politely(n), tasks=1) for n in range(3)))
    elapsed = max(results)
    print(f"\ntaken {taken}, asked {asked} in {elapsed:.2f}s")
    assert sum(taken) <= OVERALL.capacity + OVERALL.per_second * elapsed
    assert sum(taken) >= 0.9 * OVERALL.per_second * elapsed
    assert min(taken) >= 0.2 * sum(taken)  # nobody starves
    # A refused ask sleeps until the next token may be there: each worker asks about once per
    # token the bucket gives (a spinning one would ask thousands of times).
    assert max(asked) <= 1.5 * sum(taken)


async def test_a_pause_holds_every_worker(workers) -> None:
    one, other = workers(), workers()
    await one.pause(0.5)
    assert await other.take([OVERALL]) == pytest.approx(0.5, abs=SLACK)
    await other.pause(0.2)  # never shortened by another worker either
    assert await one.available_in([OVERALL]) == pytest.approx(0.5, abs=SLACK)


async def test_buckets_are_gone_from_redis_once_full_again(workers, server: Redis) -> None:
    budget = workers()
    customers = [Bucket(f"chat:{n}", capacity=1, per_second=5.0) for n in range(100)]
    for chat in customers:
        assert await budget.take([chat]) == 0.0
    await budget.pause(0.1)
    chats = [budget.key(chat) for chat in customers]
    assert await server.exists(*chats) == 100
    assert 0 < await server.pttl(chats[0]) <= 201  # a fifth of a second to refill
    await asyncio.sleep(1.2)
    # Every customer's bucket and the pause are gone; the overall one refills by then too.
    assert await server.keys("hearback:budget:*") == [b"hearback:budget:{123456}:workers"]
    # And a bucket that expired is a full one.
    assert await budget.take([customers[0]]) == 0.0


async def test_two_bots_on_one_redis_do_not_share_a_budget(redis_url: str) -> None:
    ours = RedisBudget.from_url(redis_url, 111)
    theirs = RedisBudget.from_url(redis_url, 222)
    try:
        chat = Bucket("chat:9", capacity=1, per_second=0.1)
        await ours.pause(5)
        assert await ours.take([chat]) > 4
        assert await theirs.take([chat]) == 0.0
        assert await theirs.take([chat]) > 9
    finally:
        await ours.close()
        await theirs.close()


async def test_each_worker_learns_how_many_share_the_budget(workers) -> None:
    clients = [workers() for _ in range(3)]
    for client in clients:
        await client.take([Bucket("chat:1", 100, 100)])
    assert [client.workers for client in clients] == [1, 2, 3]
    await clients[0].take([])
    assert clients[0].workers == 3


# ------------------------------------------------------------------- Redis goes away


async def test_without_redis_a_worker_sends_at_its_share_and_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.ratelimit")
    async with redis_server(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        budget = RedisBudget.from_url(url, BOT_ID, probe=0.3, jitter=lambda: 0.0)
        others = [RedisBudget.from_url(url, BOT_ID) for _ in range(2)]
        for worker in [*others, budget]:
            await worker.take([OVERALL])
        for other in others:
            await other.close()
        assert budget.workers == 3
    try:
        # Redis is gone: no error reaches the sender, and this worker keeps to a third of the
        # overall bucket (10 at once, 10/s) on its own.
        taken = [await budget.take([OVERALL]) for _ in range(20)]
        assert taken[:10] == [0.0] * 10
        assert taken[10] == pytest.approx(0.1, abs=SLACK)
        await budget.pause(0.2)
        assert await budget.available_in([OVERALL]) == pytest.approx(0.2, abs=SLACK)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, "one warning per outage, not one per send"
        assert "1/3" in warnings[0].getMessage()

        async with redis_server(tmp_path, port=port) as again:
            assert again == url
            for _ in range(100):  # the background probe finds it within its period
                await budget.available_in([])
                if budget.fallback is None:
                    break
                await asyncio.sleep(0.05)
            assert budget.fallback is None
            assert await budget.take([OVERALL]) == 0.0
            server = Redis.from_url(again)
            try:
                assert await server.exists(budget.key(OVERALL)) == 1  # the shared one again
            finally:
                await server.aclose()
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        await budget.close()


async def test_never_reached_redis_means_each_worker_on_its_own(tmp_path: Path) -> None:
    async with redis_server(tmp_path) as url:
        pass  # stopped: nobody listens there now
    budget = RedisBudget.from_url(url, BOT_ID, jitter=lambda: 0.0)
    try:
        chat = Bucket("chat:1", capacity=1, per_second=1.0)
        assert await budget.take([chat, OVERALL]) == 0.0
        assert await budget.take([chat, OVERALL]) == pytest.approx(1.0, abs=SLACK)
        assert budget.fallback is not None and budget.workers == 1
    finally:
        await budget.close()


# ------------------------------------------------------------------- wiring


async def test_redis_url_chooses_the_shared_budget(redis_url: str) -> None:
    shared = Settings(_env_file=None, redis_url=redis_url)
    limiter = RateLimiter.from_settings(shared, "777:SECRET")
    assert isinstance(limiter.budget, RedisBudget)
    assert limiter.budget.prefix == "hearback:budget:{777}:"  # the bot's id, not its token
    await limiter.close()
    alone = Settings(_env_file=None)
    assert isinstance(budget_from_settings(alone, "777:SECRET"), MemoryBudget)
    assert isinstance(RateLimiter.from_settings(shared).budget, MemoryBudget)  # no bot, no key
