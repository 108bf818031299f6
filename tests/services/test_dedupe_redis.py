"""The shared dedupe store on a real redis-server: one claim per update across workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from bot.dedupe import OncePerUpdate, RedisSeenUpdates, seen_updates_from_settings
from bot.settings import Settings
from tests.redis_server import redis_server


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[list[RedisSeenUpdates]]:
    """Two workers of the same bot, each with its own connection."""
    made = [RedisSeenUpdates.from_url(redis_url, 123456) for _ in range(2)]
    yield made
    for store in made:
        await store.close()


async def test_an_update_is_claimed_once_across_workers(stores: list[RedisSeenUpdates]) -> None:
    first, second = stores
    assert await first.claim(42)
    assert not await second.claim(42)
    assert not await first.claim(42)
    await first.release(42)  # its handling failed: the next delivery, anywhere, is handled
    assert await second.claim(42)


async def test_claims_expire_and_bots_do_not_share_ids(redis_url: str) -> None:
    ours = RedisSeenUpdates.from_url(redis_url, 111, ttl=timedelta(hours=24))
    theirs = RedisSeenUpdates.from_url(redis_url, 222)
    try:
        assert await ours.claim(7)
        assert await theirs.claim(7)  # another bot's update 7 is another update
        ttl = await ours.client.ttl("hearback:update:111:7")
        assert 23 * 3600 < ttl <= 24 * 3600
    finally:
        await ours.close()
        await theirs.close()


async def test_two_workers_handle_a_redelivered_update_once(
    stores: list[RedisSeenUpdates],
) -> None:
    handled: list[str] = []

    def handler(name: str):
        async def handle(event: Any, data: dict[str, Any]) -> None:
            handled.append(name)

        return handle

    a, b = OncePerUpdate(stores[0]), OncePerUpdate(stores[1])
    await a(handler("a"), Update(update_id=900), {})
    await b(handler("b"), Update(update_id=900), {})
    assert handled == ["a"]
    assert (a.stats.handled, b.stats.duplicates) == (1, 1)


async def test_with_redis_down_updates_are_handled_anyway(tmp_path: Path) -> None:
    async with redis_server(tmp_path) as url:
        pass  # started and stopped: nothing listens there now
    once = OncePerUpdate(RedisSeenUpdates.from_url(url, 1))
    handled: list[int] = []

    async def handle(event: Any, data: dict[str, Any]) -> None:
        handled.append(event.update_id)

    try:
        await once(handle, Update(update_id=1), {})
    finally:
        await once.seen.close()
    assert handled == [1]
    assert once.stats.store_errors == 1


def test_redis_url_chooses_the_shared_store(redis_url: str) -> None:
    settings = Settings(_env_file=None, redis_url=redis_url)
    store = seen_updates_from_settings(settings, "123456:ABC")
    assert isinstance(store, RedisSeenUpdates)
    assert store.prefix == "hearback:update:123456:"
