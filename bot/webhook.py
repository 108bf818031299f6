"""Webhook mode: Telegram posts each update to the bot's own HTTP server instead of being polled.

`WebhookReceiver` answers POSTs on WEBHOOK_URL's path, beside /healthz, /metrics and the API. A
post must carry WEBHOOK_SECRET in ``X-Telegram-Bot-Api-Secret-Token`` (401 otherwise, and nothing
happens). An accepted update is answered 200 at once and handled as its own task through the
dispatcher's `feed_update`, exactly as aiogram's poller hands updates over, so the project's
middlewares (in-flight counting, one-per-update, one-per-chat, locales, flood guard) and the rate
limiter see the same thing in both modes. Tasks start in the order the posts arrived, which is
what keeps each chat's updates in order (`bot.app.OnePerChat`).

Stopping loses nothing: `close` makes later posts get 503, which Telegram keeps and posts again
(to this process after a restart, or to another worker), and `drain` waits for the tasks of the
updates already accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

__all__ = ["SECRET_HEADER", "WebhookReceiver", "WebhookRefused", "WebhookStats", "default_secret"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookRefused(Exception):
    """Telegram would not take WEBHOOK_URL (setWebhook failed); says why, for the operator."""


def default_secret(token: str) -> str:
    """The secret when WEBHOOK_SECRET is empty: derived from the bot token, so every worker of
    the bot computes the same one and nobody without the token can guess it. Hex digits are
    within Telegram's allowed characters."""
    return hmac.new(token.encode(), b"hearback webhook secret", hashlib.sha256).hexdigest()


@dataclass
class WebhookStats:
    """Webhook posts by outcome, for /metrics."""

    accepted: int = 0
    unauthorized: int = 0
    bad_request: int = 0
    #: Refused while stopping (Telegram posts them again).
    unavailable: int = 0


class WebhookReceiver:
    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret")
        self.dispatcher = dispatcher
        self.bot = bot
        self.secret = secret
        self._secret = secret.encode()
        self.stats = WebhookStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def install(self, app: web.Application, path: str) -> None:
        app.router.add_post(path, self.handle)

    @property
    def pending(self) -> int:
        """Accepted updates whose handling has not finished."""
        return len(self._tasks)

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        # Constant time: the answer must not tell how much of a guess was right.
        if not hmac.compare_digest(given, self._secret):
            self.stats.unauthorized += 1
            log.warning("A webhook post came without the right secret; refused with 401")
            return web.json_response({"error": "unauthorized"}, status=401)
        if self._closed:
            self.stats.unavailable += 1
            return web.json_response(
                {"error": "stopping; post this update again later"}, status=503
            )
        try:
            data = json.loads(await request.read())
            update = Update.model_validate(data, context={"bot": self.bot})
        except (ValueError, ValidationError):  # json's and pydantic's errors both
            self.stats.bad_request += 1
            log.warning("A webhook post was not a Telegram update; refused with 400")
            return web.json_response({"error": "not a Telegram update"}, status=400)
        self.stats.accepted += 1
        task = asyncio.create_task(self._feed(update), name=f"update-{update.update_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({})

    async def _feed(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:
            # As aiogram's poller does: the failure is logged and the next update goes on.
            log.exception("Update %d failed", update.update_id)

    def close(self) -> None:
        """From now on answer 503: Telegram keeps such updates and posts them again later."""
        self._closed = True

    async def drain(self, grace: float) -> bool:
        """Wait for the accepted updates to be handled; False if ``grace`` seconds ran out."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        return not pending
