"""Admins manage reason chips (/reasons) and routing rules (/routes, /route) from their private
chat, end to end: each change is checked where customers and staff notice it — the chips after a
low score, the staff chat a case's card lands in — and in the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import SimChat, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from handlers import admin_reasons, admin_routes
from storage.models import AuditEntry, Reason, RoutingRule
from tests.e2e.conftest import BUSINESS, QUICK, UNPACED, ask, customers, e2e_settings, running
from tests.e2e.conftest import visits_due_now as due_now
from tests.e2e.test_conversation import next_message, score_data, settle

BOSS = 5_200_001  # an admin through ADMIN_IDS
CARL = 5_200_002  # not an admin

DEFAULT_CHIPS = [
    "Rude or indifferent staff",
    "Waited too long",
    "Poor quality of work",
    "Item out of stock",
    "Unclean premises",
    "Kept on hold",
    "Staff lacked knowledge",
    "Pushy selling",
    "Treated with disrespect",
    "Other",
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[BOSS], worker_poll_interval=0.05)


@pytest.fixture
async def app(make_app, emulator: Emulator, clock: FakeClock) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK))) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", last_name="Boss", user_id=BOSS)


@pytest.fixture
def carl(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Carl", user_id=CARL)


async def low_score(
    app: Application, emulator: Emulator, bot: BotAccount, name: str, *, location="Downtown"
) -> tuple[SimUser, StoredMessage]:
    """A customer who scored their visit 2: they and the apology with its chips."""
    [person] = await customers(app, emulator, bot, 1, prefix=name)
    await due_now(app, [person], locations=(location,))
    await emulator.wait_for(lambda: person.inbox(bot), timeout=10)
    survey = person.inbox(bot)[0]
    await person.tap(bot, survey, score_data(survey, 2))
    return person, await next_message(person, bot, 2)


def chips(apology: StoredMessage) -> list[str]:
    """The reason chips under the apology, in order (Done left out)."""
    labels = [button["text"] for button in apology.buttons]
    assert labels[-1] == "Done"
    return labels[:-1]


async def choose(
    app: Application, person: SimUser, bot: BotAccount, apology: StoredMessage, label: str
) -> None:
    await person.tap(bot, apology, label=label)
    await settle(app)


async def finish(person: SimUser, bot: BotAccount, apology: StoredMessage) -> None:
    """Done, a comment, and "yes, contact me" (which posts the case's card at once)."""
    await person.tap(bot, person.chat_with(bot).message(apology.message_id), label="Done")
    await next_message(person, bot, 3)
    await person.send(bot, "Forty minutes for a coffee.")
    ask_contact = await next_message(person, bot, 4)
    await person.tap(bot, ask_contact, label="Yes, please")
    await next_message(person, bot, 5)


async def staff_group(app: Application, emulator: Emulator, bot: BotAccount, title: str) -> SimChat:
    group = emulator.add_group(title, supergroup=True)
    emulator.add_bot_to_chat(bot, group)
    registration = await app.staff_chats.register(group.id, by=BOSS)
    assert registration.registered, registration
    return group


def cards(chat: SimChat, bot: BotAccount) -> list[str]:
    return [m.text or "" for m in chat.messages if m.bot_id == bot.id]


async def cards_in(chat: SimChat, bot: BotAccount, count: int, clock: FakeClock) -> None:
    """Wait for the chat's ``count``-th card. A chat gets a card every few seconds (18 a
    minute), and a card waiting for its turn is a job due by the bot's clock: move it on."""
    for _ in range(100):
        if len(cards(chat, bot)) >= count:
            return
        clock.advance(seconds=1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} cards, got {cards(chat, bot)}")


async def audit(app: Application) -> list[tuple[str, int | None, str | None, str | None]]:
    async with app.session_factory() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.actor_id, e.actor_name, e.target) for e in entries]


def unknown_command_reply(first_name: str) -> str:
    help_ = texts.render(texts.HELP, business=BUSINESS)
    return f"{texts.render(texts.UNKNOWN_COMMAND, name=first_name)}\n\n{help_}"


# -- /reasons ------------------------------------------------------------------------------------


