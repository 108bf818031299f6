"""Webhook mode: the emulator posts updates to the real bot's HTTP server, as Telegram does.

The bot sets its webhook on start; customers talk to it through the emulator, which posts each
update with the secret header; posts without the right secret are refused and change nothing; an
update posted twice is handled once; stopping finishes what was accepted and leaves the rest with
Telegram, which posts it to the next process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy import func, select

from bot.app import Application
from bot.callbacks import ScoreCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.webhook import SECRET_HEADER
from storage.models import Answer, Customer
from tests.e2e.conftest import QUICK, UNPACED, customers, e2e_settings, running, visits_due_now
from tests.net import free_port

SECRET = "s3cret_Webhook-token"
PATH = "/telegram/hook"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The webhook URL names the bot's own port, so it cannot be "any free one" (0).
    port = free_port()
    return e2e_settings(
        database_url,
        http_port=port,
        webhook_url=f"http://127.0.0.1:{port}{PATH}",
        webhook_secret=SECRET,
        worker_poll_interval=0.05,
    )


@pytest.fixture
def make_webhook_app(
    settings: Settings, emulator: Emulator, telegram_bot: BotAccount
) -> Callable[..., Application]:
    emulator.limits = Limits.off()

    def make(**kwargs) -> Application:
        return Application(
            settings,
            token=telegram_bot.token,
            api_url=emulator.url,
            webhook=True,
            limiter=RateLimiter(UNPACED, QUICK),
            **kwargs,
        )

    return make


@pytest.fixture
async def app(make_webhook_app) -> AsyncIterator[Application]:
    async with running(make_webhook_app(clock=FakeClock())) as started:
        yield started


async def bot_messages(person, bot: BotAccount, count: int) -> list:
    """The chat's bot messages once there are ``count`` (waits up to 10 s)."""
    for _ in range(200):
        inbox = person.inbox(bot)
        if len(inbox) >= count:
            return inbox
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} messages, got {[m.text for m in person.inbox(bot)]}")


def start_update(update_id: int, user_id: int, first_name: str) -> dict:
    user = {"id": user_id, "is_bot": False, "first_name": first_name}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1767614400,
            "chat": {"id": user_id, "type": "private", "first_name": first_name},
            "from": user,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def post(app: Application, body: dict, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            f"{app.http_url}{PATH}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        ) as response,
    ):
        return response.status


