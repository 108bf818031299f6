"""Each update is handled once, however often Telegram delivers it.

Telegram posts a webhook update again when it did not get a 2xx answer in time, and a restarted
poller can be served an update it had already handled. Handling is idempotent where it must be,
but a second delivery would still send a second reply. `OncePerUpdate` is the dispatcher's
outermost update middleware after the in-flight counter: it *claims* each update id in a
`SeenUpdates` store before the update is handled, drops the update if the id was claimed
before, and gives the claim back if handling fails, so that Telegram's next delivery is handled.

The store is behind a two-call protocol so that several workers behind one load balancer can
share it: `MemorySeenUpdates` (this process, the last N ids) now; a Redis one with
``SET key 1 NX EX ttl`` per claim and ``DEL`` per release fits the same calls. A process that
crashes mid-update leaves its claim taken in a shared store until the key expires; in this
process's memory the claim dies with it and the redelivery is handled (handling is idempotent).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

__all__ = ["MemorySeenUpdates", "OncePerUpdate", "SeenUpdates", "UpdateStats"]

log = logging.getLogger(__name__)


class SeenUpdates(Protocol):
    """Where claimed update ids live. Each call is atomic, so one store can serve many workers."""

    async def claim(self, update_id: int) -> bool:
        """True if nobody claimed this update id before (it is now claimed); False if they did."""
        ...

    async def release(self, update_id: int) -> None:
        """Give a claim back (its handling failed): the next delivery is handled."""
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

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class UpdateStats:
    """What happened to the updates received, for /metrics."""

    handled: int = 0
    #: Delivered again after a first delivery was claimed: dropped.
    duplicates: int = 0
    #: A handler raised; the claim was given back.
    failed: int = 0


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
        if not await self.seen.claim(update_id):
            self.stats.duplicates += 1
            log.info("Update %d was delivered again; it is handled once already", update_id)
            return None
        try:
            result = await handler(event, data)
        except BaseException:
            self.stats.failed += 1
            await self.seen.release(update_id)
            raise
        self.stats.handled += 1
        return result
