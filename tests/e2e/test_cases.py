"""Cases through the emulator: a low score reaches a person, and the loop is closed.

The bot runs whole on a fake clock (SLA and follow-up timers are jobs due by that clock), and is
stopped and started again between steps: everything a case needs lives in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.callbacks import CaseAction, CaseCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import SimChat, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from storage.models import AuditEntry, Case, CaseOffer, CaseState
from tests.e2e.conftest import (
    BUSINESS,
    QUICK,
    UNPACED,
    customers,
    e2e_settings,
    running,
    visits_due_now,
)
from tests.e2e.test_conversation import next_message, score_data, settle

ADMIN_ID = 900_000_001


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, worker_poll_interval=0.05, admin_ids=[ADMIN_ID])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()  # Monday 2026-01-05 12:00 UTC


@pytest.fixture
def bot_running(
    make_app, emulator: Emulator, clock: FakeClock
) -> Callable[[], AbstractAsyncContextManager[Application]]:
    emulator.limits = Limits.off()

    def start() -> AbstractAsyncContextManager[Application]:
        return running(make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK)))

    return start


@pytest.fixture
def admin(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Ada", user_id=ADMIN_ID)


async def staff_group(
    app: Application, emulator: Emulator, bot: BotAccount, staff: list[SimUser], *, forum=False
) -> SimChat:
    group = emulator.add_group(
        "Downtown team", forum=forum, supergroup=forum, members=staff, admins=[]
    )
    emulator.add_bot_to_chat(bot, group, admin=forum, can_manage_topics=forum)
    registration = await app.staff_chats.register(group.id, by=ADMIN_ID)
    assert registration.registered, registration
    return group


async def unhappy_customer(
    app: Application, emulator: Emulator, bot: BotAccount, *, contact: bool
) -> SimUser:
    """Bob scores 2, picks a reason, comments and answers the contact question."""
    [bob] = await customers(app, emulator, bot, 1, prefix="Bob")
    await visits_due_now(app, [bob])
    await emulator.wait_for(lambda: bob.inbox(bot), timeout=10)
    survey = bob.inbox(bot)[0]
    await bob.tap(bot, survey, score_data(survey, 2))
    apology = await next_message(bob, bot, 2)
    await bob.tap(bot, apology, apology.callback_data[1])  # waited too long
    await settle(app)
    await bob.tap(bot, bob.chat_with(bot).message(apology.message_id), label="Done")
    await next_message(bob, bot, 3)
    await bob.send(bot, "Forty minutes for a coffee, and nobody said sorry.")
    ask = await next_message(bob, bot, 4)
    await bob.tap(bot, ask, label="Yes, please" if contact else "No, thank you")
    await next_message(bob, bot, 5)
    return bob


async def bot_said(chat: SimChat, bot: BotAccount, count: int) -> list[StoredMessage]:
    for _ in range(200):
        said = [m for m in chat.messages if m.get("from", {}).get("id") == bot.id and m.text]
        if len(said) >= count:
            return said
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} bot messages, got {[m.text for m in chat.messages]}")


async def posted_case(app: Application) -> Case:
    """The case once its card's ids are recorded (a moment after the card is out)."""
    for _ in range(100):
        case = await the_case(app)
        if case.card_message_id is not None:
            return case
        await asyncio.sleep(0.05)
    raise AssertionError("the card was never recorded")


async def the_case(app: Application) -> Case:
    async with app.session_factory() as session:
        case = await session.scalar(select(Case))
    assert case is not None
    return case