async def customer_count(app: Application) -> int:
    async with app.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_the_bot_sets_its_webhook_with_the_secret_and_the_updates_it_uses(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    assert telegram_bot.webhook is not None
    assert telegram_bot.webhook["url"] == app.settings.webhook_url
    assert telegram_bot.webhook["secret_token"] == SECRET
    # The update types the routers handle, as polling asks for them.
    [call] = emulator.calls_to("setWebhook")
    assert set(call.params["allowed_updates"]) == set(
        app.dispatcher.resolve_used_update_types()
    ) and {"message", "callback_query"} <= set(call.params["allowed_updates"])
    assert emulator.calls_to("getUpdates") == []


async def test_a_conversation_works_end_to_end_through_the_webhook(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    anna = emulator.add_user(first_name="Anna")
    await anna.send(telegram_bot, "/start")
    [greeting] = await bot_messages(anna, telegram_bot, 1)
    assert greeting.text.startswith("Hello, Anna!")

    # A survey from the scheduler, a tap on a score and a comment: each update is posted.
    [bob] = await customers(app, emulator, telegram_bot, 1, prefix="Bob")
    await visits_due_now(app, [bob])
    [survey] = await bot_messages(bob, telegram_bot, 1)
    survey_id = ScoreCallback.unpack(survey.callback_data[0]).survey_id
    await bob.tap(telegram_bot, survey, ScoreCallback(survey_id=survey_id, score=5).pack())
    inbox = await bot_messages(bob, telegram_bot, 2)
    assert inbox[1].text.startswith("Thank you, Bob0!")
    await bob.send(telegram_bot, "Lovely noodles")
    await bot_messages(bob, telegram_bot, 3)
    async with app.session_factory() as session:
        answer = await session.scalar(select(Answer).order_by(Answer.id.desc()))
    assert answer is not None and (answer.score, answer.comment) == (5, "Lovely noodles")

    assert emulator.stats.webhook_deliveries == 3  # /start, the tap, the comment
    assert emulator.calls_to("getUpdates") == []
    assert app.webhook is not None and app.webhook.stats.unauthorized == 0


@pytest.mark.parametrize(
    "headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}], ids=str
)
async def test_a_post_without_the_right_secret_gets_401_and_changes_nothing(
    app: Application, emulator: Emulator, headers: dict[str, str]
) -> None:
    before = await customer_count(app)
    assert await post(app, start_update(9001, 4242, "Mallory"), headers) == 401
    await asyncio.sleep(0.3)
    assert emulator.calls_to("sendMessage") == []
    assert await customer_count(app) == before
    assert app.webhook is not None and app.webhook.stats.unauthorized == 1

    # The very same post with the secret is taken: the refusal above was the secret's doing.
    assert await post(app, start_update(9001, 4242, "Mallory"), {SECRET_HEADER: SECRET}) == 200
    await emulator.wait_for(lambda: emulator.calls_to("sendMessage"), timeout=10)
    assert await customer_count(app) == before + 1


async def test_an_update_posted_twice_is_handled_once(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    anna = emulator.add_user(first_name="Anna")
    emulator.faults.duplicate_updates(1)
    await anna.send(telegram_bot, "/start")
    await bot_messages(anna, telegram_bot, 1)
    await emulator.wait_for(lambda: app.once.stats.duplicates == 1, timeout=10)
    await asyncio.sleep(0.3)  # a second greeting would be on its way by now

    assert emulator.stats.webhook_deliveries == 2  # the same update, posted twice
    assert [m.text.split("!")[0] for m in anna.inbox(telegram_bot)] == ["Hello, Anna"]
    assert app.once.stats.handled == 1


async def test_stopping_finishes_accepted_updates_and_leaves_the_rest_to_the_next_process(
    make_webhook_app, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    # A slow handler keeps an update in flight while the bot is asked to stop.
    slow = Router()
    handling = asyncio.Event()

    @slow.message(F.text == "slow please")
    async def take_your_time(message: Message) -> None:
        handling.set()
        await asyncio.sleep(1.0)
        await message.answer("done slowly")

    anna = emulator.add_user(first_name="Anna")
    first = make_webhook_app(extra_routers=[slow])
    async with running(first):
        await anna.send(telegram_bot, "/start")
        await bot_messages(anna, telegram_bot, 1)
        await anna.send(telegram_bot, "slow please")
        await asyncio.wait_for(handling.wait(), 10)
        first.stop()
        # Posted while the first process drains: refused with 503, so Telegram keeps it.
        bob = emulator.add_user(first_name="Bob")
        await bob.send(telegram_bot, "/start")
        await emulator.wait_for(lambda: telegram_bot.webhook_error is not None, timeout=10)
    assert [m.text for m in anna.inbox(telegram_bot)][-1] == "done slowly"
    assert first.webhook is not None and first.webhook.stats.unavailable >= 1
    assert bob.inbox(telegram_bot) == []

    # The next process gets what the first one left.
    async with running(make_webhook_app()):
        [greeting] = await bot_messages(bob, telegram_bot, 1)
    assert greeting.text.startswith("Hello, Bob!")


async def test_metrics_count_what_the_webhook_took_and_refused(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    anna = emulator.add_user(first_name="Anna")
    await anna.send(telegram_bot, "/start")
    await bot_messages(anna, telegram_bot, 1)
    assert await post(app, start_update(9100, 4243, "Eve"), {}) == 401
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{app.http_url}/metrics") as response,
    ):
        assert response.status == 200
        body = await response.text()
    assert 'hearback_webhook_requests_total{result="accepted"} 1.0' in body
    assert 'hearback_webhook_requests_total{result="unauthorized"} 1.0' in body
    assert 'hearback_updates_total{result="handled"} 1.0' in body


async def test_polling_again_after_webhook_mode_removes_the_webhook_and_loses_nothing(
    make_webhook_app, make_app, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    async with running(make_webhook_app()):
        pass
    assert telegram_bot.webhook is not None  # left set on stop: Telegram keeps posting there
    anna = emulator.add_user(first_name="Anna")
    await anna.send(telegram_bot, "/start")  # waits with Telegram while no bot runs

    async with running(make_app()):
        [greeting] = await bot_messages(anna, telegram_bot, 1)
    assert greeting.text.startswith("Hello, Anna!")
    assert telegram_bot.webhook is None
    assert emulator.calls_to("getUpdates", ok=False) == []
