"""A customer who sends many messages in a row is slowed down, and loses nothing.

Every message is still handled and recorded (it may be the answer); what a flood loses is the
bot's small talk: past `limit` messages in `window` seconds, handlers leave out their thanks and
hints (`data["flooding"]`), and the customer reads one "I have every one of your messages" note
per flood (`data["flood_notice"]`). Questions that move the conversation on are still asked.
Without this, 30 messages in 10 s would bring 30 replies, which Telegram's one-message-a-second
limit per chat would stretch over half a minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

__all__ = ["FloodGuard"]


class FloodGuard(BaseMiddleware):
    def __init__(
        self,
        limit: int = 6,
        window: float = 10.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._recent: dict[int, deque[float]] = {}
        self._noticed: dict[int, float] = {}
        self._swept = float("-inf")

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        if not isinstance(event, Message) or user is None:
            return await handler(event, data)
        now = self._monotonic()
        recent = self._recent.setdefault(user.id, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        recent.append(now)
        flooding = len(recent) > self.limit
        data["flooding"] = flooding
        data["flood_notice"] = False
        if flooding and self._noticed.get(user.id, -self.window) <= now - self.window:
            self._noticed[user.id] = now
            data["flood_notice"] = True
        try:
            return await handler(event, data)
        finally:
            self._forget_quiet(now)

    def _forget_quiet(self, now: float) -> None:
        # Drop people quiet for a whole window, so the tables do not grow with every customer.
        # At most once a window: with many people writing, a sweep after every message would
        # cost a pass over all of them each time.
        if len(self._recent) < 1024 or now - self._swept < self.window:
            return
        self._swept = now
        for user_id in [u for u, times in self._recent.items() if times[-1] <= now - self.window]:
            del self._recent[user_id]
            self._noticed.pop(user_id, None)