async def test_low_score_to_card_take_reply_resolve_followup_and_reopen(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock, admin
) -> None:
    maria = emulator.add_user(first_name="Maria", username="maria_staff")
    stranger = emulator.add_user(first_name="Mallory")
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [maria])
        bob = await unhappy_customer(app, emulator, telegram_bot, contact=True)
        # "Contact me" posts the card at once.
        [card] = await bot_said(group, telegram_bot, 1)
        await posted_case(app)

    assert card.text.startswith("🔴 Case #")
    assert "Bob0" in card.text and "score 2/5" in card.text
    assert "Reasons: Waited too long" in card.text
    assert "Forty minutes for a coffee" in card.text
    assert "Contact: yes" in card.text
    assert "Visit: Downtown" in card.text
    assert [b["text"] for b in card.buttons] == ["Take", "Resolve", "Sentiment…"]
    assert str(bob.id) not in card.text  # nothing about the customer beyond name and @username

    async with bot_running() as app:  # a restart between each step loses nothing
        case = await the_case(app)
        take = CaseCallback(case_id=case.id, action=CaseAction.TAKE).pack()
        # Someone outside the staff chat sends the Take button's data from their own chat.
        await stranger.send(telegram_bot, "/start")
        greeting = await next_message(stranger, telegram_bot, 1)
        refused = await stranger.tap(telegram_bot, greeting, take, forged=True)
        await settle(app)
        assert refused.answer is not None and refused.answer["text"].startswith("Not allowed")
        assert (await the_case(app)).state is CaseState.OPEN

        await maria.tap(telegram_bot, card, take)
        await settle(app)
        case = await the_case(app)
        assert (case.state, case.taken_by_name) == (CaseState.TAKEN, "Maria")
        await asyncio.sleep(0.3)
        card = group.message(card.message_id)
        assert "taken by Maria" in card.text
        assert [b["text"] for b in card.buttons] == ["Resolve", "Sentiment…"]

    async with bot_running() as app:
        await maria.send_to_chat(
            telegram_bot, group, "Bob, I am so sorry. Coffee is on us next time.", reply_to=card
        )
        relayed = await next_message(bob, telegram_bot, 6)
        assert relayed.text == f"{BUSINESS}:\n\nBob, I am so sorry. Coffee is on us next time."
        await maria.send_to_chat(telegram_bot, group, "// regular, be nice", reply_to=card)
        await settle(app)
        assert len(bob.inbox(telegram_bot)) == 6  # the back room stays in the back room

        await bob.send(telegram_bot, "Thank you, that is kind.")
        said = await bot_said(group, telegram_bot, 2)
        assert said[-1].text == "Bob0: Thank you, that is kind."
        assert said[-1]["reply_to_message"]["message_id"] == card.message_id
        case = await the_case(app)
        assert case.first_responded_at == clock.now()

    async with bot_running() as app:
        case = await the_case(app)
        await maria.tap(telegram_bot, group.message(card.message_id), label="Resolve")
        prompt = (await bot_said(group, telegram_bot, 3))[-1]
        assert prompt.text.startswith("Maria is resolving case")
        await maria.tap(telegram_bot, prompt, label="Voucher")
        await settle(app)
        prompt = group.message(prompt.message_id)
        assert prompt.text.startswith(f"Case #{case.id} is resolved by Maria · offered: voucher")
        await maria.send_to_chat(telegram_bot, group, "Gave a 10 € voucher", reply_to=prompt)
        await settle(app)
        case = await the_case(app)
        assert (case.state, case.offer) == (CaseState.RESOLVED, CaseOffer.VOUCHER)
        assert case.resolution_note == "Gave a 10 € voucher"
        assert len(bob.inbox(telegram_bot)) == 6  # the note is not for the customer

    clock.advance(timedelta(hours=25))  # FOLLOWUP_DELAY later, and inside allowed hours
    async with bot_running() as app:
        ask = await next_message(bob, telegram_bot, 7)
        assert ask.text == texts.render(texts.FOLLOWUP_ASK, name="Bob0")
        await bob.tap(telegram_bot, ask, label="No, not yet")
        await settle(app)
        assert bob.chat_with(telegram_bot).message(ask.message_id).text == texts.render(
            texts.FOLLOWUP_NO, name="Bob0"
        )
        note = (await bot_said(group, telegram_bot, 4))[-1]
        assert "not put right" in note.text
        case = await the_case(app)
        assert (case.state, case.recovered, case.reopened_count) == (CaseState.REOPENED, False, 1)
        async with app.session_factory() as session:
            actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        for action in (
            "case.posted",
            "case.taken",
            "case.replied",
            "case.resolved",
            "case.followup",
        ):
            assert action in actions


async def test_a_forum_gets_a_topic_per_case_and_staff_write_in_it(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, admin
) -> None:
    lena = emulator.add_user(first_name="Lena")
    async with bot_running() as app:
        forum = await staff_group(app, emulator, telegram_bot, [lena], forum=True)
        bob = await unhappy_customer(app, emulator, telegram_bot, contact=True)
        [card] = await bot_said(forum, telegram_bot, 1)
        case = await posted_case(app)
        assert case.thread_id is not None and card.thread_id == case.thread_id
        topic = forum.topics[case.thread_id]
        assert topic.name.startswith(f"#{case.id} · Bob0 · 2/5 · Downtown")

        await lena.send_to_chat(
            telegram_bot, forum, "Hello Bob, Lena here.", thread_id=case.thread_id
        )
        relayed = await next_message(bob, telegram_bot, 6)
        assert relayed.text.endswith("Hello Bob, Lena here.")
        await bob.send(telegram_bot, "Hi Lena")
        said = await bot_said(forum, telegram_bot, 2)
        assert said[-1].thread_id == case.thread_id and said[-1].text == "Bob0: Hi Lena"

        # An edit is not passed on, and the thread says so.
        [hello] = [m for m in forum.messages if m.text == "Hello Bob, Lena here."]
        await lena.edit(hello, "Hello Bob, Lena from Downtown here.")
        said = await bot_said(forum, telegram_bot, 3)
        assert said[-1].text.startswith("Edits are not passed on")
        assert len(bob.inbox(telegram_bot)) == 6

        # Someone deletes the case's topic: the next message opens it again, card first.
        forum.topics[case.thread_id].deleted = True
        await bob.send(telegram_bot, "Are you still there?")
        said = await bot_said(forum, telegram_bot, 5)
        again = await the_case(app)
        assert again.thread_id not in (None, case.thread_id)
        assert (
            said[-2].text.startswith(f"🔴 Case #{case.id}")
            and said[-2].thread_id == again.thread_id
        )
        assert said[-1].text == "Bob0: Are you still there?"
        assert said[-1].thread_id == again.thread_id


