"""A customer starts the bot and is greeted: the real bot, the emulator, real HTTP in between."""

from __future__ import annotations

import asyncio

from aiogram import F, Router
from aiogram.types import Message
from sqlalchemy import func, select

from bot import texts
from bot.app import Application
from bot.emulator import Emulator
from storage.models import Answer, Customer
from storage.repositories import CustomerRepository
from tests.e2e.conftest import BUSINESS, running


def texts_of(user, bot) -> list[str]:
    return [message.text for message in user.inbox(bot)]


def bot_errors(emulator: Emulator) -> list[str]:
    """Every call the bot made that the emulator refused: there should be none."""
    return [f"{c.method} -> {c.status}" for c in emulator.calls if c.status != 200]


async def test_customer_who_starts_the_bot_is_greeted_by_name(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    anna = emulator.add_user(first_name="Anna", username="anna", language_code="en")
    await anna.send(telegram_bot, "/start")
    await emulator.wait_for(lambda: anna.inbox(telegram_bot), timeout=10)

    [greeting] = texts_of(anna, telegram_bot)
    assert greeting.startswith("Hello, Anna!")
    assert BUSINESS in greeting
    assert bot_errors(emulator) == []

    async with app.session_factory() as session:
        customer = await CustomerRepository(session).by_telegram_id(anna.id)
    assert customer is not None
    assert customer.first_name == "Anna"
    assert customer.username == "anna"


async def test_a_returning_customer_is_welcomed_back_and_recorded_once(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    li = emulator.add_user(first_name="Li", language_code="zh-hans")
    await li.send(telegram_bot, "/start")
    await emulator.wait_for(lambda: len(li.inbox(telegram_bot)) == 1, timeout=10)
    await li.send(telegram_bot, "/start")
    await emulator.wait_for(lambda: len(li.inbox(telegram_bot)) == 2, timeout=10)

    # Telegram says Li reads Chinese: the bot answers in Chinese.
    assert texts_of(li, telegram_bot)[1] == texts.render(
        texts.GREETING_AGAIN, "zh_Hans", business=BUSINESS, name="Li"
    )
    async with app.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_two_starts_at_once_create_one_customer(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    ivan = emulator.add_user(first_name="Ivan")
    await asyncio.gather(ivan.send(telegram_bot, "/start"), ivan.send(telegram_bot, "/start a"))
    await emulator.wait_for(lambda: len(ivan.inbox(telegram_bot)) == 2, timeout=10)

    greetings = sorted(texts_of(ivan, telegram_bot))
    assert greetings[0].startswith("Hello, Ivan!")
    assert greetings[1].startswith("Welcome back, Ivan!")
    async with app.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_a_sticker_or_stray_text_gets_a_polite_answer(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    omar = emulator.add_user(first_name="Omar")
    await omar.send(telegram_bot, "/start")
    await omar.send_sticker(telegram_bot)
    await omar.send(telegram_bot, "x" * 4096)
    await emulator.wait_for(lambda: len(omar.inbox(telegram_bot)) == 3, timeout=10)

    sticker, words = texts_of(omar, telegram_bot)[1:]
    assert sticker == texts.render(texts.HINT_TEXT_PLEASE, name="Omar")
    # Words with no survey waiting are feedback all the same: kept whole and thanked.
    assert words == texts.render(texts.UNSOLICITED_THANKS, name="Omar")
    async with app.session_factory() as session:
        assert await session.scalar(select(Answer.comment)) == "x" * 4096
    assert bot_errors(emulator) == []


async def test_help_says_what_the_bot_is_for(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    sara = emulator.add_user(first_name="Sara")
    await sara.send(telegram_bot, "/help")
    await emulator.wait_for(lambda: sara.inbox(telegram_bot), timeout=10)
    assert f"how your visit to {BUSINESS} went" in texts_of(sara, telegram_bot)[0]


async def test_the_bot_stays_quiet_in_group_chats(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    member = emulator.add_user(first_name="Staff")
    group = emulator.add_group("Front desk", members=[member])
    emulator.add_bot_to_chat(telegram_bot, group)
    await member.send_to_chat(telegram_bot, group, "/start")
    await member.send_to_chat(telegram_bot, group, "hello everyone")
    # The canary tells us the bot has handled every update before it, so silence is real.
    canary = emulator.add_user(first_name="Canary")
    await canary.send(telegram_bot, "/help")
    await emulator.wait_for(lambda: canary.inbox(telegram_bot), timeout=10)

    sent = [c for c in emulator.calls if c.method == "sendMessage"]
    assert [str(c.params["chat_id"]) for c in sent] == [str(canary.id)]


async def test_shutdown_lets_the_update_in_flight_finish(
    make_app, emulator: Emulator, telegram_bot
) -> None:
    handler_entered = asyncio.Event()
    slow = Router(name="slow")

    @slow.message(F.text == "/slow")
    async def slow_reply(message: Message) -> None:
        handler_entered.set()
        await asyncio.sleep(0.5)
        await message.answer("finished")

    app = make_app(extra_routers=[slow])
    maya = emulator.add_user(first_name="Maya")
    async with running(app):
        await maya.send(telegram_bot, "/slow")
        await asyncio.wait_for(handler_entered.wait(), 10)
        app.stop()  # stop while the handler is still sleeping
    assert texts_of(maya, telegram_bot) == ["finished"]
