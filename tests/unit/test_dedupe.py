"""Each update is handled once: the in-process store of claimed update ids and the middleware."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update

from bot.dedupe import MemorySeenUpdates, OncePerUpdate


async def test_a_claim_succeeds_once_and_a_released_claim_can_be_made_again() -> None:
    seen = MemorySeenUpdates()
    assert await seen.claim(10)
    assert not await seen.claim(10)
    await seen.release(10)
    assert await seen.claim(10)


async def test_the_store_keeps_only_the_most_recent_ids() -> None:
    seen = MemorySeenUpdates(window=3)
    for update_id in (1, 2, 3, 4):
        assert await seen.claim(update_id)
    assert len(seen) == 3
    assert not await seen.claim(4)
    assert await seen.claim(1)  # the oldest was forgotten first


async def test_the_middleware_handles_a_second_delivery_not_at_all() -> None:
    once = OncePerUpdate(MemorySeenUpdates())
    handled: list[int] = []

    async def handler(event: Any, data: dict[str, Any]) -> str:
        handled.append(event.update_id)
        return "ok"

    assert await once(handler, Update(update_id=5), {}) == "ok"
    assert await once(handler, Update(update_id=5), {}) is None
    assert await once(handler, Update(update_id=6), {}) == "ok"
    assert handled == [5, 6]
    assert (once.stats.handled, once.stats.duplicates, once.stats.failed) == (2, 1, 0)


async def test_an_update_whose_handling_failed_is_handled_when_it_comes_again() -> None:
    once = OncePerUpdate(MemorySeenUpdates())
    tries = 0

    async def flaky(event: Any, data: dict[str, Any]) -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise RuntimeError("database went away")
        return "ok"

    with pytest.raises(RuntimeError):
        await once(flaky, Update(update_id=7), {})
    assert await once(flaky, Update(update_id=7), {}) == "ok"
    assert (once.stats.handled, once.stats.failed, once.stats.duplicates) == (1, 1, 0)
