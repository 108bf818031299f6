"""The offline sandbox: with no BOT_TOKEN, the real bot runs against the embedded Bot API emulator.

Nothing here is a shortcut around production: the bot is the same `Application`, polling the
emulator over real HTTP exactly as it would poll Telegram. Only the server on the other end
differs. The sandbox adds a cast (customers, a staff member, an admin and a staff forum group,
introduced to the bot through its own commands: /start and /staff_here), settings that let the
whole loop play in minutes, and a page (page.py) where one person plays every part.

- `Sandbox` starts and stops everything as one: emulator, cast, bot, page.
- `run_sandbox` is `hearback run` without a token; `bot.sandbox.demo` is `hearback demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bot.api import VISITS_PATH
from bot.app import Application
from bot.emulator import BotAccount, Emulator, SimChat, SimUser
from bot.settings import DEFAULT_DATABASE_URL, Settings
from bot.values import QuietHours

log = logging.getLogger(__name__)

SANDBOX_BOT_USERNAME = "hearback_sandbox_bot"
#: The sandbox's own database when DATABASE_URL is not set: made afresh at every start, since
#: the emulator's world (people, chats, messages) starts afresh too.
SANDBOX_DATABASE_URL = "sqlite+aiosqlite:///./data/sandbox.db"
SANDBOX_BUSINESS = "Rice Shop"
SANDBOX_LOCATION = "Downtown"

# Values that let the whole loop play in a couple of minutes; each applies only where the
# environment (or .env) leaves the setting unset.
_PLAYABLE: dict[str, Any] = {
    "business_name": SANDBOX_BUSINESS,
    # Surveys at any hour: a newcomer tries it in the evening too.
    "quiet_hours": QuietHours.off(),
    # Several visits of one customer in a row each get their survey.
    "survey_cooldown": timedelta(0),
    "followup_delay": timedelta(seconds=30),
}


def sandbox_settings(settings: Settings) -> Settings:
    """The settings the sandbox runs with: the playable values where the environment sets
    none, an API key when there is none (the page records visits through the real API), and
    the sandbox's own database, made afresh, when DATABASE_URL is not set."""
    given = settings.model_fields_set
    update: dict[str, Any] = {k: v for k, v in _PLAYABLE.items() if k not in given}
    if not settings.api_keys:
        update["api_keys"] = [SecretStr(secrets.token_urlsafe(24))]
    if "database_url" not in given and settings.database_url == DEFAULT_DATABASE_URL:
        update["database_url"] = SANDBOX_DATABASE_URL
        path = Path(SANDBOX_DATABASE_URL.removeprefix("sqlite+aiosqlite:///"))
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    return settings.model_copy(update=update)


# ------------------------------------------------------------------------------------ the cast


@dataclass
class Cast:
    """The people and chats of the sandbox, as the emulator knows them."""

    bot: BotAccount
    customers: list[SimUser]
    staff: list[SimUser]
    admin: SimUser
    group: SimChat

    @classmethod
    def create(cls, emulator: Emulator, bot: BotAccount) -> Cast:
        """The people (made before the bot starts, so the admin's id can go into ADMIN_IDS)."""
        admin = emulator.add_user("Sam", "sam_owner", "en", last_name="Owner")
        customers = [
            emulator.add_user("Anna", "anna_k", "en", last_name="Kovacs"),
            emulator.add_user("王芳", "wangfang", "zh-hans"),
            emulator.add_user("Ben", None, "en", last_name="Okafor"),
        ]
        staff = [emulator.add_user("Maria", "maria_staff", "en")]
        group = emulator.add_group(
            f"{SANDBOX_LOCATION} staff", forum=True, members=staff, creator=admin
        )
        return cls(bot, customers, staff, admin, group)

    async def introduce(self, emulator: Emulator, running: Callable[[], bool]) -> None:
        """Everyone meets the bot the way people do on Telegram: each presses Start, the bot
        is made an administrator of the staff forum (to open a topic per case), and the admin
        sends /staff_here there. Each waits for the bot's answer while ``running()``."""
        bot = self.bot

        async def answered(predicate: Callable[[], Any], who: str) -> None:
            def done() -> Any:
                if not running():
                    raise SandboxStopped(f"the bot stopped before answering {who}")
                return predicate()

            await emulator.wait_for(done, timeout=60, message=f"the bot answering {who}")

        for person in [self.admin, *self.customers]:
            await person.send(bot, "/start")
            await answered(lambda person=person: person.inbox(bot), person.first_name)
        emulator.add_bot_to_chat(bot, self.group, admin=True, can_manage_topics=True)
        await self.admin.send_to_chat(bot, self.group, "/staff_here")
        await answered(
            lambda: [m for m in self.group.messages if m.bot_id == bot.id], "/staff_here"
        )

    def person(self, user_id: int) -> SimUser | None:
        everyone = [self.admin, *self.customers, *self.staff]
        return next((p for p in everyone if p.id == user_id), None)


