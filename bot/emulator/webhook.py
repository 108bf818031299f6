"""Webhook delivery: POST each pending update to the bot's URL, as Telegram does.

While a webhook is set, a task per bot posts pending updates, oldest first, as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header when a secret was given. Like Telegram it keeps up to
the webhook's ``max_connections`` (setWebhook, default 40) posts in flight at once, so several
workers behind one URL are all fed; one chat's updates still go one at a time and in order (an
update waits while an earlier one of its chat is pending), which is what a bot relies on. A 2xx
answer confirms the update; anything else (an error status, a refused connection, no answer
within ``timeout`` seconds) keeps it pending, is reported by getWebhookInfo's ``last_error_*``
and holds new posts for a pause that doubles from ``retry_delay`` up to ``max_delay``
(Telegram's pauses are longer; tests want them short). Updates chosen by
``faults.duplicate_updates`` are posted twice. Telegram lets the bot answer a webhook with a
method call in the response body (``{"method": "sendMessage", …}``); that call is performed and
recorded with ``via="webhook-reply"``.

Delivery goes to loopback addresses only (setWebhook refuses others): the emulator is a test
tool and must never send traffic off the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from bot.emulator.emulator import Emulator
    from bot.emulator.world import BotAccount


class WebhookDelivery:
    """One delivery task per bot with a webhook, started and stopped with the emulator."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        retry_delay: float = 0.05,
        max_delay: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        self._emu = emulator
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        # No keep-alive: an idle connection held by the emulator would make the bot's own web
        # server wait for it when it shuts down.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        for bot in self._emu.world.bots.values():
            self.changed(bot)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def changed(self, bot: BotAccount) -> None:
        """The bot's webhook was set or deleted: start or stop its delivery task."""
        if self._session is None:
            return  # not running yet; start() picks the bot up
        task = self._tasks.get(bot.id)
        if bot.webhook is not None and (task is None or task.done()):
            self._tasks[bot.id] = asyncio.get_running_loop().create_task(
                self._run(bot), name=f"webhook-{bot.id}"
            )

    async def _run(self, bot: BotAccount) -> None:
        delay = self.retry_delay
        held_until = 0.0  # after a failed post, no new post starts before this (loop time)
        loop = asyncio.get_running_loop()
        posting: dict[asyncio.Task[str | None], dict[str, Any]] = {}
        try:
            while bot.webhook is not None and not self._stopping:
                if loop.time() >= held_until:
                    self._start_posts(bot, posting)
                woken = asyncio.ensure_future(bot.signal.wait(1.0))
                try:
                    await asyncio.wait(
                        [*posting, woken],
                        timeout=max(0.0, held_until - loop.time()) or None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    woken.cancel()
                for task in [t for t in posting if t.done()]:
                    update = posting.pop(task)
                    error = task.result()
                    if error is None:
                        delay = self.retry_delay
                        update_id = update["update_id"]
                        if update_id in bot.duplicates:
                            bot.duplicates.discard(update_id)
                        else:
                            bot.updates = [u for u in bot.updates if u["update_id"] != update_id]
                        continue
                    bot.webhook_error = (self._emu.world.date(), error)
                    self._emu.stats.webhook_failures += 1
                    held_until = loop.time() + delay
                    delay = min(delay * 2, self.max_delay)
        finally:
            for task in posting:
                task.cancel()
            self._tasks.pop(bot.id, None)

    def _start_posts(
        self, bot: BotAccount, posting: dict[asyncio.Task[str | None], dict[str, Any]]
    ) -> None:
        """Start posting the oldest pending updates, up to ``max_connections`` in flight, none
        of a chat that has an earlier update still pending."""
        assert bot.webhook is not None
        limit = max(1, int(bot.webhook.get("max_connections") or 40))
        in_flight = {id(update) for update in posting.values()}
        waiting: set[object] = set()  # chats with an earlier update pending or in flight
        for update in bot.updates:
            if len(posting) >= limit:
                return
            chat = _chat_of(update)
            if id(update) not in in_flight and (chat is None or chat not in waiting):
                task = asyncio.ensure_future(self._post(bot, update))
                posting[task] = update
            if chat is not None:
                waiting.add(chat)

    async def _post(self, bot: BotAccount, update: dict[str, Any]) -> str | None:
        """Post one update; None on success, else Telegram-style error text."""
        assert self._session is not None and bot.webhook is not None
        headers = {"Content-Type": "application/json"}
        if bot.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook["secret_token"]
        try:
            async with self._session.post(
                bot.webhook["url"],
                data=json.dumps(update, ensure_ascii=False).encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                body = await response.read()
                if not 200 <= response.status < 300:
                    return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"
        self._emu.stats.webhook_deliveries += 1
        await self._answer_in_response(bot, body)
        return None

    async def _answer_in_response(self, bot: BotAccount, body: bytes) -> None:
        """Perform a method call the bot put in its webhook response, if any."""
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return
        if isinstance(payload, dict) and isinstance(payload.get("method"), str):
            params = {k: v for k, v in payload.items() if k != "method"}
            await self._emu.handle(bot.token, payload["method"], params, via="webhook-reply")


def _chat_of(update: dict[str, Any]) -> object:
    """The chat (or, failing one, the person) an update is about: its updates keep their order.
    None for the rare kinds about neither, which need no order."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        for holder in (value, value.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                return ("chat", holder["chat"].get("id"))
        for field in ("from", "user"):
            if isinstance(value.get(field), dict):
                return ("user", value[field].get("id"))
    return None
