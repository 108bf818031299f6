"""Webhook delivery: POST each pending update to the bot's URL, as Telegram does.

While a webhook is set, a task per bot posts pending updates one at a time, oldest first, as
JSON with the ``X-Telegram-Bot-Api-Secret-Token`` header when a secret was given. A 2xx answer
confirms the update; anything else (an error status, a refused connection, no answer within
``timeout`` seconds) keeps it pending, is reported by getWebhookInfo's ``last_error_*`` and is
retried after a pause that doubles from ``retry_delay`` up to ``max_delay`` (Telegram's pauses
are longer; tests want them short). Updates chosen by ``faults.duplicate_updates`` are posted
twice. Telegram lets the bot answer a webhook with a method call in the response body
(``{"method": "sendMessage", …}``); that call is performed and recorded with
``via="webhook-reply"``.

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
        while bot.webhook is not None and not self._stopping:
            if not bot.updates:
                await bot.signal.wait(1.0)
                continue
            update = bot.updates[0]
            error = await self._post(bot, update)
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
            await bot.signal.wait(delay)
            delay = min(delay * 2, self.max_delay)
        self._tasks.pop(bot.id, None)

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
