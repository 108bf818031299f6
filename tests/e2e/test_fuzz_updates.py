"""Random and malformed updates through the real dispatcher: no crash, every well-formed
customer message answered, nothing private leaked.

Updates are built from the Bot API spec (`bot/emulator/spec/api.min.json`) with hypothesis:
every field a type has is generated from its declared types, so media of every kind, forwarded
messages, polls, reactions, member changes and the rest come out as Telegram would shape them.
On top of that come the inputs that hurt: huge, empty, right-to-left, emoji and control-character
texts; commands with junk after them; unknown callback data and forged data for the bot's real
buttons (other people's surveys, cases, steps that are over); messages in groups and channels;
edited messages.

They go to `Dispatcher.feed_update` of the running application (its real routers, a real
database, the bot talking to the emulator), one at a time, so a handler's exception reaches the
test. People and chats are the emulator's, so every reply the bot makes is checked there.

The run is seeded (`derandomize`), so CI sees the same updates every time. `make test` feeds
10,000 on each backend: about 7 ms to generate one and 15 ms of database writes and Bot API calls
to handle it on an idle 2-core machine, so 3–4 minutes. HEARBACK_FUZZ_EXAMPLES=<n> feeds another
number (a small one helps while working on it); HEARBACK_FUZZ_SEED=<n> explores other updates
than CI's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import aiogram.types
import pytest
from aiogram.types import Update
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from bot import staff_texts
from bot.app import Application
from bot.callbacks import (
    CaseAction,
    CaseCallback,
    ConfirmCallback,
    FollowupCallback,
    LanguageCallback,
    OfferCallback,
    ReasonCallback,
    ScoreCallback,
    SentimentCallback,
    Step,
    StepCallback,
)
from bot.emulator import BotAccount, Emulator, Limits, SimChat, SimUser
from bot.emulator.world import CallbackQuery, Member, StoredMessage, command_entities
from bot.flood import FloodGuard
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from storage.models import Case, Survey
from tests.e2e.conftest import QUICK, UNPACED, customers, e2e_settings, running, visits_due_now
from tests.e2e.test_cases import ADMIN_ID, staff_group, unhappy_customer

SPEC = Path(__file__).resolve().parents[2] / "bot" / "emulator" / "spec" / "api.min.json"
EXAMPLES = int(os.environ.get("HEARBACK_FUZZ_EXAMPLES", "10000"))
# Other updates than CI's fixed ones, to explore: any number (CI leaves it unset).
EXPLORE_SEED = os.environ.get("HEARBACK_FUZZ_SEED")
# Bot API methods that put something in a chat the customer reads.
WRITES = {
    "sendmessage",
    "sendphoto",
    "senddocument",
    "copymessage",
    "forwardmessage",
    "editmessagetext",
    "editmessagereplymarkup",
    "editmessagecaption",
    "sendchataction",
}


@cache
def spec_types() -> dict[str, dict[str, Any]]:
    return json.loads(SPEC.read_text())["types"]


# -- values from the spec ----------------------------------------------------------------------

# Texts that have hurt bots before: nothing, whitespace, the longest Telegram allows, right-to-left
# and bidirectional marks, emoji with joiners and skin tones, control characters, lone
# surrogates' neighbours, HTML and Markdown that would break a parse mode, format strings.
ODD_TEXTS = [
    "",
    " ",
    "\n\n\n",
    "x" * 4096,
    "🙂" * 2048,
    "مرحبا، الخدمة كانت سيئة جدا",
    "\u202eevil\u202c",
    "שלום \u200f עולם",
    "👨‍👩‍👧‍👦🏳️‍🌈👍🏽",
    "\x00\x01\x02\x1b[31mred\x7f",
    "\ufeff\ufffe",
    "<b>bold</b> <a href='x'>",
    "*_`[bad](markdown",
    "{name} {0} %s %(x)s {{}} {",
    "very bad, rude and slow!!!",
    "很好，谢谢",
    "5",
    "/",
    "//",
    "/start " + "A" * 64,
    "/start ../../etc/passwd",
    "/start \u0000",
]
SHORT_ODD_TEXTS = [text for text in ODD_TEXTS if len(text) <= 64]
COMMANDS = [
    "start",
    "help",
    "stop",
    "forget",
    "language",
    "settings",
    "set",
    "reset",
    "admins",
    "audit",
    "stats",
    "export",
    "link",
    "text",
    "texts",
    "reasons",
    "route",
    "routes",
    "staffchat",
    "staff_here",
    "test_survey",
    "frobnicate",
]


def odd_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(ODD_TEXTS),
        st.text(max_size=300),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50),
    )


def command_text() -> st.SearchStrategy[str]:
    payload = st.one_of(st.just(""), odd_text(), st.from_regex(r"[A-Za-z0-9_-]{1,80}"))
    mention = st.sampled_from(["", "@hearback_test_bot", "@other_bot", "@"])
    return st.builds(
        lambda name, at, rest: f"/{name}{at} {rest}".rstrip(" ") if rest else f"/{name}{at}",
        st.sampled_from(COMMANDS),
        mention,
        payload,
    )


_ALWAYS = re.compile(r'always "([^"]+)"')


@cache
def spec_value(type_name: str, depth: int) -> st.SearchStrategy[Any]:
    """Any value of a Bot API type, as the spec describes it. One strategy per type and depth:
    built afresh inside a ``flatmap`` it was built and validated again at every draw, which
    took 40 % of the run."""
    if type_name.startswith("Array of "):
        inner = type_name[len("Array of ") :]
        if depth <= 0:
            return st.just([])
        return st.lists(spec_value(inner, depth - 1), max_size=2)
    if type_name == "Integer":
        return st.one_of(st.integers(0, 100), st.integers(-(2**52), 2**52))
    if type_name == "Float":
        return st.floats(-1e6, 1e6, allow_nan=False)
    if type_name == "Boolean":
        return st.booleans()
    if type_name == "True":
        return st.just(True)
    if type_name == "String":
        # Odd but of a size Telegram gives such fields (ids, names); texts and captions get the
        # huge ones (`odd_text`).
        return st.one_of(st.text(max_size=20), st.sampled_from(SHORT_ODD_TEXTS))
    return spec_object(type_name, depth)


@cache
def spec_object(type_name: str, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    kind = spec_types()[type_name]
    if kind.get("subtypes"):
        return st.one_of(*(spec_object(sub, depth) for sub in kind["subtypes"]))
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in kind.get("fields", []):
        fixed = _ALWAYS.search(field["description"])
        if fixed:
            strategy: st.SearchStrategy[Any] = st.just(fixed.group(1))
        elif field["name"] == "date" or field["name"].endswith("_date"):
            strategy = st.integers(0, 2**31 - 1)  # Unix time, as Telegram sends it
        else:
            strategy = st.one_of(*(spec_value(t, depth - 1) for t in field["types"]))
        if field["required"]:
            required[field["name"]] = strategy
        elif depth > 0:
            optional[field["name"]] = strategy
    if depth <= 0:
        optional = {}
    # Fields the installed aiogram requires that this copy of the spec does not have yet.
    model = getattr(aiogram.types, type_name, None)
    for name, info in getattr(model, "model_fields", {}).items():
        key = info.alias or name
        if info.is_required() and key not in required and info.annotation is bool:
            required[key] = st.booleans()
    # A few optional fields at a time: enough variety, and objects stay small.
    return st.fixed_dictionaries(required, optional=optional)


# The content of a message, one kind at a time (Telegram sends one).
MEDIA = [
    "photo",
    "video",
    "voice",
    "audio",
    "document",
    "sticker",
    "animation",
    "video_note",
    "location",
    "contact",
    "venue",
    "poll",
    "dice",
    "story",
    "game",
    "invoice",
    "checklist",
]


def message_content() -> st.SearchStrategy[dict[str, Any]]:
    fields = {f["name"]: f["types"] for f in spec_types()["Message"]["fields"]}
    media = [name for name in MEDIA if name in fields]
    text = st.one_of(odd_text(), command_text()).map(_text_content)
    item = st.sampled_from(media).flatmap(
        lambda name: st.tuples(st.just(name), spec_value(fields[name][0], 2))
    )
    caption = st.one_of(st.none(), odd_text())
    medium = st.builds(
        lambda pair, words: {pair[0]: pair[1], **({"caption": words} if words else {})},
        item,
        caption,
    )
    return st.one_of(text, text, medium)


def _text_content(words: str) -> dict[str, Any]:
    content: dict[str, Any] = {"text": words}
    entities = command_entities(words) if words else []
    if entities:
        content["entities"] = entities
    return content


# -- the world the updates land in -------------------------------------------------------------


class Fuzz:
    """The emulator's people and chats, the bot's real buttons, and what each update did."""

    def __init__(self, app: Application, emulator: Emulator, bot: BotAccount) -> None:
        self.app, self.emulator, self.bot = app, emulator, bot
        self.people: list[SimUser] = []
        self.groups: list[SimChat] = []
        self.real_buttons: list[str] = []
        self.update_id = 10_000_000
        self.answered = 0
        self.customer_messages = 0
        self.unreadable = 0
        self.feeding = 0.0  # seconds spent in the bot (the rest is generating updates)

    async def build(self) -> None:
        admin = self.emulator.add_user(first_name="Ada", user_id=ADMIN_ID)
        maria = self.emulator.add_user(first_name="Maria")
        staff = await staff_group(self.app, self.emulator, self.bot, [maria, admin])
        plain = self.emulator.add_group("Friends", members=[maria])
        self.emulator.add_bot_to_chat(self.bot, plain)
        self.groups = [staff, plain]
        # Customers with surveys out, one in the middle of a complaint (a case and its card).
        bob = await unhappy_customer(self.app, self.emulator, self.bot, contact=True)
        people = await customers(self.app, self.emulator, self.bot, 6, prefix="Fuzz")
        await visits_due_now(self.app, people[:4])
        await self.emulator.wait_for(lambda: all(p.inbox(self.bot) for p in people[:4]), 15)
        self.people = [bob, *people, admin, maria]
        async with self.app.session_factory() as session:
            survey_ids = list(await session.scalars(select(Survey.id)))
            case_ids = list(await session.scalars(select(Case.id)))
        buttons = [b for p in self.people for m in p.inbox(self.bot) for b in m.callback_data]
        for survey_id in survey_ids:
            buttons += [ScoreCallback(survey_id=survey_id, score=s).pack() for s in (0, 3, 5, 99)]
            buttons.append(ReasonCallback(answer_id=survey_id, reason_id=1).pack())
            buttons += [StepCallback(answer_id=survey_id, step=step).pack() for step in Step]
        for case_id in [*case_ids, 999_999]:
            buttons += [CaseCallback(case_id=case_id, action=a).pack() for a in CaseAction]
            buttons.append(OfferCallback(case_id=case_id, offer="voucher").pack())
            buttons.append(OfferCallback(case_id=case_id, offer="gold").pack())
            buttons.append(SentimentCallback(case_id=case_id, label="negative").pack())
            buttons.append(FollowupCallback(case_id=case_id, yes=False).pack())
        buttons += [ConfirmCallback(what=c, yes=True).pack() for c in ("stop", "forget")]
        buttons += [LanguageCallback(locale=code).pack() for code in ("en", "zh_Hans", "xx")]
        self.real_buttons = buttons
        self.customers = {p.id for p in self.people if p.id not in (ADMIN_ID, maria.id)}
        self.secrets = [self.bot.token, "Traceback", 'File "', "Exception", "sqlalchemy"]
        self.staff_words = [
            value
            for name, value in vars(staff_texts).items()
            if name.isupper() and isinstance(value, str) and len(value) > 25
        ]

    def next_id(self) -> int:
        self.update_id += 1
        return self.update_id

    # -- strategies --------------------------------------------------------------------------

    def updates(self) -> st.SearchStrategy[tuple[str, Any]]:
        person = st.sampled_from(self.people)
        group = st.sampled_from(self.groups)
        data = st.one_of(
            st.sampled_from(self.real_buttons),
            st.text(max_size=64),
            st.from_regex(r"(sc|rs|st|cf|lg|cs|cn|co|fu):[-0-9a-z:]{0,40}", fullmatch=True),
        )
        other_kinds = [
            name
            for name in ("my_chat_member", "chat_member", "message_reaction", "poll_answer")
            if any(f["name"] == name for f in spec_types()["Update"]["fields"])
        ]
        return st.one_of(
            st.tuples(st.just("private"), person, message_content()),
            st.tuples(st.just("private"), person, message_content()),
            st.tuples(st.just("edited"), person, odd_text().filter(bool)),
            st.tuples(st.just("group"), st.tuples(group, person), message_content()),
            st.tuples(st.just("channel"), st.just(None), message_content()),
            st.tuples(st.just("tap"), person, data),
            st.tuples(st.just("tap"), person, data),
            st.sampled_from(other_kinds).flatmap(
                lambda kind: st.tuples(
                    st.just(kind), st.tuples(person, group), spec_value(_field(kind), 2)
                )
            ),
        )

    # -- one update --------------------------------------------------------------------------

    async def feed(self, example: tuple[str, Any, Any]) -> None:
        kind, who, content = example
        answer_in: int | None = None  # the private chat that must get an answer
        query: CallbackQuery | None = None
        if kind == "private":
            who.started.add(self.bot.id)  # writing to the bot starts it, as in Telegram
            chat = who.chat_with(self.bot)
            message = self.emulator.world.new_message(chat, content, sender=who)
            payload: dict[str, Any] = {"message": message.data}
            if who.id in self.customers:
                answer_in = who.id
        elif kind == "edited":
            chat = who.chat_with(self.bot)
            message = self.emulator.world.new_message(chat, {"text": "first"}, sender=who)
            data = dict(message.data, text=content, edit_date=message.data["date"] + 1)
            payload = {"edited_message": data}
        elif kind == "group":
            chat, person = who
            if person.id not in chat.members:
                chat.members[person.id] = chat.members.get(person.id) or _member(person)
            message = self.emulator.world.new_message(chat, content, sender=person)
            payload = {"message": message.data}
        elif kind == "channel":
            payload = {"channel_post": _channel_post(content)}
        elif kind == "tap":
            chat = who.chat_with(self.bot)
            mine = [m for m in chat.messages if m.bot_id == self.bot.id]
            target: StoredMessage = (
                mine[-1]
                if mine
                else self.emulator.world.new_message(chat, {"text": "hi"}, sender=who)
            )
            query = CallbackQuery(
                id=str(5_000_000_000_000 + self.next_id()),
                user=who,
                bot=self.bot,
                message=target,
                data=content,
                created=self.emulator.world.now(),
            )
            self.emulator.world.queries[query.id] = query
            payload = {"callback_query": query.as_update_payload()}
        else:
            (person, group), value = who, content
            payload = {kind: _fit(kind, value, person, group, self.bot)}
        try:
            update = Update.model_validate(
                {"update_id": self.next_id(), **payload}, context={"bot": self.app.bot}
            )
        except ValidationError:
            # Shapes aiogram cannot read never reach a handler (polling could not parse them
            # either); counted, so the test notices if the generator drifts into those.
            self.unreadable += 1
            return
        self.feeding -= time.monotonic()
        calls_before = len(self.emulator.calls)
        # Every update is an outright failure if a handler raises: it propagates here.
        await asyncio.wait_for(self.app.dispatcher.feed_update(self.app.bot, update), 30)
        calls = self.emulator.calls[calls_before:]
        self.feeding += time.monotonic()
        self.check_nothing_leaked(calls)
        if query is not None:
            assert query.answered, f"tap {query.data!r} by {who!r} was not answered"
            self.answered += 1
        if answer_in is not None:
            self.customer_messages += 1
            # Answered in the chat, or, while the customer's case is open, passed to the staff
            # in its thread (a person answers those).
            chats = {answer_in, *(group.id for group in self.groups)}
            written = [
                c
                for c in calls
                if c.method.lower() in WRITES and c.params.get("chat_id") in chats and c.ok
            ]
            assert written, f"{who!r} got no answer to {str(content)[:200]!r}: {calls}"

    def check_nothing_leaked(self, calls: list[Any]) -> None:
        for call in calls:
            tap_answer = call.method.lower() == "answercallbackquery"
            if call.params.get("chat_id") not in self.customers and not tap_answer:
                continue
            said = " ".join(
                str(call.params.get(key) or "") for key in ("text", "caption", "reply_markup")
            )
            for secret in self.secrets:
                assert secret not in said, (call.method, said[:500])
            if not tap_answer:
                for words in self.staff_words:
                    assert words[:25] not in said, (call.method, said[:500])


def _field(kind: str) -> str:
    [field] = [f for f in spec_types()["Update"]["fields"] if f["name"] == kind]
    return field["types"][0]


def _member(person: SimUser) -> Member:
    return Member(person, "member")


def _channel_post(content: dict[str, Any]) -> dict[str, Any]:
    chat = {"id": -1_009_000_000_001, "type": "channel", "title": "News"}
    return {"message_id": 1, "date": int(time.time()), "chat": chat, "sender_chat": chat, **content}


def _fit(kind: str, value: dict[str, Any], person: SimUser, group: SimChat, bot: BotAccount) -> Any:
    """Put a generated update among the emulator's people and chats (a chat the bot does not
    know would only test the emulator's "chat not found")."""
    value = dict(value)
    if "chat" in value:
        value["chat"] = group.as_chat()
    for key in ("from", "user"):
        if key in value:
            value[key] = person.as_user()
    if kind == "my_chat_member":
        for key in ("old_chat_member", "new_chat_member"):
            member = dict(value[key])
            member["user"] = bot.as_user()
            value[key] = member
    return value


