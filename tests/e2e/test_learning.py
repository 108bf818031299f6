"""Learning through the emulator, with the real bot: staff correct a case's sentiment from its
card, a reason model's suggestions reach the card, and a model learned from the customers' own
Chinese comments and scores opens a case TextBlob could not have opened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Application
from bot.callbacks import SentimentCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import SimChat, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from storage.model_repository import CORRECTION_ACTION
from storage.models import (
    Answer,
    AuditEntry,
    Case,
    CaseTrigger,
    Customer,
    ModelKind,
    SentimentLabel,
    TrainedModel,
)
from tests.e2e.conftest import QUICK, UNPACED, e2e_settings, running
from tests.e2e.test_cases import (
    ADMIN_ID,
    bot_said,
    posted_case,
    staff_group,
    unhappy_customer,
)
from tests.e2e.test_conversation import next_message, score_data, settle, surveyed
from tests.services.test_training import LONG_WAIT, RUDE, answered, chinese_comments

CHINESE_COMPLAINT = "服务态度很差，菜是冷的"
# Li's complaint before training is labelled positive by her 5: a noisy label, kept apart.
EARLIER_COMPLAINT = "等了很久，太慢了"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(
        database_url, worker_poll_interval=0.05, admin_ids=[ADMIN_ID], retrain_every=40
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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


async def card_changed(chat: SimChat, card: StoredMessage, check) -> StoredMessage:
    """The card once ``check(card)`` holds (edits come from the job queue)."""
    for _ in range(100):
        now = chat.message(card.message_id)
        if now is not None and check(now):
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"the card never changed: {chat.message(card.message_id)}")


def labels(message: StoredMessage) -> list[str]:
    return [b["text"] for b in message.buttons]


async def high_score_with_words(
    app: Application, emulator: Emulator, bot: BotAccount, name: str, words: str
) -> SimUser:
    person, survey = await surveyed(app, emulator, bot, name=name)
    await person.tap(bot, survey, score_data(survey, 5))
    await next_message(person, bot, 2)
    await person.send(bot, words)
    await next_message(person, bot, 3)
    await settle(app)
    return person


async def case_of(app: Application, person: SimUser) -> Case | None:
    async with app.session_factory() as session:
        return await session.scalar(
            select(Case)
            .join(Customer, Customer.id == Case.customer_id)
            .where(Customer.telegram_user_id == person.id)
        )


# -- staff correct a case's sentiment -------------------------------------------------------------


async def test_staff_correct_a_cases_sentiment_from_its_card_and_strangers_cannot(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, admin
) -> None:
    maria = emulator.add_user(first_name="Maria")
    stranger = emulator.add_user(first_name="Mallory")
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [maria])
        await unhappy_customer(app, emulator, telegram_bot, contact=True)
        [card] = await bot_said(group, telegram_bot, 1)
        case = await posted_case(app)
        assert "sentiment negative" in card.text
        assert labels(card) == ["Take", "Resolve", "Sentiment…"]

        await maria.tap(telegram_bot, card, label="Sentiment…")
        choices = await card_changed(group, card, lambda c: "Back" in labels(c))
        assert labels(choices) == ["Negative", "Neutral", "Positive", "Back"]
        await maria.tap(telegram_bot, choices, label="Back")
        back = await card_changed(group, card, lambda c: "Back" not in labels(c))
        assert labels(back) == ["Take", "Resolve", "Sentiment…"]

        # Someone outside the staff chat sends the Positive button's data from their own chat.
        forged = SentimentCallback(case_id=case.id, label="positive").pack()
        await stranger.send(telegram_bot, "/start")
        greeting = await next_message(stranger, telegram_bot, 1)
        refused = await stranger.tap(telegram_bot, greeting, forged, forged=True)
        await settle(app)
        assert refused.answer is not None and refused.answer["text"].startswith("Not allowed")
        # A label that is not on offer, even from the staff chat, changes nothing either.
        mixed = SentimentCallback(case_id=case.id, label="mixed").pack()
        refused = await maria.tap(telegram_bot, back, mixed, forged=True)
        await settle(app)
        assert refused.answer is not None and refused.answer["text"].startswith("Not allowed")
        async with app.session_factory() as session:
            answer = await session.get(Answer, case.answer_id)
        assert answer is not None and answer.sentiment_corrected is None

        await maria.tap(telegram_bot, back, label="Sentiment…")
        choices = await card_changed(group, card, lambda c: "Back" in labels(c))
        tapped = await maria.tap(telegram_bot, choices, label="Neutral")
        corrected = await card_changed(group, card, lambda c: "corrected by" in c.text)
        await settle(app)

    assert tapped.answer is not None and tapped.answer["text"] == "Sentiment: neutral."
    assert "sentiment neutral (corrected by Maria; the bot read negative)" in corrected.text
    assert labels(corrected) == ["Take", "Resolve", "Sentiment…"]
    async with app.session_factory() as session:
        answer = await session.get(Answer, case.answer_id)
        [entry] = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == CORRECTION_ACTION))
        )
    assert answer is not None and answer.sentiment_corrected is SentimentLabel.NEUTRAL
    assert answer.sentiment_label is SentimentLabel.NEGATIVE  # the bot's reading is kept
    assert (entry.actor_name, entry.old_value, entry.new_value) == ("Maria", "negative", "neutral")
    assert entry.target == f"case:{case.id}"


# -- suggested reasons ---------------------------------------------------------------------------


async def test_a_trained_reason_model_suggests_reasons_on_the_card(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock, admin
) -> None:
    maria = emulator.add_user(first_name="Maria")
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [maria])
        for i in range(12):
            await answered(app.session_factory, clock, LONG_WAIT[i % 3], 2, reasons=["long_wait"])
            await answered(app.session_factory, clock, RUDE[i % 3], 1, reasons=["rude_staff"])
        [outcome] = await app.training.retrain(ModelKind.REASONS)
        assert outcome.active

        # A kind score, and words that say what went wrong without a chip tapped.
        await high_score_with_words(
            app, emulator, telegram_bot, "Una", "Terrible, we waited forty minutes for a table"
        )
        clock.advance(timedelta(seconds=30))  # past the card's settle time
        [card] = await bot_said(group, telegram_bot, 1)

    assert "kind score, angry words" in card.text
    assert "Suggested reasons (from the words): Waited too long" in card.text
    assert "Reasons:" not in card.text


# -- Chinese, learned from scores ----------------------------------------------------------------


async def test_chinese_comments_with_scores_teach_the_bot_to_hear_a_chinese_complaint(
    bot_running, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock, admin
) -> None:
    maria = emulator.add_user(first_name="Maria")
    async with bot_running() as app:
        group = await staff_group(app, emulator, telegram_bot, [maria])
        # Before any training the baseline cannot read Chinese: the kind score decides.
        before = await high_score_with_words(app, emulator, telegram_bot, "Li", EARLIER_COMPLAINT)
        assert await case_of(app, before) is None

        for text, score in chinese_comments(40):
            await answered(app.session_factory, clock, text, score)
        # The 40th label crosses RETRAIN_EVERY: the training job is queued and run.
        assert await app.training.label_added()
        for _ in range(200):
            if app.classifier.models.sentiment is not None:
                break
            await asyncio.sleep(0.05)
        async with app.session_factory() as session:
            [run] = list(await session.scalars(select(TrainedModel)))
        assert (run.kind, run.version, run.active, run.examples) == (
            ModelKind.SENTIMENT,
            1,
            True,
            41,  # Li's comment with her 5 counts too
        )

        after = await high_score_with_words(app, emulator, telegram_bot, "Wang", CHINESE_COMPLAINT)
        case = await case_of(app, after)
        assert case is not None and case.trigger is CaseTrigger.MIXED
        clock.advance(timedelta(seconds=30))
        said = await bot_said(group, telegram_bot, 1)

    assert CHINESE_COMPLAINT in said[-1].text and "kind score, angry words" in said[-1].text
