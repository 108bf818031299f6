"""The authorisation matrix: every admin command, case button and API endpoint, tried by everyone.

People: someone the bot has never heard of (anonymous), the case's own customer, a member of
another staff chat, a member of the case's staff chat, and an admin. Only the right ones
succeed; the others see the refusal they are meant to see (an admin command answers exactly as
a made-up command does; a case button says "Not allowed"), and nothing changes in the database.

The matrix is built from the code's own lists (`bot.menus.ADMIN_COMMAND_NAMES`, the callback
data classes of `bot.callbacks`, the HTTP app's routes), so a new command, button or endpoint
that is not in it fails here until someone decides who may use it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram.filters.callback_data import CallbackData
from sqlalchemy import select

from bot import callbacks, texts
from bot.app import Application
from bot.callbacks import CaseAction, CaseCallback, OfferCallback, SentimentCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimChat, SimUser
from bot.emulator.world import StoredMessage
from bot.flood import FloodGuard
from bot.http import build_http_app
from bot.menus import ADMIN_COMMAND_NAMES
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from handlers.cases import NOT_ALLOWED
from storage.models import Base, Case, CaseState
from tests.e2e.conftest import QUICK, UNPACED, e2e_settings, running
from tests.e2e.test_cases import ADMIN_ID, bot_said, staff_group, unhappy_customer
from tests.e2e.test_conversation import settle

KEY = "authz-key-0123456789abcdef"

# Each admin command, as an admin would use it, and whether it changes the database.
ADMIN_COMMANDS: dict[str, tuple[str, bool]] = {
    "settings": ("/settings", False),
    "set": ("/set survey_delay 45m", True),
    "reset": ("/reset survey_delay", True),
    "texts": ("/texts", False),
    "text": ("/text thanks_final en Thank you, {name}! See you soon.", True),
    "text_reset": ("/text_reset thanks_final en", True),
    "reasons": ("/reasons add Too noisy", True),
    "routes": ("/routes", False),
    "route": ("/route add location=Uptown -> {other_chat}", True),
    "staffchat": ("/staffchat list", False),
    "link": ("/link Downtown", False),
    "test_survey": ("/test_survey", True),
    "export": ("/export", False),
    "admins": ("/admins add 424242", True),
    "audit": ("/audit", False),
    "stats": ("/stats", False),
}

# The buttons on a case card and the steps they lead to (see bot/case_card.py).
CASE_BUTTON_CLASSES = {CaseCallback, SentimentCallback, OfferCallback}
# The customer's own buttons: tested by the conversation tests, not staff business.
CUSTOMER_BUTTON_CLASSES = {
    callbacks.ScoreCallback,
    callbacks.ReasonCallback,
    callbacks.StepCallback,
    callbacks.ConfirmCallback,
    callbacks.LanguageCallback,
    callbacks.FollowupCallback,
}


def case_buttons(case_id: int) -> dict[str, str]:
    """Every case button's data for one case, in an order staff could tap them."""
    buttons = {
        "full text": CaseCallback(case_id=case_id, action=CaseAction.FULL_TEXT).pack(),
        "sentiment…": CaseCallback(case_id=case_id, action=CaseAction.SENTIMENT).pack(),
        "sentiment: negative": SentimentCallback(case_id=case_id, label="negative").pack(),
        "sentiment: back": SentimentCallback(case_id=case_id, label="back").pack(),
        "take": CaseCallback(case_id=case_id, action=CaseAction.TAKE).pack(),
        "resolve": CaseCallback(case_id=case_id, action=CaseAction.RESOLVE).pack(),
        "offer: voucher": OfferCallback(case_id=case_id, offer="voucher").pack(),
        "reopen": CaseCallback(case_id=case_id, action=CaseAction.REOPEN).pack(),
    }
    return buttons


# API routes: (method, path) → (status without a key, status with a wrong key, with a key).
API_ROUTES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200),
    ("GET", "/api/v1/openapi.json"): (200, 200, 200),  # the description is public
    ("POST", "/api/v1/visits"): (401, 401, 201),
    ("POST", "/api/v1/visits:batch"): (401, 401, 200),
    ("GET", "/api/v1/visits/{visit_id}"): (401, 401, 200),
    ("GET", "/api/v1/customers/{ref}/link"): (401, 401, 200),
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, worker_poll_interval=0.05, admin_ids=[ADMIN_ID], api_keys=KEY)


@pytest.fixture
async def app(make_app, emulator: Emulator, clock: FakeClock) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    made = make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK))
    # Dozens of commands a second from one person: the flood guard would rightly leave out
    # small talk, which is not what this test is about.
    for middleware in made.dispatcher.message.outer_middleware:
        if isinstance(middleware, FloodGuard):
            middleware.limit = 10_000
    async with running(made) as started:
        yield started