# -- the test ----------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, worker_poll_interval=0.05, admin_ids=[ADMIN_ID])


@pytest.fixture
async def app(make_app, emulator: Emulator, clock) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    made = make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK))
    for middleware in made.dispatcher.message.outer_middleware:
        if isinstance(middleware, FloodGuard):
            # Thousands of messages from a handful of people: every one must still be answered
            # on its own, which is what is tested here (the flood guard has its own tests).
            middleware.limit = 10**9
    async with running(made) as started:
        yield started


async def test_random_and_malformed_updates_crash_nothing_and_every_customer_is_answered(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    fuzz = Fuzz(app, emulator, telegram_bot)
    await fuzz.build()
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=EXPLORE_SEED is None,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz.updates())
    def one_update(example: tuple[str, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(fuzz.feed(example), loop).result(60)

    if EXPLORE_SEED is not None:
        one_update = seed(int(EXPLORE_SEED))(one_update)
    # Hypothesis drives the examples from a thread; each runs on the test's loop, where the bot is.
    await asyncio.to_thread(one_update)
    elapsed = time.monotonic() - started
    print(
        f"\n{EXAMPLES} updates in {elapsed:.0f}s; {fuzz.customer_messages} customer messages "
        f"answered, {fuzz.answered} taps answered, {fuzz.unreadable} unreadable; "
        f"{fuzz.feeding:.0f}s of it in the bot"
    )
    assert fuzz.unreadable < EXAMPLES // 20
    assert fuzz.customer_messages > EXAMPLES // 10
    assert fuzz.answered > EXAMPLES // 10
