"""Staff chats end to end: admins register groups with /staff_here or /staffchat, the bot checks
with Telegram (the emulator) what it may do there, and stays quiet for everyone else.

The assertions are on what people see in their chats and on what the database holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot import staff_texts, texts
from bot.app import Application
from bot.emulator import BotAccount, Emulator, Limits, SimChat, SimUser
from bot.ratelimit import RateLimiter, SendLimits
from bot.settings import Settings
from bot.staffchats import ADDED_ACTION, BOT_LEFT_ACTION, REMOVED_ACTION
from storage.models import AuditEntry, StaffChat
from tests.e2e.conftest import BUSINESS, QUICK, ask, e2e_settings, running

BOSS = 5_000_001  # an admin (ADMIN_IDS)
CLERK = 5_000_002  # a staff member, not an admin

# Group replies unpaced too: these tests are not about Telegram's 20 messages a minute.
FAST = SendLimits(
    per_second=2000,
    burst=200,
    private_per_second=100,
    private_burst=10,
    group_per_minute=6000,
    group_burst=20,
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[BOSS])


@pytest.fixture
async def app(make_app, emulator: Emulator) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(limiter=RateLimiter(FAST, QUICK))) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", user_id=BOSS)


@pytest.fixture
def clerk(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Carl", user_id=CLERK)


def bot_messages(chat: SimChat, bot: BotAccount) -> list[str]:
    return [m.text or "" for m in chat.messages if m.bot_id == bot.id]


async def said_in(emulator: Emulator, chat: SimChat, bot: BotAccount, count: int) -> list[str]:
    """Wait until the bot has written ``count`` messages in the group; all it wrote."""
    await emulator.wait_for(lambda: len(bot_messages(chat, bot)) >= count, timeout=10)
    return bot_messages(chat, bot)


async def staff_chats(app: Application) -> list[StaffChat]:
    async with app.session_factory() as session:
        return list(await session.scalars(select(StaffChat).order_by(StaffChat.id)))


async def audit(app: Application) -> list[tuple[str, int | None, str | None]]:
    async with app.session_factory() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.actor_id, e.target) for e in entries]


async def settle(app: Application) -> None:
    for _ in range(100):
        await asyncio.sleep(0.05)
        if app.in_flight.count == 0:
            return


# ------------------------------------------------------------------------------- /staff_here


async def test_a_forum_is_registered_once_the_bot_may_manage_topics(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, clerk: SimUser
) -> None:
    forum = emulator.add_group("Complaints", forum=True, members=[clerk], creator=boss)
    emulator.add_bot_to_chat(telegram_bot, forum)  # a plain member

    await boss.send_to_chat(telegram_bot, forum, "/staff_here")
    [refusal] = await said_in(emulator, forum, telegram_bot, 1)
    assert refusal == (
        "This chat is a forum, where each case gets its own topic: make me an administrator "
        "with the right to manage topics, then send /staff_here again."
    )
    assert await staff_chats(app) == []

    emulator.set_member(forum, telegram_bot, "administrator", rights={"can_manage_topics": True})
    await boss.send_to_chat(telegram_bot, forum, f"/staff_here@{telegram_bot.username}")
    said = await said_in(emulator, forum, telegram_bot, 2)
    assert said[1] == staff_texts.REGISTERED_FORUM
    assert said[1].startswith("This chat now receives cases.")

    [row] = await staff_chats(app)
    assert (row.chat_id, row.title, row.is_forum, row.active, row.added_by) == (
        forum.id,
        "Complaints",
        True,
        True,
        BOSS,
    )
    assert await audit(app) == [(ADDED_ACTION, BOSS, f"staff_chat:{forum.id}")]

    # Again: it says so, and nothing changes.
    await boss.send_to_chat(telegram_bot, forum, "/staff_here")
    said = await said_in(emulator, forum, telegram_bot, 3)
    assert said[2] == staff_texts.ALREADY_REGISTERED
    assert len(await staff_chats(app)) == 1


async def test_a_non_admin_gets_no_reply_in_a_group(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, clerk: SimUser
) -> None:
    group = emulator.add_group("Front desk", members=[boss, clerk])
    emulator.add_bot_to_chat(telegram_bot, group)

    await clerk.send_to_chat(telegram_bot, group, "/staff_here")
    # One chat's updates are handled in order: the boss's reply comes after the clerk's command
    # was handled, so a single message from the bot means the clerk got none.
    await boss.send_to_chat(telegram_bot, group, "/staff_here")
    said = await said_in(emulator, group, telegram_bot, 1)
    await settle(app)

    assert bot_messages(group, telegram_bot) == said == [staff_texts.REGISTERED_GROUP]
    [row] = await staff_chats(app)
    assert (row.chat_id, row.is_forum, row.added_by) == (group.id, False, BOSS)


async def test_the_bot_removed_from_a_staff_chat_stops_it_receiving_cases(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, clerk: SimUser
) -> None:
    group = emulator.add_group("Front desk", supergroup=True, members=[boss, clerk])
    emulator.add_bot_to_chat(telegram_bot, group)
    await boss.send_to_chat(telegram_bot, group, "/staff_here")
    await said_in(emulator, group, telegram_bot, 1)

    emulator.remove_bot_from_chat(telegram_bot, group, by=clerk)

    async def deactivated() -> bool:
        return [row.active for row in await staff_chats(app)] == [False]

    await emulator.wait_for(deactivated, timeout=10)
    assert (BOT_LEFT_ACTION, CLERK, f"staff_chat:{group.id}") in await audit(app)

    # Added back, the chat is not a staff chat until an admin says so again.
    emulator.add_bot_to_chat(telegram_bot, group, by=boss)
    await settle(app)
    assert [row.active for row in await staff_chats(app)] == [False]
    await boss.send_to_chat(telegram_bot, group, "/staff_here")
    said = await said_in(emulator, group, telegram_bot, 2)
    assert said[1] == staff_texts.REGISTERED_GROUP
    [row] = await staff_chats(app)
    assert row.active is True


# ------------------------------------------------------------------------ /staffchat in private


async def test_an_admin_manages_staff_chats_in_private(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, clerk: SimUser
) -> None:
    group = emulator.add_group("Front desk", members=[boss, clerk])
    forum = emulator.add_group("Complaints", forum=True, members=[boss])
    elsewhere = emulator.add_group("Family", members=[boss])  # the bot is not in it
    emulator.add_bot_to_chat(telegram_bot, group)
    emulator.add_bot_to_chat(telegram_bot, forum, admin=True, can_manage_topics=True)

    assert await ask(boss, telegram_bot, "/staffchat list") == staff_texts.LIST_NONE

    assert await ask(boss, telegram_bot, f"/staffchat add {group.id}") == (
        "Front desk now receives cases."
    )
    assert await ask(boss, telegram_bot, f"/staffchat add {forum.id}") == (
        "Complaints now receives cases."
    )
    assert await ask(boss, telegram_bot, f"/staffchat add {group.id}") == (
        "Front desk already receives cases."
    )
    refused = await ask(boss, telegram_bot, f"/staffchat add {elsewhere.id}")
    assert refused.startswith(f"I am not a member of chat {elsewhere.id} (Telegram says: ")

    listed = await ask(boss, telegram_bot, "/staffchat list")
    assert listed == "\n".join(
        [
            staff_texts.LIST_HEADING,
            f"1. Front desk — group, id {group.id}",
            f"2. Complaints — forum, a topic per case, id {forum.id}",
        ]
    )

    assert await ask(boss, telegram_bot, f"/staffchat remove {group.id}") == (
        "Front desk no longer receives new cases; its open cases stay there."
    )
    assert await ask(boss, telegram_bot, f"/staffchat remove {group.id}") == (
        staff_texts.NOT_REMOVED.format(chat_id=group.id)
    )
    listed = await ask(boss, telegram_bot, "/staffchat list")
    assert listed == "\n".join(
        [
            staff_texts.LIST_HEADING,
            f"1. Complaints — forum, a topic per case, id {forum.id}",
            "",
            staff_texts.LIST_REMOVED_HEADING,
            f"• Front desk — id {group.id}",
        ]
    )

    for wrong in ("/staffchat", "/staffchat add", "/staffchat add front", "/staffchat drop 1"):
        assert await ask(boss, telegram_bot, wrong) == staff_texts.USAGE
    assert await ask(boss, telegram_bot, "/staff_here") == staff_texts.STAFF_HERE_IN_PRIVATE

    rows = {row.chat_id: row.active for row in await staff_chats(app)}
    assert rows == {group.id: False, forum.id: True}
    actions = [(action, actor) for action, actor, _ in await audit(app)]
    assert actions == [(ADDED_ACTION, BOSS), (ADDED_ACTION, BOSS), (REMOVED_ACTION, BOSS)]


async def test_a_non_admin_gets_what_an_unknown_command_gets(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, clerk: SimUser
) -> None:
    unknown = await ask(clerk, telegram_bot, "/frobnicate")
    help_ = texts.render(texts.HELP, business=BUSINESS)
    assert unknown == f"{texts.render(texts.UNKNOWN_COMMAND, name='Carl')}\n\n{help_}"
    for command in ("/staffchat list", "/staffchat add -4000000001", "/staff_here"):
        assert await ask(clerk, telegram_bot, command) == unknown
    assert await staff_chats(app) == []
