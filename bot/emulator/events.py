"""What happened in the chats, in order: the feed the sandbox page and live watchers follow.

Every message that appears in a chat (from the bot or a person), every edit, every deletion and
every answer to a tapped button becomes one event with a sequence number. A watcher remembers
the last number it saw and asks for what came after, so it can rebuild any chat from the events
alone and never misses one between reading and waiting. Events carry a snapshot of the message
as it was then; later edits do not change them.

Event shapes (JSON)::

    {"seq": 7, "type": "message" | "edit" | "delete", "chat_id": …, "bot_id": …,
     "message": {… the Bot API Message …}}
    {"seq": 8, "type": "tap", "chat_id": …, "bot_id": …, "user_id": …, "message_id": …,
     "data": "…", "label": "…"}
    {"seq": 9, "type": "answer", "chat_id": …, "bot_id": …, "user_id": …, "message_id": …,
     "text": "…", "show_alert": false}

A tap is a person pressing an inline button (a callback query to the bot); its answer is the
bot's answerCallbackQuery (``text`` is the little notice Telegram shows, or None).

``bot_id`` says whose private chat it is (a person has one private chat per bot); in groups
it is None. The log keeps the newest ``max_events``; ``dropped`` counts those let go.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.emulator.world import CallbackQuery, Signal, StoredMessage, World


class EventLog:
    def __init__(self, world: World, max_events: int = 10_000) -> None:
        self.events: list[dict[str, Any]] = []
        self.dropped = 0
        self.max_events = max_events
        self.signal = Signal()
        self._next = 1
        world.message_watchers.append(self._message)
        world.query_watchers.append(self._query)

    @property
    def last(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        return self._next - 1

    def since(self, seq: int, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Events after ``seq``, oldest first; only ``chat_id``'s when given."""
        # Sequence numbers are dense, so the first wanted event's index is arithmetic.
        first = self.events[0]["seq"] if self.events else self._next
        start = max(0, seq + 1 - first)
        found = self.events[start:]
        if chat_id is not None:
            found = [event for event in found if event["chat_id"] == chat_id]
        return found

    async def wait(
        self,
        seq: int,
        chat_id: int | None = None,
        seconds: float = 0.0,
        stopping: asyncio.Event | None = None,
    ) -> list[dict[str, Any]]:
        """Events after ``seq``; when there are none yet, wait up to ``seconds`` for some."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            found = self.since(seq, chat_id)
            left = deadline - loop.time()
            if found or left <= 0 or (stopping is not None and stopping.is_set()):
                return found
            # Short waits, so a stopping server is noticed within a second.
            await self.signal.wait(min(left, 1.0))

    def _add(self, event: dict[str, Any]) -> None:
        event["seq"] = self._next
        self._next += 1
        self.events.append(event)
        if len(self.events) > self.max_events + self.max_events // 10:
            excess = len(self.events) - self.max_events
            del self.events[:excess]
            self.dropped += excess
        self.signal.fire()

    def _message(self, kind: str, message: StoredMessage) -> None:
        chat = message.chat
        self._add(
            {
                "type": kind,
                "chat_id": chat.id,
                "bot_id": chat.bot.id if chat.is_private and chat.bot else None,
                # A snapshot, shallow on purpose: edits replace a message's top-level values
                # and never change the objects inside them (StoredMessage.history relies on
                # the same), and a deep copy would cost ~50× more on every message.
                "message": dict(message.data),
            }
        )

    def _query(self, query: CallbackQuery) -> None:
        chat = query.message.chat
        event: dict[str, Any] = {
            "type": "answer" if query.answered else "tap",
            "chat_id": chat.id,
            "bot_id": chat.bot.id if chat.is_private and chat.bot else None,
            "user_id": query.user.id,
            "message_id": query.message.message_id,
        }
        if query.answered:
            answer = query.answer or {}
            event["text"] = answer.get("text")
            event["show_alert"] = bool(answer.get("show_alert"))
        else:
            event["data"] = query.data
            event["label"] = query.label
        self._add(event)
