"""Each update is handled once, however often Telegram delivers it.

Telegram posts a webhook update again when it did not get a 2xx answer in time, and a restarted
poller can be served an update it had already handled. Handling is idempotent where it must be,
but a second delivery would still send a second reply. `OncePerUpdate` is the dispatcher's
outermost update middleware after the in-flight counter: it *claims* each update id in a
`SeenUpdates` store before the update is handled, drops the update if the id was claimed
before, and gives the claim back if handling fails, so that Telegram's next delivery is handled.

The store is behind a small protocol so that several workers behind one load balancer can
share it: `MemorySeenUpdates` keeps the last DEDUPE_WINDOW ids of this process; with REDIS_URL,
`RedisSeenUpdates` claims with ``SET key 1 NX EX ttl`` and releases with ``DEL``, one atomic
round trip each, for all workers. A process that crashes mid-update leaves its claim in Redis
until the key expires (a day: Telegram keeps an update no longer), so that one update is lost
rather than handled twice; in this process's memory the claim dies with the process and the
redelivery is handled. If the store cannot be reached the update is handled anyway: a reply sent
twice is better than one never sent.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.redis_client import bot_id, connect

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.settings import Settings

__all__ = [
    "MemorySeenUpdates",
    "OncePerUpdate",
    "RedisSeenUpdates",
    "SeenUpdates",
    "UpdateStats",
    "seen_updates_from_settings",
]

log = logging.getLogger(__name__)


class SeenUpdates(Protocol):
    """Where claimed update ids live. Each call is atomic, so one store can serve many workers."""

    async def claim(self, update_id: int) -> bool:
        """True if nobody claimed this update id before (it is now claimed); False if they did."""
        ...

    async def release(self, update_id: int) -> None:
        """Give a claim back (its handling failed): the next delivery is handled."""
        ...

    async def close(self) -> None:
        """Let go of connections; called once, on shutdown."""
        ...


class MemorySeenUpdates:
    """The last ``window`` claimed update ids of one bot, in this process.

    Telegram numbers updates in sequence and redelivers within minutes, so the most recent ids
    are the ones that can come again; the oldest are forgotten first and memory stays flat.
    """

    def __init__(self, window: int = 10_000) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._ids: OrderedDict[int, None] = OrderedDict()

    async def claim(self, update_id: int) -> bool:
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        if len(self._ids) > self.window:
            self._ids.popitem(last=False)
        return True

    async def release(self, update_id: int) -> None:
        self._ids.pop(update_id, None)

    async def close(self) -> None:
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)


class RedisSeenUpdates:
    """Claimed update ids of one bot in Redis, shared by every worker that uses the same
    server. Keys are ``<prefix><update_id>`` and expire after ``ttl``."""

    def __init__(self, client: Redis, *, prefix: str, ttl: timedelta = timedelta(days=1)) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    @classmethod
    def from_url(cls, url: str, bot_id: int | str, **kwargs: Any) -> RedisSeenUpdates:
        # Short timeouts (`bot.redis_client`): a claim sits in front of every update; a Redis
        # that does not answer soon is treated as down (and the update handled anyway).
        return cls(connect(url), prefix=f"hearback:update:{bot_id}:", **kwargs)

    async def claim(self, update_id: int) -> bool:
        return bool(await self.client.set(f"{self.prefix}{update_id}", b"1", nx=True, ex=self.ttl))

    async def release(self, update_id: int) -> None:
        await self.client.delete(f"{self.prefix}{update_id}")

    async def close(self) -> None:
        await self.client.aclose()


def seen_updates_from_settings(settings: Settings, token: str) -> SeenUpdates:
    """REDIS_URL's shared store when set, else this process's last DEDUPE_WINDOW ids."""
    if settings.redis_url:
        return RedisSeenUpdates.from_url(settings.redis_url, bot_id(token))
    return MemorySeenUpdates(settings.dedupe_window)


@dataclass
class UpdateStats:
    """What happened to the updates received, for /metrics."""

    handled: int = 0
    #: Delivered again after a first delivery was claimed: dropped.
    duplicates: int = 0
    #: A handler raised; the claim was given back.
    failed: int = 0
    #: The store could not be asked; the update was handled without the check.
    store_errors: int = 0
    #: Seconds from claiming to finishing, summed over handled and failed updates: the wait
    #: behind the chat's earlier updates included, i.e. what the customer waits.
    seconds: float = 0.0


class OncePerUpdate(BaseMiddleware):
    """Drops an update whose id was already claimed; counts what it lets through."""

    def __init__(self, seen: SeenUpdates) -> None:
        self.seen = seen
        self.stats = UpdateStats()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        update_id = event.update_id
        try:
            first = await self.seen.claim(update_id)
        except Exception as error:
            self.stats.store_errors += 1
            log.warning(
                "Could not check update %d for a repeat (%s); handling it", update_id, error
            )
            first = True
        if not first:
            self.stats.duplicates += 1
            log.info("Update %d was delivered again; it is handled once already", update_id)
            return None
        started = time.perf_counter()
        try:
            result = await handler(event, data)
        except BaseException:
            self.stats.seconds += time.perf_counter() - started
            self.stats.failed += 1
            try:
                await self.seen.release(update_id)
            except Exception as error:
                log.warning(
                    "Could not give back the claim on update %d (%s)",
                    update_id,
                    type(error).__name__,
                )
            raise
        self.stats.seconds += time.perf_counter() - started
        self.stats.handled += 1
        return result
