"""Telegram misbehaving under a real workload: everything is eventually delivered, nothing lost.

The whole bot runs on the emulator with Telegram's limits on while about one call in ten fails
with a 5xx, some calls are held until the bot's request times out, and two 429 storms stop all
sending for a while. Meanwhile a batch of scheduled surveys goes out, every customer plays the
whole conversation (happy customers comment; unhappy ones pick a reason, comment and ask to be
contacted), and each unhappy customer's case card goes to the staff chat.

Afterwards: every survey was delivered exactly once, every conversation reached its end with
exactly the messages it should have, each card was posted once, the database holds one answer
per customer and one case per unhappy customer, and the bot never went over Telegram's limits
(the emulator counts any call that would have been refused for real).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.emulator import BotAccount, Emulator, SimChat, SimUser
from bot.emulator.world import StoredMessage
from bot.ratelimit import RateLimiter, RetryPolicy, SendLimits
from bot.settings import Settings
from storage.models import Answer, AnswerStage, Case, Customer, Survey, SurveyState
from tests.e2e.conftest import customers, e2e_settings, running, visits_due_now

ADMIN_ID = 900_000_001
HAPPY = 24
UNHAPPY = 6  # each posts a card at once ("contact me"); a group takes 18 cards a minute
COMMENT_HAPPY = "Lovely as always"
COMMENT_UNHAPPY = "Forty minutes for a coffee."
# Telegram's pacing, as in production; quick retries so the test does not wait for minutes.
RETRY = RetryPolicy(attempts=8, base_delay=0.05, max_delay=0.5)
# The bot gives up waiting for an answer after this long (a held call counts as a timeout).
REQUEST_TIMEOUT = 1.0
WAIT = 60.0  # for any one step of a conversation


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Real time (cards wait for their turn in the job queue, 18 a minute), so no quiet hours.
    return e2e_settings(
        database_url, worker_poll_interval=0.1, admin_ids=[ADMIN_ID], quiet_hours=""
    )


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(SendLimits(), RETRY)


@pytest.fixture
async def app(make_app, limiter: RateLimiter) -> AsyncIterator[Application]:
    made = make_app(limiter=limiter)
    made.bot.session.timeout = REQUEST_TIMEOUT
    async with running(made) as started:
        yield started


async def message_number(person: SimUser, bot: BotAccount, count: int) -> StoredMessage:
    """The bot's ``count``-th message in the private chat, once it is there."""
    for _ in range(int(WAIT / 0.05)):
        inbox = person.inbox(bot)
        if len(inbox) >= count:
            return inbox[count - 1]
        await asyncio.sleep(0.05)
    said = [m.text for m in person.inbox(bot)]
    raise AssertionError(f"{person.first_name}: expected message {count}, have {said}")


async def until_tapped(person: SimUser, bot: BotAccount, message: StoredMessage, check) -> None:
    """Wait until ``message`` shows the tap took effect (``check`` on its current state)."""
    chat = person.chat_with(bot)
    for _ in range(int(WAIT / 0.05)):
        current = chat.message(message.message_id)
        if current is not None and check(current):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{person.first_name}: the tap never showed on {message!r}")


async def happy_customer(person: SimUser, bot: BotAccount) -> None:
    survey = await message_number(person, bot, 1)
    await person.tap(bot, survey, label="5")
    await message_number(person, bot, 2)  # thanks, and "anything we could do better?"
    await person.send(bot, COMMENT_HAPPY)
    await message_number(person, bot, 3)


async def unhappy_customer(person: SimUser, bot: BotAccount) -> None:
    survey = await message_number(person, bot, 1)
    await person.tap(bot, survey, label="2")
    apology = await message_number(person, bot, 2)
    await person.tap(bot, apology, label=texts.REASON_LONG_WAIT.english)
    await until_tapped(
        person, bot, apology, lambda m: f"✓ {texts.REASON_LONG_WAIT.english}" in str(m.buttons)
    )
    await person.tap(bot, person.chat_with(bot).message(apology.message_id), label="Done")
    await message_number(person, bot, 3)  # "tell us more?"
    await person.send(bot, COMMENT_UNHAPPY)
    ask = await message_number(person, bot, 4)  # "may a manager contact you?"
    await person.tap(bot, ask, label="Yes, please")
    await message_number(person, bot, 5)


async def storms(emulator: Emulator) -> None:
    """Two 429 storms while the work goes on."""
    for pause in (2.0, 6.0):
        await asyncio.sleep(pause)
        emulator.faults.flood(1.5)


