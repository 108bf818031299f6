"""Surveys delivered by the running bot through the Bot API emulator, Telegram's limits on.

The application runs whole (scheduler, rate limiter, aiogram over HTTP) on a fake clock that
only the survey policy sees: the emulator's flood limits and the limiter's pacing run on real
time, so "no 429" means the pacing held on a real event loop. Tests that are not about pacing
lift both limits to stay quick.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from bot.app import Application
from bot.clock import FakeClock
from bot.digest import WEEKLY_DIGEST_JOB
from bot.emulator import BotAccount, Emulator, Limits
from bot.ratelimit import RateLimiter
from bot.stats_rollup import STATS_ROLLUP_JOB
from bot.training import RETRAIN
from bot.visits import CustomerIn, VisitIn
from storage.models import Customer, Job, JobState, Survey, SurveyState, VisitSource
from tests.e2e.conftest import QUICK, UNPACED, customers, running, visits_due_now


def deliveries(emulator: Emulator) -> Counter[int]:
    """Survey messages accepted by Telegram, per chat."""
    return Counter(c.params["chat_id"] for c in emulator.calls_to("sendMessage", ok=True))


async def surveys(app: Application) -> list[Survey]:
    async with app.session_factory() as session:
        return list(await session.scalars(select(Survey).order_by(Survey.id)))


async def settled(app: Application, condition: Callable[[list[Survey]], bool]) -> list[Survey]:
    """Wait (up to 20 s) until the surveys in the database satisfy ``condition``."""
    for _ in range(400):
        found = await surveys(app)
        if condition(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"surveys never settled: {[s.state for s in found]}")


def all_sent(found: list[Survey]) -> bool:
    return all(survey.state is SurveyState.SENT for survey in found)


async def test_a_crowd_of_due_surveys_goes_out_once_each_without_a_single_429(
    make_app, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock
) -> None:
    limiter = RateLimiter()  # Telegram's pacing, as in production
    app = make_app(clock=clock, limiter=limiter)
    people = await customers(app, emulator, telegram_bot, 90)
    await visits_due_now(app, people)

    started = time.monotonic()
    async with running(app):
        found = await settled(app, all_sent)
    elapsed = time.monotonic() - started

    assert emulator.stats.too_many_requests == 0
    assert limiter.stats.too_many_requests == 0
    assert deliveries(emulator) == Counter({person.id: 1 for person in people})
    for person in people:
        [message] = person.inbox(telegram_bot)
        question = f"How was your visit to Downtown today, {person.first_name}?"
        assert message.text.startswith(question)
        assert [b["text"] for b in message.buttons] == ["1", "2", "3", "4", "5"]
    by_chat = {survey.chat_id: survey for survey in found}
    assert set(by_chat) == {person.id for person in people}
    assert all(survey.message_id is not None for survey in found)
    # Paced at the limiter's 29.5/s after a burst of 3: about 3 s, never faster than 30/s.
    assert elapsed >= (len(people) - 30) / 30


async def test_a_customer_who_blocked_the_bot_becomes_unreachable_and_is_not_retried(
    make_app, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock
) -> None:
    app = make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK))
    emulator.limits = Limits.off()
    fine, blocked, gone = await customers(app, emulator, telegram_bot, 3)
    # Blocked, and deactivated, before the bot heard of it: only the 403 tells.
    blocked.started.discard(telegram_bot.id)
    blocked.block(telegram_bot)
    blocked.started.add(telegram_bot.id)
    gone.deactivate()
    await visits_due_now(app, [fine, blocked, gone])

    async with running(app):
        found = await settled(
            app, lambda rows: all(row.state is not SurveyState.SCHEDULED for row in rows)
        )
        await asyncio.sleep(0.3)  # a retry, if there were one, would come now

    assert sorted((s.state, s.state_reason or "") for s in found) == [
        (SurveyState.FAILED, "unreachable: Forbidden: bot was blocked by the user"),
        (SurveyState.FAILED, "unreachable: Forbidden: user is deactivated"),
        (SurveyState.SENT, ""),
    ]
    attempts = Counter(c.params["chat_id"] for c in emulator.calls_to("sendMessage"))
    assert attempts == Counter({fine.id: 1, blocked.id: 1, gone.id: 1})
    async with app.session_factory() as session:
        unreachable = set(
            await session.scalars(
                select(Customer.telegram_user_id).where(Customer.unreachable_at.is_not(None))
            )
        )
    assert unreachable == {blocked.id, gone.id}


async def test_server_errors_and_timeouts_on_one_send_in_ten_lose_nothing(
    make_app, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock
) -> None:
    limiter = RateLimiter(UNPACED, QUICK)
    app = make_app(clock=clock, limiter=limiter)
    app.bot.session.timeout = 0.5  # a held request counts as a timeout after half a second
    emulator.limits = Limits.off()
    people = await customers(app, emulator, telegram_bot, 60)
    await visits_due_now(app, people)
    emulator.faults.timeout_next(3, hold=2.0, methods=["sendMessage"])
    emulator.faults.fail_fraction(0.07, status=502, seed=3, methods=["sendMessage"])

    async with running(app):
        await settled(app, all_sent)

    assert emulator.stats.timeouts == 3
    assert emulator.stats.server_errors >= 3
    assert limiter.stats.retried == emulator.stats.timeouts + emulator.stats.server_errors
    assert deliveries(emulator) == Counter({person.id: 1 for person in people})


async def test_a_survey_for_someone_who_never_started_the_bot_waits_then_expires(
    make_app, emulator: Emulator, clock: FakeClock
) -> None:
    app = make_app(clock=clock)
    await app.visits.record(
        VisitIn(
            visit_id="crm-visit",
            customer=CustomerIn(ref="crm-17", name="Boris"),
            occurred_at=clock.now() - timedelta(hours=2),
            source=VisitSource.CSV,
            location="Downtown",
        )
    )

    async with running(app):
        await emulator.wait_for(  # the send job ran (and left it waiting); the expiry waits
            lambda: has_job_states(app, [JobState.DONE, JobState.PENDING]), timeout=10
        )
        [survey] = await surveys(app)
        assert survey.state is SurveyState.SCHEDULED  # waiting for /start

        clock.advance(hours=72)
        app.scheduler.wake()
        [survey] = await settled(app, lambda rows: rows[0].state is not SurveyState.SCHEDULED)

    assert (survey.state, survey.state_reason) == (SurveyState.EXPIRED, "never_started")
    assert emulator.calls_to("sendMessage") == []


# Jobs the bot keeps in the queue for itself, whatever the customers do.
STANDING_JOBS = (RETRAIN, WEEKLY_DIGEST_JOB, STATS_ROLLUP_JOB)


async def job_states(app: Application) -> list[JobState]:
    """The states of the survey's jobs (not the bot's own standing ones, such as training)."""
    async with app.session_factory() as session:
        return list(
            await session.scalars(
                select(Job.state).where(Job.kind.not_in(STANDING_JOBS)).order_by(Job.id)
            )
        )


async def has_job_states(app: Application, states: list[JobState]) -> bool:
    return await job_states(app) == states


async def test_one_reminder_replies_to_the_survey_and_then_the_survey_expires(
    make_app, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock
) -> None:
    app = make_app(clock=clock)
    [anna] = await customers(app, emulator, telegram_bot, 1, prefix="Anna")
    await visits_due_now(app, [anna])

    async with running(app):
        [survey] = await settled(app, all_sent)
        clock.advance(hours=24)
        app.scheduler.wake()
        await emulator.wait_for(lambda: len(anna.inbox(telegram_bot)) == 2)
        clock.advance(hours=48)
        app.scheduler.wake()
        [closed] = await settled(app, lambda rows: rows[0].state is SurveyState.EXPIRED)
        app.scheduler.wake()
        await asyncio.sleep(0.2)

    question, reminder = anna.inbox(telegram_bot)
    assert reminder.text.startswith("A gentle reminder, Anna0")
    assert reminder["reply_to_message"]["message_id"] == question.message_id == survey.message_id
    assert closed.state_reason == "unanswered"
    assert closed.reminder_sent_at == survey.sent_at + timedelta(hours=24)
    assert len(anna.inbox(telegram_bot)) == 2


async def test_stopping_mid_run_finishes_or_hands_back_every_survey_and_a_restart_sends_the_rest(
    make_app, emulator: Emulator, telegram_bot: BotAccount, clock: FakeClock
) -> None:
    first = make_app(clock=clock)
    people = await customers(first, emulator, telegram_bot, 60)
    await visits_due_now(first, people)

    async with running(first):
        await emulator.wait_for(lambda: sum(deliveries(emulator).values()) >= 15, timeout=10)
    # Stopped: every survey Telegram accepted is recorded as sent, and no job is left running.
    found = await surveys(first)
    sent = {survey.chat_id for survey in found if survey.state is SurveyState.SENT}
    assert sent == set(deliveries(emulator))
    assert len(sent) < len(people)
    assert JobState.RUNNING not in await job_states(first)

    second = make_app(clock=clock)
    async with running(second):
        await settled(second, all_sent)
    assert deliveries(emulator) == Counter({person.id: 1 for person in people})
    assert emulator.stats.too_many_requests == 0
