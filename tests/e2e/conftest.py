"""End-to-end fixtures: the Bot API emulator on loopback and the real bot polling it over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bot.app import Application
from bot.emulator import BotAccount, Emulator, SimUser
from bot.emulator.world import StoredMessage
from bot.ratelimit import RetryPolicy, SendLimits
from bot.settings import Settings
from bot.simulation import started_customers, visits_due_now

BUSINESS = "Rice Shop"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as emu:
        yield emu


@pytest.fixture
def telegram_bot(emulator: Emulator):
    return emulator.add_bot(username="hearback_test_bot", first_name=BUSINESS)


def e2e_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a bot under test: no .env, a free port, quick shutdown, plus `overrides`."""
    values: dict[str, object] = {
        "database_url": database_url,
        "business_name": BUSINESS,
        "http_port": 0,
        "shutdown_timeout": 5,
    }
    return Settings(_env_file=None, **{**values, **overrides})


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url)


@asynccontextmanager
async def running(app: Application) -> AsyncIterator[Application]:
    task = asyncio.create_task(app.run())
    started = asyncio.create_task(app.started.wait())
    await asyncio.wait({task, started}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if not app.started.is_set():
        started.cancel()
        await task  # surfaces the start-up failure
        raise AssertionError("the bot did not start within 15 s")
    try:
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
def make_app(settings: Settings, emulator: Emulator, telegram_bot) -> Callable[..., Application]:
    def make(**kwargs) -> Application:
        return Application(settings, token=telegram_bot.token, api_url=emulator.url, **kwargs)

    return make


@pytest.fixture
async def app(make_app) -> AsyncIterator[Application]:
    async with running(make_app()) as started:
        yield started


# Quick retries: the mechanism is the same, the test just does not wait seconds for it.
QUICK = RetryPolicy(attempts=6, base_delay=0.02, max_delay=0.2)
# For tests not about pacing: far above anything they send.
UNPACED = SendLimits(per_second=2000, burst=200, private_per_second=100, private_burst=10)


# The world every end-to-end test sets up the same way (also used by the benchmarks).
customers = started_customers
__all__ = ["QUICK", "UNPACED", "customers", "e2e_settings", "running", "visits_due_now"]


async def replies(
    person: SimUser,
    bot: BotAccount,
    text: str,
    count: int = 1,
    *,
    reply_to: StoredMessage | None = None,
) -> list[StoredMessage]:
    """Send ``text`` in the private chat (``reply_to``: as a reply to that message); the bot's
    next ``count`` messages there."""
    before = len(person.inbox(bot))
    await person.send(bot, text, reply_to=reply_to)
    for _ in range(200):
        inbox = person.inbox(bot)
        if len(inbox) >= before + count:
            return inbox[before : before + count]
        await asyncio.sleep(0.05)
    said = [m.text for m in person.inbox(bot)[before:]]
    raise AssertionError(f"expected {count} replies to {text!r}, got {said}")


async def ask(
    person: SimUser, bot: BotAccount, text: str, *, reply_to: StoredMessage | None = None
) -> str:
    """Send ``text`` in the private chat; the text of the bot's next message there."""
    [reply] = await replies(person, bot, text, reply_to=reply_to)
    return reply.text or ""
