"""/stats and the weekly digest end to end: an admin gets the chart and the figures, for any
period and location; a staff chat's members get what the chat handles; a customer's /stats is
an unknown command; and every staff chat gets last week's figures at WEEKLY_DIGEST, once.

The week of 2 March is the hand-counted one of tests/services/test_stats.py; the bot runs on a
fake clock set to the Sunday after it, so "the last 7 days" is that week."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import Application
from bot.charts import HEIGHT_PX, WIDTH_PX
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import SimChat, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from tests.e2e.conftest import QUICK, UNPACED, ask, e2e_settings, replies, running
from tests.e2e.test_admin import unknown_command_reply
from tests.services.test_stats import Chats, add_staff_chat, seed_week
from tests.unit.test_charts import png_size

BOSS = 5_400_001  # an admin through ADMIN_IDS
MARIA = 5_400_002  # a member of the Airport team's chat
MEI = 5_400_003  # a customer
SUNDAY = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
MONDAY_9 = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(
        database_url, admin_ids=[BOSS], worker_poll_interval=0.05, weekly_digest="mon 09:00"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SUNDAY)


@pytest.fixture
async def app(make_app, emulator: Emulator, clock: FakeClock) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(limiter=RateLimiter(UNPACED, QUICK), clock=clock)) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", user_id=BOSS)


@pytest.fixture
def maria(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Maria", user_id=MARIA)


@dataclass
class Groups:
    everyone: SimChat
    airport: SimChat
    rude: SimChat
    quiet: SimChat
    rows: Chats


@pytest.fixture
async def groups(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, maria: SimUser
) -> Groups:
    """The hand-counted week, its three staff chats as real groups, and a fourth staff chat
    with no rules (not the default): it handles nothing."""
    chats = []
    for title in ("Everyone", "Airport team", "Rudeness", "Quiet corner"):
        group = emulator.add_group(title, members=[maria] if "Airport" in title else [])
        emulator.add_bot_to_chat(telegram_bot, group)
        chats.append(group)
    everyone, airport, rude, quiet = chats
    rows = await seed_week(app.session_factory, (everyone.id, airport.id, rude.id))
    async with app.session_factory.begin() as session:
        await add_staff_chat(session, quiet.id, "Quiet corner", SUNDAY)
    return Groups(everyone, airport, rude, quiet, rows)


def is_chart(message: StoredMessage) -> bool:
    return (
        "photo" in message
        and message.file is not None
        and png_size(message.file.data) == (WIDTH_PX, HEIGHT_PX)
    )


async def bot_posts(chat: SimChat, bot: BotAccount, count: int) -> list[StoredMessage]:
    for _ in range(200):
        said = [m for m in chat.messages if m.bot_id == bot.id]
        if len(said) >= count:
            return said
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} bot messages in {chat.id}, got {chat.messages}")


async def quietly(chat: SimChat, bot: BotAccount, seconds: float = 0.5) -> list[StoredMessage]:
    """What the bot posted in ``chat`` after a moment in which it could have posted more."""
    await asyncio.sleep(seconds)
    return [m for m in chat.messages if m.bot_id == bot.id]


# ----------------------------------------------------------------------------------- /stats


async def test_an_admins_stats_is_a_chart_with_the_figures(
    app: Application, telegram_bot: BotAccount, boss: SimUser, groups: Groups
) -> None:
    [answer] = await replies(boss, telegram_bot, "/stats")

    assert is_chart(answer)
    # The last 30 days: the week of 2 March and February's bad visit (score 1, rude, a case).
    assert answer.caption is not None
    assert answer.caption.splitlines() == [
        "📊 The last 30 days · all locations",
        "Surveys sent: 12 · answered 10 (83%)",
        "CSAT: 33% satisfied (4–5) of 6 · average 2.7/5",
        "NPS: +25 of 4 · average 7.2/10",
        "Sentiment: positive 38% · neutral 8% · negative 54%",
        "Top reasons: Waited too long 3, Friendly staff 2, Rude staff 2",
        "Cases: 5 opened · 3 open now, 2 overdue",
        "Median first response 30 min · resolution 4.0 h",
        "Recovered: 50% of 2 follow-ups answered",
        "Heard by asking: 71% of 7 negative experiences came from surveys, not volunteered"
        " complaints",
        "As of Sun 08 Mar 12:00",
    ]


async def test_a_period_and_a_location(
    app: Application, telegram_bot: BotAccount, boss: SimUser, groups: Groups
) -> None:
    [answer] = await replies(boss, telegram_bot, "/stats 7d downtown")

    assert is_chart(answer)
    assert answer.caption is not None
    lines = answer.caption.splitlines()
    assert lines[:5] == [
        "📊 The last 7 days · Downtown",
        "Surveys sent: 6 · answered 5 (83%)",
        "CSAT: 40% satisfied (4–5) of 5 · average 3.0/5",
        "Sentiment: positive 40% · negative 60%",
        "Top reasons: Friendly staff 2, Waited too long 2, Rude staff 1",
    ]
    assert "Cases: 3 opened · 2 open now, 2 overdue" in lines
    assert "Heard by asking: 100% of 3" in answer.caption


async def test_a_bad_period_and_an_unknown_place_are_explained(
    app: Application, telegram_bot: BotAccount, boss: SimUser, groups: Groups
) -> None:
    assert await ask(boss, telegram_bot, "/stats 2026-13 Downtown") == (
        "'2026-13' has a date that does not exist (write 2026-11-05)"
    )
    assert await ask(boss, telegram_bot, "/stats 9999d") == (
        "'9999d' reaches back more than ten years: use all instead"
    )
    assert await ask(boss, telegram_bot, "/stats 7d Uptown") == (
        "I have no visits recorded at 'Uptown'. Known locations: Airport, Downtown.\n"
        "Usage: /stats [period] [location], e.g. /stats 7d Downtown."
    )
    assert await ask(boss, telegram_bot, "/stats fortnight") == (
        "I have no visits recorded at 'fortnight'. Known locations: Airport, Downtown.\n"
        "Usage: /stats [period] [location], e.g. /stats 7d Downtown."
    )


async def test_nothing_in_the_period_is_said_in_words_without_a_chart(
    app: Application, telegram_bot: BotAccount, boss: SimUser, groups: Groups
) -> None:
    [answer] = await replies(boss, telegram_bot, "/stats 2025")

    assert "photo" not in answer
    assert answer.text == (
        "Nothing recorded for all locations in 2025: no surveys sent, no answers, no cases."
    )


async def test_a_staff_chat_sees_what_it_handles(
    app: Application, telegram_bot: BotAccount, maria: SimUser, groups: Groups
) -> None:
    await maria.send_to_chat(telegram_bot, groups.airport, "/stats 7d")
    [answer] = await bot_posts(groups.airport, telegram_bot, 1)

    assert is_chart(answer)
    assert answer.caption is not None
    lines = answer.caption.splitlines()
    # The Airport's surveys, plus the Downtown case routed to this chat (score 2).
    assert lines[:4] == [
        "📊 The last 7 days · Airport, and the cases routed to this chat",
        "Surveys sent: 5 · answered 4 (80%)",
        "CSAT: 0% satisfied (4–5) of 1 · average 2.0/5",
        "NPS: +25 of 4 · average 7.2/10",
    ]
    assert "Cases: 2 opened · 1 open now, 0 overdue" in lines

    await maria.send_to_chat(telegram_bot, groups.airport, "/stats 7d Downtown")
    said = await bot_posts(groups.airport, telegram_bot, 2)
    assert said[-1].text == (
        "Downtown is not among this chat's locations (Airport, and the cases routed to this chat)."
    )


async def test_stats_is_not_served_in_a_group_that_is_no_staff_chat(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, maria: SimUser, groups: Groups
) -> None:
    lounge = emulator.add_group("Lounge", members=[maria])
    emulator.add_bot_to_chat(telegram_bot, lounge)

    await maria.send_to_chat(telegram_bot, lounge, "/stats")

    assert await quietly(lounge, telegram_bot) == []


async def test_a_customers_stats_is_an_unknown_command(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, groups: Groups
) -> None:
    mei = emulator.add_user(first_name="Mei", user_id=MEI)

    assert await ask(mei, telegram_bot, "/stats 7d Downtown") == unknown_command_reply("Mei")


# ------------------------------------------------------------------------------ weekly digest


async def test_every_staff_chat_gets_last_weeks_digest_once(
    app: Application, telegram_bot: BotAccount, clock: FakeClock, groups: Groups
) -> None:
    clock.set(MONDAY_9 - timedelta(minutes=1))
    assert await quietly(groups.everyone, telegram_bot) == []

    clock.set(MONDAY_9)
    [everyone] = await bot_posts(groups.everyone, telegram_bot, 1)
    [airport] = await bot_posts(groups.airport, telegram_bot, 1)
    [rude] = await bot_posts(groups.rude, telegram_bot, 1)
    [quiet] = await bot_posts(groups.quiet, telegram_bot, 1)

    assert is_chart(everyone) and is_chart(airport) and is_chart(rude)
    assert everyone.caption is not None and airport.caption is not None
    assert everyone.caption.splitlines()[:3] == [
        "Weekly digest",
        "📊 The week of 2 Mar 2026 · all locations",
        "Surveys sent: 11 · answered 9 (82%)",
    ]
    assert rude.caption == everyone.caption  # a rule on a reason alone: every location
    assert airport.caption.splitlines()[:3] == [
        "Weekly digest",
        "📊 The week of 2 Mar 2026 · Airport, and the cases routed to this chat",
        "Surveys sent: 5 · answered 4 (80%)",
    ]
    assert quiet.text == (
        "📊 Quiet week: nothing recorded for the cases routed to this chat"
        " in the week of 2 Mar 2026."
    )
    assert "photo" not in quiet

    clock.advance(timedelta(hours=1))
    for group in (groups.everyone, groups.airport, groups.rude, groups.quiet):
        assert len(await quietly(group, telegram_bot, 0.2)) == 1


async def test_setting_the_slot_moves_the_digest(
    app: Application, telegram_bot: BotAccount, boss: SimUser, clock: FakeClock, groups: Groups
) -> None:
    assert "is now" in await ask(boss, telegram_bot, "/set weekly_digest tue 10:00")
    await app.digest.settled()

    clock.set(MONDAY_9 + timedelta(minutes=5))
    assert await quietly(groups.everyone, telegram_bot) == []

    clock.set(datetime(2026, 3, 10, 10, 0, tzinfo=UTC))
    [digest] = await bot_posts(groups.everyone, telegram_bot, 1)
    assert digest.caption is not None
    assert digest.caption.startswith("Weekly digest\n📊 The week of 2 Mar 2026 · all locations")

    assert "is now" in await ask(boss, telegram_bot, "/set weekly_digest off")
    await app.digest.settled()
    clock.set(datetime(2026, 3, 17, 10, 0, tzinfo=UTC))
    assert len(await quietly(groups.everyone, telegram_bot)) == 1