async def test_faults_storms_and_timeouts_lose_nothing_and_send_nothing_twice(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, limiter: RateLimiter
) -> None:
    staff = emulator.add_user(first_name="Maria", username="maria_staff")
    group = emulator.add_group("Downtown team", members=[staff], admins=[])
    emulator.add_bot_to_chat(telegram_bot, group)
    assert (await app.staff_chats.register(group.id, by=ADMIN_ID)).registered
    happy = await customers(app, emulator, telegram_bot, HAPPY, prefix="Happy")
    unhappy = await customers(app, emulator, telegram_bot, UNHAPPY, prefix="Unhappy")
    everyone = happy + unhappy

    # From here on Telegram fails: 1 call in 10 answers 502 (polling aside, as the emulator's
    # faults leave getUpdates alone unless named), five calls are held past the bot's timeout.
    emulator.faults.fail_fraction(0.1, status=502, seed=9)
    emulator.faults.timeout_next(5, hold=REQUEST_TIMEOUT * 3)
    storming = asyncio.create_task(storms(emulator))
    await visits_due_now(app, everyone)
    async with asyncio.timeout(150):
        await asyncio.gather(
            *(happy_customer(person, telegram_bot) for person in happy),
            *(unhappy_customer(person, telegram_bot) for person in unhappy),
            storming,
        )
        cards = await staff_cards(group, telegram_bot, UNHAPPY)
        await settled(app)

    # The faults were really met.
    assert emulator.stats.server_errors >= 10
    assert emulator.stats.timeouts == 5
    assert emulator.stats.too_many_requests >= 1
    # …and the bot never went over Telegram's limits, nor gave up on a call.
    assert emulator.stats.flood_limited == 0
    assert limiter.stats.gave_up == 0
    assert limiter.stats.too_many_requests == emulator.stats.too_many_requests

    # Every survey exactly once, and every conversation exactly as designed, nothing repeated.
    surveys = Counter(
        c.params["chat_id"]
        for c in emulator.calls_to("sendMessage", ok=True)
        if str(c.params.get("text", "")).startswith("How was your visit")
    )
    assert surveys == Counter({person.id: 1 for person in everyone})
    for person in happy:
        said = [m.text or "" for m in person.inbox(telegram_bot)]
        assert len(said) == 3, said
        assert said[1].startswith(f"Thank you, {person.first_name}! We are delighted")
        assert said[2] == texts.render(texts.THANKS_FOR_COMMENT, name=person.first_name)
    for person in unhappy:
        said = [m.text or "" for m in person.inbox(telegram_bot)]
        assert len(said) == 5, said
        assert said[1].startswith(f"{person.first_name}, we are truly sorry")
        assert said[3].startswith(texts.render(texts.ASK_CONTACT, name=person.first_name))
        assert said[3].endswith(texts.ANSWER_CONTACT_YES.english)  # the question shows the tap
        assert said[4].startswith(f"Thank you, {person.first_name}. A manager will contact you")

    # One card per case, each naming its customer once.
    assert len(cards) == UNHAPPY
    assert sorted(name for card in cards for name in card_names(card, unhappy)) == sorted(
        person.first_name for person in unhappy
    )

    # The database: one answer per customer, complete; one case per unhappy customer.
    async with app.session_factory() as session:
        states = Counter(await session.scalars(select(Survey.state)))
        answers = (
            await session.execute(
                select(Customer.first_name, Answer.score, Answer.comment, Answer.stage).join(
                    Answer, Answer.customer_id == Customer.id
                )
            )
        ).all()
        cases = list(await session.scalars(select(Case)))
    assert states == Counter({SurveyState.ANSWERED: len(everyone)})
    assert len(answers) == len(everyone)
    assert {a.first_name for a in answers} == {p.first_name for p in everyone}
    assert all(a.stage is AnswerStage.DONE for a in answers)
    assert {(a.score, a.comment) for a in answers} == {(5, COMMENT_HAPPY), (2, COMMENT_UNHAPPY)}
    assert len(cases) == UNHAPPY
    assert all(case.card_message_id is not None for case in cases)
    assert len({case.answer_id for case in cases}) == UNHAPPY


def card_names(card: StoredMessage, people: list[SimUser]) -> list[str]:
    return [person.first_name for person in people if person.first_name in (card.text or "")]


async def staff_cards(group: SimChat, bot: BotAccount, count: int) -> list[StoredMessage]:
    """The case cards in the staff chat, once there are ``count`` (each sent once)."""
    for _ in range(int(WAIT / 0.1)):
        cards = [
            m
            for m in group.messages
            if m.get("from", {}).get("id") == bot.id and (m.text or "").startswith("🔴 Case #")
        ]
        if len(cards) >= count:
            return cards
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} cards, got {[m.text for m in group.messages]}")


async def settled(app: Application) -> None:
    """Let the bot finish what it is doing (recording the last card, answering the last tap)."""
    for _ in range(200):
        if app.in_flight.count == 0 and app.scheduler.in_flight == 0:
            return
        await asyncio.sleep(0.05)