async def test_without_a_staff_chat_the_admins_get_the_case(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, admin: SimUser
) -> None:
    admin.started.add(telegram_bot.id)
    async with bot_running() as app:
        await unhappy_customer(app, emulator, telegram_bot, contact=True)
        told = await next_message(admin, telegram_bot, 1)
    assert told.text.startswith("No staff chat is registered")
    assert "Case #" in told.text


async def test_sla_reminder_in_the_thread_then_escalation_to_the_admins(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock, admin: SimUser
) -> None:
    admin.started.add(telegram_bot.id)
    sam = emulator.add_user(first_name="Sam")
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [sam])
        await unhappy_customer(app, emulator, telegram_bot, contact=True)  # 1 h to respond
        await bot_said(group, telegram_bot, 1)
        await posted_case(app)

    clock.advance(timedelta(minutes=49))  # past 80 % of the hour
    async with bot_running() as app:
        reminder = (await bot_said(group, telegram_bot, 2))[-1]
        assert reminder.text.startswith("⏰ First response of case #")

    clock.advance(timedelta(minutes=12))  # past the hour, nobody answered
    async with bot_running() as app:
        notice = await next_message(admin, telegram_bot, 1)
        assert notice.text.startswith("⚠️ First response of case #")
        assert "overdue" in notice.text
        await settle(app)


async def test_a_long_comment_is_folded_the_voice_note_follows_and_yes_closes_the_case(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock, admin
) -> None:
    tom = emulator.add_user(first_name="Tom")
    long_comment = "The table was sticky and the order came cold. " * 40  # 1,880 characters
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [tom])
        [cleo] = await customers(app, emulator, telegram_bot, 1, prefix="Cleo")
        await visits_due_now(app, [cleo])
        await emulator.wait_for(lambda: cleo.inbox(telegram_bot), timeout=10)
        survey = cleo.inbox(telegram_bot)[0]
        await cleo.tap(telegram_bot, survey, score_data(survey, 1))
        await next_message(cleo, telegram_bot, 2)
        await cleo.send(telegram_bot, long_comment)  # typed instead of tapping a reason
        ask = await next_message(cleo, telegram_bot, 3)
        voice = await cleo.send_voice(telegram_bot)  # added to the answer while Yes/No waits
        await next_message(cleo, telegram_bot, 5)
        await cleo.tap(telegram_bot, ask, label="No, thank you")
        await next_message(cleo, telegram_bot, 6)
        clock.advance(timedelta(seconds=30))  # past the card's settle time
        [card] = await bot_said(group, telegram_bot, 1)
        await posted_case(app)
        assert f"… ({len(long_comment.strip()):,} characters)" in card.text
        assert "Attached: a voice note (below)" in card.text
        await emulator.wait_for(
            lambda: any("voice" in m for m in group.messages if m.message_id != card.message_id),
            timeout=10,
        )
        [sent_voice] = [m for m in group.messages if "voice" in m]
        assert sent_voice["voice"]["file_unique_id"] == voice["voice"]["file_unique_id"]
        await tom.tap(telegram_bot, card, label="Full text")
        said = await bot_said(group, telegram_bot, 2)
        assert said[-1].text == long_comment.strip()

        await tom.tap(telegram_bot, group.message(card.message_id), label="Resolve")
        prompt = (await bot_said(group, telegram_bot, 3))[-1]
        await tom.tap(telegram_bot, prompt, label="Nothing extra")
        await settle(app)

    clock.advance(timedelta(hours=25))
    async with bot_running() as app:
        ask = await next_message(cleo, telegram_bot, 7)
        await cleo.tap(telegram_bot, ask, label="Yes, thank you")
        await settle(app)
        note = (await bot_said(group, telegram_bot, 4))[-1]
        assert note.text.startswith("✅ The customer says it was put right")
        case = await the_case(app)
        assert (case.state, case.recovered) == (CaseState.CONFIRMED, True)
        assert case.closed_at == clock.now()
