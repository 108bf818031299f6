"""Command menus end to end: `CommandMenus` publishes through the real bot to the emulator, and
each audience's menu is read back the way Telegram picks it for a chat.

The emulator stores menus per (scope, chat, user, language) as setMyCommands left them; `seen`
applies Telegram's rule for which of them a person sees: the most specific scope that has a
list, and in it the list for their language before the list for none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.app import Application
from bot.emulator import BotAccount, Emulator, Limits, SimChat, SimUser
from bot.menus import (
    ADMIN_COMMANDS,
    CUSTOMER_COMMANDS,
    CUSTOMER_COMMANDS_ZH,
    GROUP_COMMANDS,
    STAFF_COMMANDS,
    CommandMenus,
    Commands,
)
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from tests.e2e.conftest import QUICK, UNPACED, e2e_settings, running

BOSS = 5_000_001  # an admin (ADMIN_IDS) who has a chat with the bot
GHOST = 5_000_009  # an admin (ADMIN_IDS) Telegram has never heard of: 400 chat not found
DEPUTY = 5_000_002  # made an admin later


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[GHOST, BOSS])


@pytest.fixture
async def app(make_app, emulator: Emulator) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(limiter=RateLimiter(UNPACED, QUICK))) as started:
        yield started


@pytest.fixture
def menus(app: Application) -> CommandMenus:
    return CommandMenus(app.bot, app.roles, app.staff_chats)


def seen(bot: BotAccount, chat: SimChat | SimUser, language: str = "en") -> list[str]:
    """The menu a person sees in a private chat (``SimUser``) or a group, as Telegram picks it
    (chat-member and administrator scopes are never used by Hearback, so left out)."""
    if isinstance(chat, SimUser):
        scopes = [("chat", chat.id), ("all_private_chats", None), ("default", None)]
    else:
        scopes = [("chat", chat.id), ("all_group_chats", None), ("default", None)]
    for scope, chat_id in scopes:
        for code in (language, ""):
            commands = bot.get_commands(scope, chat_id=chat_id, language_code=code)
            if commands:
                return [f"/{c['command']} — {c['description']}" for c in commands]
    return []


def lines(commands: Commands) -> list[str]:
    return [f"/{name} — {description}" for name, description in commands]


async def staff_chat(
    app: Application, emulator: Emulator, bot: BotAccount, boss: SimUser
) -> SimChat:
    group = emulator.add_group("Complaints", members=[boss], creator=boss)
    emulator.add_bot_to_chat(bot, group)
    registration = await app.staff_chats.register(group.id, by=BOSS)
    assert registration.registered
    return group


async def test_after_start_customers_admins_and_staff_chats_each_see_their_menu(
    app: Application,
    emulator: Emulator,
    telegram_bot: BotAccount,
    menus: CommandMenus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    boss = emulator.add_user(first_name="Bea", user_id=BOSS)
    anna = emulator.add_user(first_name="Anna")
    li = emulator.add_user(first_name="Li", language_code="zh")
    staff = await staff_chat(app, emulator, telegram_bot, boss)
    other_group = emulator.add_group("Book club", members=[anna], creator=anna)
    emulator.add_bot_to_chat(telegram_bot, other_group)

    with caplog.at_level(logging.INFO, logger="bot.menus"):
        refused = await menus.publish_all()

    # The admin who never started the bot is the one refusal, logged, and nothing else failed.
    assert refused == 1
    assert [r.getMessage() for r in caplog.records if r.name == "bot.menus"] == [
        f"Could not set the command menu of admin {GHOST}: Bad Request: chat not found"
    ]
    assert seen(telegram_bot, anna) == lines(CUSTOMER_COMMANDS)
    assert seen(telegram_bot, li, "zh") == lines(CUSTOMER_COMMANDS_ZH)
    assert seen(telegram_bot, boss) == lines(ADMIN_COMMANDS)
    assert seen(telegram_bot, boss, "zh") == lines(ADMIN_COMMANDS)  # admins read English
    assert seen(telegram_bot, staff) == lines(STAFF_COMMANDS)
    assert seen(telegram_bot, other_group) == lines(GROUP_COMMANDS)
    # Telegram took every request but the one.
    failed = [c for c in emulator.calls if c.status != 200]
    assert [(c.method, c.status) for c in failed] == [("setMyCommands", 400)]


async def test_admins_and_staff_chats_gain_and_lose_their_menus(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, menus: CommandMenus
) -> None:
    boss = emulator.add_user(first_name="Bea", user_id=BOSS)
    deputy = emulator.add_user(first_name="Dan", user_id=DEPUTY)
    await menus.publish_all()
    assert seen(telegram_bot, deputy) == lines(CUSTOMER_COMMANDS)

    assert await app.roles.grant(DEPUTY, by=BOSS, by_name="Bea")
    assert await menus.admin_added(DEPUTY)
    assert seen(telegram_bot, deputy) == lines(ADMIN_COMMANDS)

    await app.roles.revoke(DEPUTY, by=BOSS, by_name="Bea")
    assert await menus.admin_removed(DEPUTY)
    assert seen(telegram_bot, deputy) == lines(CUSTOMER_COMMANDS)
    # An admin from ADMIN_IDS keeps the admin menu whatever is asked.
    assert await menus.admin_removed(BOSS)
    assert seen(telegram_bot, boss) == lines(ADMIN_COMMANDS)

    group = await staff_chat(app, emulator, telegram_bot, boss)
    assert seen(telegram_bot, group) == lines(GROUP_COMMANDS)  # not published yet
    assert await menus.staff_chat_added(group.id)
    assert seen(telegram_bot, group) == lines(STAFF_COMMANDS)
    assert await app.staff_chats.remove(group.id, by=BOSS)
    assert await menus.staff_chat_removed(group.id)
    assert seen(telegram_bot, group) == lines(GROUP_COMMANDS)


async def test_a_staff_chat_that_left_is_out_of_the_menus_and_unknown_chats_are_no_error(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, menus: CommandMenus
) -> None:
    boss = emulator.add_user(first_name="Bea", user_id=BOSS)
    group = await staff_chat(app, emulator, telegram_bot, boss)
    emulator.remove_bot_from_chat(telegram_bot, group, by=boss)
    for _ in range(100):  # the bot hears of it, as it would from Telegram
        chat = await app.staff_chats.get(group.id)
        if chat is not None and not chat.active:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the staff chat stayed active")

    # Only the admin Telegram never heard of is refused: the chat is no staff chat any more.
    assert await menus.publish_all() == 1
    assert telegram_bot.get_commands("chat", chat_id=group.id) == []
    assert seen(telegram_bot, boss) == lines(ADMIN_COMMANDS)
    # A chat id Telegram does not know (an old group id after an upgrade): refused, not raised.
    assert await menus.staff_chat_added(-100_999_999) is False
    assert await menus.staff_chat_removed(-100_999_999) is False
