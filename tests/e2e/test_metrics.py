"""/metrics against the real bot: its counters move with what the emulator saw happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Application
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from tests.e2e.conftest import QUICK, UNPACED, customers, e2e_settings, running, visits_due_now


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, worker_poll_interval=0.05)


@pytest.fixture
async def app(make_app, emulator: Emulator) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    # Monday noon: outside quiet hours, so surveys go at once.
    app = make_app(clock=FakeClock(), limiter=RateLimiter(UNPACED, QUICK))
    async with running(app) as started:
        yield started


async def scrape(app: Application) -> dict[tuple[str, str], float]:
    """Samples by (name, the value of its one label or "")."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{app.http_url}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (sample.name, next(iter(sample.labels.values()), "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_an_update_served_twice_while_polling_is_handled_once(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    anna = emulator.add_user(first_name="Anna")
    emulator.faults.duplicate_updates(1)
    await anna.send(telegram_bot, "/start")
    await emulator.wait_for(lambda: app.once.stats.duplicates == 1, timeout=10)
    await asyncio.sleep(0.3)  # a second greeting would be on its way by now
    assert len(anna.inbox(telegram_bot)) == 1
    found = await scrape(app)
    assert found[("hearback_updates_total", "duplicate")] == 1
    assert found[("hearback_updates_total", "handled")] == 1


async def test_counters_follow_sends_429s_refusals_and_jobs(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    anna = emulator.add_user(first_name="Anna")
    emulator.faults.flood(1.0, retry_after=1)  # the greeting meets a 429 first
    await anna.send(telegram_bot, "/start")
    await emulator.wait_for(lambda: anna.inbox(telegram_bot), timeout=10)

    # Two surveys from the scheduler: one delivered, one to a customer who blocked the bot.
    happy, gone = await customers(app, emulator, telegram_bot, 2)
    gone.block(telegram_bot)
    await visits_due_now(app, [happy, gone])
    await emulator.wait_for(lambda: happy.inbox(telegram_bot), timeout=10)
    for _ in range(100):
        found = await scrape(app)
        if (
            found[("hearback_telegram_sends_total", "refused")] >= 1
            and found[("hearback_jobs_total", "completed")] >= 2
        ):
            break
        await asyncio.sleep(0.1)

    sent = emulator.calls_to("sendMessage", ok=True)
    assert found[("hearback_telegram_sends_total", "ok")] == len(sent) == 2
    assert found[("hearback_telegram_sends_total", "refused")] == 1
    assert found[("hearback_telegram_sends_total", "gave_up")] == 0
    assert found[("hearback_telegram_429_total", "")] == emulator.stats.too_many_requests >= 1
    # /start, and the note Telegram sends the bot when it is blocked (my_chat_member).
    assert found[("hearback_updates_total", "handled")] == 2
    assert found[("hearback_jobs_total", "completed")] >= 2
    assert found[("hearback_job_queue", "due")] == 0
    assert found[("hearback_database_up", "")] == 1