async def test_reasons_lists_the_chips_and_an_added_one_is_offered_to_customers(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    listing = await ask(boss, telegram_bot, "/reasons")
    lines = listing.splitlines()
    assert lines[0] == admin_reasons.LIST_HEADING
    assert lines[1:4] == [
        "1. Rude or indifferent staff — rude_staff · no answers yet",
        "2. Waited too long — long_wait · no answers yet",
        "3. Poor quality of work — poor_quality · no answers yet",
    ]
    assert lines[10] == "10. Other — other · no answers yet"
    assert lines[-1] == admin_reasons.LIST_HINT

    assert await ask(boss, telegram_bot, "/reasons add  Cold   food") == (
        "Added reason 11, “Cold food” (code cold_food). Customers are offered it from now on."
    )
    anna, apology = await low_score(app, emulator, telegram_bot, "Anna")
    assert chips(apology) == [*DEFAULT_CHIPS, "Cold food"]
    await choose(app, anna, telegram_bot, apology, "Cold food")

    listing = await ask(boss, telegram_bot, "/reasons")
    assert "11. Cold food — cold_food · 1 answer" in listing.splitlines()
    assert await audit(app) == [("reason.add", BOSS, "Bea Boss", "reason:cold_food")]


async def test_hidden_rename_and_move_change_what_the_next_customer_sees(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    anna, apology = await low_score(app, emulator, telegram_bot, "Anna")
    await choose(app, anna, telegram_bot, apology, "Kept on hold")

    assert await ask(boss, telegram_bot, "/reasons hide on_hold") == (
        "“Kept on hold” is hidden: customers are no longer offered it. The answers that chose it "
        "(1) stay in its history and the statistics. /reasons show on_hold offers it again."
    )
    listing = await ask(boss, telegram_bot, "/reasons")
    assert listing.split("\n\n")[1].splitlines() == [
        admin_reasons.HIDDEN_HEADING,
        "10. Kept on hold — on_hold · hidden · 1 answer",
    ]
    assert await ask(boss, telegram_bot, "/reasons rename 1 Staff were rude") == (
        "Reason 1 (rude_staff) is now “Staff were rude” (was “Rude or indifferent staff”).\n"
        + admin_reasons.RENAMED_TRANSLATED
    )
    assert await ask(boss, telegram_bot, "/reasons move other 1") == (
        "“Other” moved from place 9 to 1."
    )

    _, apology = await low_score(app, emulator, telegram_bot, "Boris")
    assert chips(apology) == [
        "Other",
        "Staff were rude",
        "Waited too long",
        "Poor quality of work",
        "Item out of stock",
        "Unclean premises",
        "Staff lacked knowledge",
        "Pushy selling",
        "Treated with disrespect",
    ]

    # Shown again, it comes back last, with its history.
    assert await ask(boss, telegram_bot, "/reasons show 10") == (
        "“Kept on hold” is offered again, as number 10."
    )
    _, apology = await low_score(app, emulator, telegram_bot, "Chen")
    assert chips(apology)[-1] == "Kept on hold"
    assert [entry[0] for entry in await audit(app)] == [
        "reason.hide",
        "reason.rename",
        "reason.move",
        "reason.show",
    ]


async def test_wrong_reasons_commands_answer_with_usage_and_limits(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    assert await ask(boss, telegram_bot, "/reasons delete 3") == admin_reasons.USAGE
    assert await ask(boss, telegram_bot, "/reasons move 3 first") == (
        "Usage: /reasons move <n|code> <new place>, e.g. /reasons move long_wait 1"
    )
    assert await ask(boss, telegram_bot, "/reasons hide") == (
        "Usage: /reasons hide <n|code>, e.g. /reasons hide 3"
    )
    assert await ask(boss, telegram_bot, "/reasons move other 12") == (
        "Places go from 1 to 10. For example: /reasons move other 1."
    )
    assert await ask(boss, telegram_bot, f"/reasons add {'x' * 65}") == (
        "That label has 65 characters; a chip shows at most 64. Please type a shorter one."
    )
    assert await ask(boss, telegram_bot, "/reasons add waited too LONG") == (
        "Reason 2 is called “Waited too long” already. Please choose another label."
    )
    assert await ask(boss, telegram_bot, "/reasons rename 42 Slow") == (
        "I know no reason “42”. Please give its number or its code as /reasons lists them."
    )
    for n in range(10):
        await ask(boss, telegram_bot, f"/reasons add Extra {n}")
    assert await ask(boss, telegram_bot, "/reasons add One more") == (
        "Customers are offered 20 reasons already, the most that fit as chips. Hide one first "
        "(/reasons hide <n|code>)."
    )
    assert len(await audit(app)) == 10  # only the ten that were added


# -- /routes and /route --------------------------------------------------------------------------


async def test_a_route_sends_matching_cases_to_its_chat_until_removed(
    app: Application,
    emulator: Emulator,
    telegram_bot: BotAccount,
    boss: SimUser,
    clock: FakeClock,
) -> None:
    downtown = await staff_group(app, emulator, telegram_bot, "Downtown team")
    old_town = await staff_group(app, emulator, telegram_bot, "Old Town team")
    assert await ask(boss, telegram_bot, "/routes") == "\n".join(
        [
            admin_routes.ROUTES_NONE,
            "",
            "When no rule matches, a case goes to the default chat: "
            f"Downtown team ({downtown.id}).",
            "",
            admin_routes.ROUTES_HINT,
        ]
    )

    added = await ask(
        boss,
        telegram_bot,
        '/route add location="Old Town" reason=“Waited too long” -> old town team',
    )
    assert (
        added
        == f'Added rule 1: location="Old Town" reason=long_wait → Old Town team ({old_town.id}).'
    )
    listing = (await ask(boss, telegram_bot, "/routes")).splitlines()
    assert listing[:2] == [
        admin_routes.ROUTES_HEADING,
        f'1. location="Old Town" reason=long_wait → Old Town team ({old_town.id})',
    ]

    # Waited too long, in Old Town: the Old Town team gets the card.
    anna, apology = await low_score(app, emulator, telegram_bot, "Anna", location="Old Town")
    await choose(app, anna, telegram_bot, apology, "Waited too long")
    await finish(anna, telegram_bot, apology)
    await cards_in(old_town, telegram_bot, 1, clock)
    assert "Anna0" in cards(old_town, telegram_bot)[0]
    # Another reason in Old Town does not match: the default chat.
    boris, apology = await low_score(app, emulator, telegram_bot, "Boris", location="Old Town")
    await choose(app, boris, telegram_bot, apology, "Unclean premises")
    await finish(boris, telegram_bot, apology)
    await cards_in(downtown, telegram_bot, 1, clock)
    assert "Boris0" in cards(downtown, telegram_bot)[0]

    assert await ask(boss, telegram_bot, "/route remove 1") == (
        f'Removed rule 1: location="Old Town" reason=long_wait → Old Town team ({old_town.id}).'
    )
    chen, apology = await low_score(app, emulator, telegram_bot, "Chen", location="Old Town")
    await choose(app, chen, telegram_bot, apology, "Waited too long")
    await finish(chen, telegram_bot, apology)
    await cards_in(downtown, telegram_bot, 2, clock)
    assert "Chen0" in cards(downtown, telegram_bot)[1]
    assert len(cards(old_town, telegram_bot)) == 1
    assert [entry[:3] for entry in await audit(app) if entry[0].startswith("route.")] == [
        ("route.add", BOSS, "Bea Boss"),
        ("route.remove", BOSS, "Bea Boss"),
    ]


async def test_wrong_route_commands_say_what_to_type_and_change_nothing(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    await staff_group(app, emulator, telegram_bot, "Downtown team")
    usage = admin_routes.ADD_USAGE
    assert await ask(boss, telegram_bot, "/route add location=Downtown -> Kitchen") == (
        "“Kitchen” is not a staff chat. To register one, add me to the group and send "
        "/staff_here there; /staffchat list shows those registered."
    )
    assert await ask(boss, telegram_bot, "/route add severity=urgent -> Downtown team") == (
        f"“urgent” is not a severity. Please use one of: low, medium, high, critical.\n{usage}"
    )
    assert await ask(boss, telegram_bot, "/route add -> Downtown team") == (
        f"{admin_routes.PROBLEMS[admin_routes.Problem.NO_MATCHERS]}\n{usage}"
    )
    assert await ask(boss, telegram_bot, "/route add location=Downtown Downtown team") == (
        "I cannot read “Downtown” there. A value with spaces goes in quotes, e.g. "
        f'location="Old Town".\n{usage}'
    )
    assert await ask(boss, telegram_bot, "/route add location=Downtown") == (
        f"Please put -> between the matchers and the staff chat.\n{usage}"
    )
    assert await ask(boss, telegram_bot, "/route add reason=cold_soup -> Downtown team") == (
        "I know no reason “cold_soup”. Please use a code or a label from /reasons, such as: "
        "rude_staff, long_wait, poor_quality, out_of_stock, unclean, on_hold, "
        "lacked_knowledge, pushy_selling, disrespect, other."
    )
    assert await ask(boss, telegram_bot, "/route remove first") == admin_routes.REMOVE_USAGE
    assert await ask(boss, telegram_bot, "/route remove 1") == admin_routes.REMOVE_NONE
    assert await ask(boss, telegram_bot, "/route") == admin_routes.USAGE
    assert await ask(boss, telegram_bot, "/routes all") == admin_routes.ROUTES_USAGE

    async with app.session_factory() as session:
        assert list(await session.scalars(select(RoutingRule))) == []
    assert [entry for entry in await audit(app) if entry[0].startswith("route.")] == []


# -- who may -------------------------------------------------------------------------------------


async def test_a_customer_gets_what_an_unknown_command_gets(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, carl: SimUser
) -> None:
    await staff_group(app, emulator, telegram_bot, "Downtown team")
    expected = unknown_command_reply("Carl")
    assert await ask(carl, telegram_bot, "/frobnicate") == expected
    for command in (
        "/reasons",
        "/reasons add Cold food",
        "/reasons hide 1",
        "/routes",
        "/route add location=Downtown -> Downtown team",
        "/route remove 1",
    ):
        assert await ask(carl, telegram_bot, command) == expected, command
    async with app.session_factory() as session:
        assert list(await session.scalars(select(RoutingRule))) == []
        hidden = await session.scalars(select(Reason.code).where(Reason.hidden.is_(True)))
        assert list(hidden) == []
        assert await session.scalar(select(Reason.id).where(Reason.code == "cold_food")) is None
    assert [entry[0] for entry in await audit(app)] == ["staff_chat.added"]  # the set-up only