class World:
    def __init__(self, app: Application, emulator: Emulator, bot: BotAccount) -> None:
        self.app, self.emulator, self.bot = app, emulator, bot
        self.admin = emulator.add_user(first_name="Ada", user_id=ADMIN_ID)
        self.staff = emulator.add_user(first_name="Maria")
        self.other_staff = emulator.add_user(first_name="Olga")
        self.anonymous = emulator.add_user(first_name="Nobody")
        self.customer: SimUser
        self.group: SimChat
        self.other_group: SimChat
        self.lobby: SimChat

    async def build(self) -> None:
        self.group = await staff_group(self.app, self.emulator, self.bot, [self.staff, self.admin])
        self.other_group = self.emulator.add_group("Uptown team", members=[self.other_staff])
        self.emulator.add_bot_to_chat(self.bot, self.other_group)
        assert (await self.app.staff_chats.register(self.other_group.id, by=ADMIN_ID)).registered
        # A group that is no staff chat, where the bot has said something (someone the bot
        # never heard of can only send button data on a message of the bot's they can see).
        self.lobby = self.emulator.add_group("Lobby", members=[self.anonymous])
        self.emulator.add_bot_to_chat(self.bot, self.lobby)
        await self.app.bot.send_message(self.lobby.id, "Welcome")
        await self.app.bot.send_message(self.other_group.id, "Hello, Uptown")
        self.customer = await unhappy_customer(self.app, self.emulator, self.bot, contact=True)
        await bot_said(self.group, self.bot, 1)
        await settle(self.app)

    def people(self) -> dict[str, SimUser]:
        return {
            "anonymous": self.anonymous,
            "customer": self.customer,
            "staff of another chat": self.other_staff,
            "staff": self.staff,
            "admin": self.admin,
        }


@pytest.fixture
async def world(app: Application, emulator: Emulator, telegram_bot: BotAccount) -> World:
    made = World(app, emulator, telegram_bot)
    await made.build()
    return made


async def snapshot(app: Application) -> dict[str, list[str]]:
    """Every row of every table, as text: what "nothing changed" is checked against."""
    rows: dict[str, list[str]] = {}
    async with app.session_factory() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table))
            rows[table.name] = sorted(repr(tuple(row)) for row in result)
    return rows


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


async def replies_to(
    person: SimUser, bot: BotAccount, app: Application, text: str
) -> list[StoredMessage]:
    """Send ``text`` in the private chat; every message the bot sent there in answer."""
    chat = person.chat_with(bot)
    before = len(chat.messages)
    await person.send(bot, text)
    for _ in range(200):
        await asyncio.sleep(0.05)
        if app.in_flight.count == 0 and any(m.bot_id == bot.id for m in chat.messages[before:]):
            break
    await settle(app)
    await asyncio.sleep(0.1)  # a photo or document may follow its text
    return [m for m in chat.messages[before:] if m.bot_id == bot.id]


# -- admin commands ----------------------------------------------------------------------------


def test_the_matrix_names_every_admin_command() -> None:
    assert set(ADMIN_COMMANDS) == ADMIN_COMMAND_NAMES


async def test_admin_commands_work_for_admins_only(
    app: Application, world: World, telegram_bot: BotAccount
) -> None:
    other_chat = str(world.other_group.id)
    for who, person in world.people().items():
        if who == "admin":
            continue
        [unknown] = await replies_to(person, telegram_bot, app, "/frobnicate")
        assert unknown.text.startswith(texts.UNKNOWN_COMMAND.english.split(",")[0])
        for name, (command, _) in ADMIN_COMMANDS.items():
            before = await snapshot(app)
            said = await replies_to(
                person, telegram_bot, app, command.replace("{other_chat}", other_chat)
            )
            assert [m.text for m in said] == [unknown.text], (who, name)
            assert changed(before, await snapshot(app)) == [], (who, name)

    admin = world.admin
    [unknown] = await replies_to(admin, telegram_bot, app, "/frobnicate")
    for name, (command, changes) in ADMIN_COMMANDS.items():
        before = await snapshot(app)
        said = await replies_to(
            admin, telegram_bot, app, command.replace("{other_chat}", other_chat)
        )
        assert said, name
        assert said[0].text != unknown.text, name
        if changes:
            assert changed(before, await snapshot(app)), f"/{name} changed nothing"


# -- case buttons ----------------------------------------------------------------------------------


def test_the_matrix_names_every_button() -> None:
    classes = {
        value
        for value in vars(callbacks).values()
        if inspect.isclass(value) and issubclass(value, CallbackData) and value is not CallbackData
    }
    assert classes == CASE_BUTTON_CLASSES | CUSTOMER_BUTTON_CLASSES
    actions = {
        CaseCallback.unpack(data).action
        for data in case_buttons(1).values()
        if data.startswith(f"{CaseCallback.__prefix__}:")
    }
    assert actions == set(CaseAction)