class SandboxStopped(Exception):
    """The bot stopped (Ctrl-C, most likely) while the sandbox was still starting."""


# --------------------------------------------------------------------------------- the sandbox


class Sandbox:
    """The emulator, the cast, the real bot polling the emulator, and (optionally) the page."""

    def __init__(self, settings: Settings, *, page: bool = True) -> None:
        self.base_settings = settings
        self.with_page = page
        self.emulator = Emulator()
        self.settings = settings
        self.app: Application | None = None
        self.cast: Cast | None = None
        self.page_url = ""
        self._bot_task: asyncio.Task[None] | None = None
        self._page: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.base_settings
        await self.emulator.start(host=settings.http_host, port=settings.emulator_port)
        try:
            account = self.emulator.add_bot(
                username=SANDBOX_BOT_USERNAME, first_name=settings.business_name
            )
            self.cast = Cast.create(self.emulator, account)
            admins = [*settings.admin_ids, self.cast.admin.id]
            self.settings = settings.model_copy(update={"admin_ids": admins})
            self.app = Application(self.settings, token=account.token, api_url=self.emulator.url)
            self._bot_task = asyncio.create_task(self.app.run(), name="sandbox-bot")
            started = asyncio.create_task(self.app.started.wait())
            await asyncio.wait({self._bot_task, started}, return_when=asyncio.FIRST_COMPLETED)
            if not self.app.started.is_set():
                started.cancel()
                await self._bot_task  # the start-up failure, as it is
                raise SandboxStopped("the bot stopped while starting")
            task = self._bot_task
            await self.cast.introduce(self.emulator, lambda: not task.done())
            if self.with_page:
                from bot.sandbox.page import start_page

                self._page, self.page_url = await start_page(self)
        except BaseException:
            await self.stop()
            raise

    async def wait(self) -> None:
        """Until the bot stops (after `stop_bot`, a signal, or a failure)."""
        if self._bot_task is not None:
            await self._bot_task

    def stop_bot(self) -> None:
        if self.app is not None:
            self.app.stop()

    async def stop(self) -> None:
        if self._page is not None:
            await self._page.cleanup()
            self._page = None
        if self._bot_task is not None:
            self.stop_bot()
            with contextlib.suppress(Exception):
                await self._bot_task
            self._bot_task = None
        await self.emulator.stop()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the page and the demo do -------------------------------------------------------

    async def record_visit(
        self, customer: SimUser, *, now: bool, location: str = SANDBOX_LOCATION
    ) -> tuple[int, dict[str, Any]]:
        """Record a visit for ``customer`` through the bot's HTTP API, as a till would.
        ``now``: the visit happened SURVEY_DELAY ago, so its survey is due at once.
        Returns the API's status and answer."""
        assert self.app is not None
        at = self.app.clock.now()
        if now:
            at -= self.app.policy.delay
        body = {
            "visit_id": f"sandbox-{uuid.uuid4().hex[:12]}",
            "customer": {
                "ref": f"tg-{customer.id}",
                "telegram_user_id": customer.id,
                "name": customer.first_name,
            },
            "location": location,
            "occurred_at": at.astimezone(UTC).isoformat(),
        }
        key = self.settings.api_keys[0].get_secret_value()
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                self.app.http_url + VISITS_PATH,
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            ) as response,
        ):
            return response.status, await response.json()


def describe(sandbox: Sandbox) -> str:
    assert sandbox.app is not None and sandbox.cast is not None
    emulator_url = sandbox.emulator.url
    cast = sandbox.cast
    names = ", ".join(person.first_name for person in cast.customers)
    lines = [
        "Hearback sandbox: no BOT_TOKEN, so the real bot runs on a local Telegram emulator.",
    ]
    if sandbox.page_url:
        lines.append(f"  Play it in a browser  {sandbox.page_url}")
    lines += [
        f"  Bot API emulator      {emulator_url}   (the bot is @{cast.bot.username})",
        f"  Emulator controls     {emulator_url}/_emulator/",
        f"  Bot HTTP server       {sandbox.app.http_url}/healthz",
        f"  Customers {names}; staff {cast.staff[0].first_name} in “{cast.group.title}”;"
        f" admin {cast.admin.first_name} (id {cast.admin.id})",
        "  Play a customer from the command line:",
        f"    curl -s -XPOST {emulator_url}/_emulator/users/{cast.customers[0].id}/send"
        ' -d \'{"text": "/help"}\'',
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def run_sandbox(settings: Settings, out: TextIO = sys.stdout) -> None:
    """`hearback run` with no token: until SIGINT or SIGTERM."""
    sandbox = Sandbox(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sandbox.stop_bot)
    try:
        await sandbox.start()
        print(describe(sandbox), file=out, flush=True)
        await sandbox.wait()
    except SandboxStopped:
        log.info("Stopped while starting")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await sandbox.stop()