async def test_case_buttons_work_for_that_chats_staff_and_admins_only(
    app: Application, world: World, telegram_bot: BotAccount
) -> None:
    case = await the_case(app)
    card = world.group.message(case.card_message_id)
    assert card is not None
    buttons = case_buttons(case.id)
    # Where each outsider can send button data from: a message of the bot's they can see.
    outsiders: dict[str, tuple[SimUser, StoredMessage]] = {
        "anonymous": (world.anonymous, bot_message(world.lobby, telegram_bot)),
        "customer": (world.customer, world.customer.inbox(telegram_bot)[0]),
        "staff of another chat": (world.other_staff, bot_message(world.other_group, telegram_bot)),
    }
    for who, (person, message) in outsiders.items():
        for name, data in buttons.items():
            before = await snapshot(app)
            said_before = chat_sizes(world, telegram_bot)
            query = await person.tap(telegram_bot, message, data, forged=True)
            await answered(query)
            assert query.answer is not None and query.answer.get("text") == NOT_ALLOWED, (
                who,
                name,
            )
            await settle(app)
            assert changed(before, await snapshot(app)) == [], (who, name)
            assert chat_sizes(world, telegram_bot) == said_before, (who, name)

    # Staff of the case's chat, and an admin, each play every button on a case of their own.
    second = await unhappy_customer(app, world.emulator, telegram_bot, contact=True)
    await bot_said(world.group, telegram_bot, 2)
    await settle(app)
    assert second is not None
    async with app.session_factory() as session:
        cases = list(await session.scalars(select(Case).order_by(Case.id)))
    for person, mine in ((world.staff, cases[0]), (world.admin, cases[1])):
        await play_every_button(app, world, telegram_bot, person, mine)


async def play_every_button(
    app: Application, world: World, bot: BotAccount, person: SimUser, case: Case
) -> None:
    buttons = case_buttons(case.id)
    card = world.group.message(case.card_message_id)
    assert card is not None
    for name, data in buttons.items():
        before = await snapshot(app)
        target = card
        if name.startswith("offer"):
            # The offer buttons come on the "what was offered?" prompt Resolve posted.
            target = [
                m
                for m in world.group.messages
                if m.bot_id == bot.id and any(data == b for b in m.callback_data)
            ][-1]
        query = await person.tap(bot, target, data, forged=True)
        await answered(query)
        await settle(app)
        assert query.answer is not None
        assert query.answer.get("text") != NOT_ALLOWED, (person.first_name, name)
        after = await snapshot(app)
        state = (await case_by_id(app, case.id)).state
        if name == "take":
            assert state is CaseState.TAKEN, person.first_name
        elif name == "offer: voucher":
            assert state is CaseState.RESOLVED, person.first_name
        elif name == "reopen":
            assert state is CaseState.REOPENED, person.first_name
        elif name == "sentiment: negative":
            assert changed(before, after) or query.answer.get("text", "").startswith("It is")


def bot_message(chat: SimChat, bot: BotAccount) -> StoredMessage:
    return [m for m in chat.messages if m.bot_id == bot.id][-1]


def chat_sizes(world: World, bot: BotAccount) -> dict[str, int]:
    return {
        "staff chat": len(world.group.messages),
        "other staff chat": len(world.other_group.messages),
        "customer": len(world.customer.inbox(bot)),
    }


async def answered(query: Any) -> None:
    for _ in range(200):
        if query.answered:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the tap {query.data!r} was never answered")


async def the_case(app: Application) -> Case:
    async with app.session_factory() as session:
        case = await session.scalar(select(Case).order_by(Case.id))
    assert case is not None and case.card_message_id is not None
    return case


async def case_by_id(app: Application, case_id: int) -> Case:
    async with app.session_factory() as session:
        case = await session.get(Case, case_id)
    assert case is not None
    return case


# -- the HTTP API ------------------------------------------------------------------------------


async def test_the_matrix_names_every_api_route(app: Application) -> None:
    http = build_http_app(app.settings, app.engine, visits=app.visits, clock=app.clock)
    routes = {
        (route.method, route.resource.canonical)
        for route in http.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    # The customer-link route is only there when the app can make links (it always can).
    assert routes | {("GET", "/api/v1/customers/{ref}/link")} == set(API_ROUTES)


async def test_api_routes_need_a_key_and_a_refusal_changes_nothing(app: Application) -> None:
    visit = {
        "visit_id": "V-1",
        "customer": {"ref": "C-1", "name": "Anna"},
        "occurred_at": "2026-01-05T10:00:00+00:00",
    }
    bodies = {
        "/api/v1/visits": visit,
        "/api/v1/visits:batch": {"visits": [{**visit, "visit_id": "V-2"}]},
    }
    paths = {
        "/api/v1/visits/{visit_id}": "/api/v1/visits/V-1",
        "/api/v1/customers/{ref}/link": "/api/v1/customers/C-1/link",
    }
    callers = {
        "anonymous": {},
        "a wrong key": {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        "the key": {"Authorization": f"Bearer {KEY}"},
    }
    async with aiohttp.ClientSession(base_url=app.http_url) as client:
        for column, (caller, headers) in enumerate(callers.items()):
            for (method, route), expected in API_ROUTES.items():
                before = await snapshot(app)
                path = paths.get(route, route)
                async with client.request(
                    method, path, json=bodies.get(route), headers=headers
                ) as response:
                    body = await response.text()
                    assert response.status == expected[column], (caller, method, route, body)
                if expected[column] == 401:
                    assert changed(before, await snapshot(app)) == [], (caller, route)
                    assert "Bearer" in response.headers.get("WWW-Authenticate", "")
