"""The survey jobs as a service, on a real database with a fake clock and a fake Telegram: every
state a survey can reach from here, with its reason, and the message it is sent as."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from aiogram.types import Chat, InlineKeyboardMarkup, Message, ReplyParameters
from sqlalchemy import select, update

from bot.callbacks import ScoreCallback
from bot.policy import SurveyPolicy
from bot.scheduler import Scheduler, SchedulerConfig
from bot.surveys import (
    EXPIRE_SURVEY,
    SURVEY_REMINDER,
    Outcome,
    SurveyService,
    compose_survey,
    expiry_job_key,
    reminder_job_key,
    visit_day,
)
from bot.texts import Texts
from bot.values import QuietHours, parse_quiet_hours
from bot.visits import SEND_SURVEY, CustomerIn, VisitIn, VisitService
from storage.jobs import JobQueue
from storage.models import (
    Customer,
    Job,
    JobState,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)
from storage.repositories import CustomerRepository, TelegramProfile

# The fake clock starts at Monday 2026-01-05 12:00 UTC; visits two hours earlier are due now.
NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
VISITED = NOON - timedelta(hours=2)
ANNA = 5001
BUSINESS = "Rice Shop"


@dataclass
class Sent:
    chat_id: int | str
    text: str
    reply_markup: InlineKeyboardMarkup | None
    reply_parameters: ReplyParameters | None


@dataclass
class FakeTelegram:
    """Records what the service sends; raises the queued errors first, one per call."""

    sent: list[Sent] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    attempts: int = 0
    next_message_id: int = 700

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        reply_parameters: ReplyParameters | None = None,
    ) -> Message:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(Sent(chat_id, text, reply_markup, reply_parameters))
        self.next_message_id += 1
        return Message(
            message_id=self.next_message_id,
            date=NOON,
            chat=Chat(id=int(chat_id), type="private"),
            text=text,
        )


def telegram_error(kind: type[Exception], description: str) -> Exception:
    return kind(method=SendMessage(chat_id=ANNA, text="x"), message=description)


@pytest.fixture
def policy() -> SurveyPolicy:
    return SurveyPolicy(quiet_hours=QuietHours.off())


@pytest.fixture
def telegram() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def jobs(engine, clock) -> JobQueue:
    return JobQueue(engine, clock=clock)


@pytest.fixture
def service(session_factory, jobs, policy, clock, telegram) -> SurveyService:
    return SurveyService(session_factory, jobs, policy, clock, telegram, words=Texts(BUSINESS))


@pytest.fixture
def visits(session_factory, jobs, policy, clock) -> VisitService:
    return VisitService(session_factory, jobs, policy, clock)


async def started(session_factory, clock, user_id: int = ANNA, name: str | None = "Anna") -> None:
    """A customer who has pressed Start, so the bot may write to them."""
    async with session_factory.begin() as session:
        await CustomerRepository(session).get_or_create_by_telegram(
            TelegramProfile(user_id=user_id, first_name=name), now=clock.now() - timedelta(days=1)
        )


async def survey_for(
    visits: VisitService,
    session_factory,
    visit_id: str = "v1",
    *,
    user_id: int | None = ANNA,
    ref: str | None = None,
    at: datetime = VISITED,
    location: str | None = "Downtown",
    service: str | None = None,
) -> int:
    await visits.record(
        VisitIn(
            visit_id=visit_id,
            customer=CustomerIn(ref=ref, telegram_user_id=user_id),
            occurred_at=at,
            source=VisitSource.API,
            location=location,
            service=service,
        )
    )
    async with session_factory() as session:
        return await session.scalar(
            select(Survey.id).join(Visit).where(Visit.external_id == visit_id)
        )


async def load(session_factory, survey_id: int) -> tuple[Survey, Customer]:
    async with session_factory() as session:
        survey = await session.get(Survey, survey_id)
        customer = await session.get(Customer, survey.customer_id)
        return survey, customer


async def job(session_factory, key: str) -> Job | None:
    async with session_factory() as session:
        return await session.scalar(select(Job).where(Job.dedupe_key == key))


async def set_customer(session_factory, **values: Any) -> None:
    async with session_factory.begin() as session:
        await session.execute(
            update(Customer).where(Customer.telegram_user_id == ANNA).values(**values)
        )


# ------------------------------------------------------------------------------------ sending


async def test_a_due_survey_is_sent_and_recorded_with_its_reminder_and_expiry(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)

    assert await service.send(survey_id) is Outcome.SENT

    [message] = telegram.sent
    assert message.chat_id == ANNA
    assert message.text.startswith("How was your visit to Downtown today, Anna?")
    buttons = message.reply_markup.inline_keyboard
    assert [[b.text for b in row] for row in buttons] == [["1", "2", "3", "4", "5"]]
    assert buttons[0][4].callback_data == ScoreCallback(survey_id=survey_id, score=5).pack()

    survey, customer = await load(session_factory, survey_id)
    assert survey.state is SurveyState.SENT
    assert (survey.sent_at, survey.chat_id, survey.message_id) == (NOON, ANNA, 701)
    assert survey.expires_at == NOON + timedelta(hours=72)
    assert customer.last_surveyed_at == NOON
    reminder = await job(session_factory, reminder_job_key(survey_id))
    assert (reminder.kind, reminder.due_at) == (SURVEY_REMINDER, NOON + timedelta(hours=24))
    assert reminder.payload == {"survey_id": survey_id}


async def test_a_survey_is_sent_once_however_often_its_job_runs(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    assert await service.send(survey_id) is Outcome.SENT
    assert await service.send(survey_id) is Outcome.NOTHING
    assert len(telegram.sent) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"opted_out_at": NOON}, "opted_out"),
        ({"unreachable_at": NOON}, "unreachable"),
        ({"erased_at": NOON}, "erased"),
        ({"last_surveyed_at": NOON - timedelta(days=2)}, "cooldown"),
    ],
)
async def test_what_changed_since_scheduling_skips_the_survey_with_the_reason(
    service, visits, session_factory, clock, telegram, change, reason
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    await set_customer(session_factory, **change)

    assert await service.send(survey_id) is Outcome.SKIPPED

    survey, _ = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason, survey.closed_at) == (
        SurveyState.SKIPPED,
        reason,
        NOON,
    )
    assert telegram.attempts == 0


async def test_a_customer_who_never_started_the_bot_leaves_the_survey_waiting(
    service, visits, session_factory, telegram
) -> None:
    survey_id = await survey_for(visits, session_factory, user_id=None, ref="crm-77")
    assert await service.send(survey_id) is Outcome.WAITING
    survey, _ = await load(session_factory, survey_id)
    assert survey.state is SurveyState.SCHEDULED
    assert telegram.attempts == 0


async def test_a_survey_that_could_not_go_out_in_time_expires_too_late(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    clock.advance(hours=72)
    assert await service.send(survey_id) is Outcome.EXPIRED
    survey, _ = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason) == (SurveyState.EXPIRED, "too_late")
    assert telegram.attempts == 0


async def test_a_403_marks_the_customer_unreachable_and_fails_the_survey(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    later = await survey_for(visits, session_factory, "v2", at=VISITED + timedelta(days=40))
    telegram.errors.append(
        telegram_error(TelegramForbiddenError, "Forbidden: bot was blocked by the user")
    )

    assert await service.send(survey_id) is Outcome.FAILED

    survey, customer = await load(session_factory, survey_id)
    assert survey.state is SurveyState.FAILED
    assert survey.state_reason == "unreachable: Forbidden: bot was blocked by the user"
    assert customer.unreachable_at == NOON
    assert await job(session_factory, reminder_job_key(survey_id)) is None
    # Their next survey, scheduled before, is skipped without trying Telegram again.
    clock.advance(days=40)
    assert await service.send(later) is Outcome.SKIPPED
    assert (await load(session_factory, later))[0].state_reason == "unreachable"
    assert telegram.attempts == 1


async def test_a_400_fails_the_survey_with_telegrams_description(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    telegram.errors.append(telegram_error(TelegramBadRequest, "Bad Request: chat not found"))

    assert await service.send(survey_id) is Outcome.FAILED

    survey, customer = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason) == (
        SurveyState.FAILED,
        "rejected: Bad Request: chat not found",
    )
    assert customer.unreachable_at is None


@pytest.mark.parametrize(
    "error",
    [
        telegram_error(TelegramServerError, "Internal Server Error"),
        telegram_error(TelegramNetworkError, "Request timeout error"),
    ],
)
async def test_server_errors_and_timeouts_leave_the_survey_for_a_retry(
    service, visits, session_factory, clock, telegram, error
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    telegram.errors.append(error)
    with pytest.raises(type(error)):
        await service.send(survey_id)
    survey, _ = await load(session_factory, survey_id)
    assert survey.state is SurveyState.SCHEDULED
    assert await service.send(survey_id) is Outcome.SENT


async def test_a_send_that_keeps_failing_fails_the_survey_with_the_reason_at_last(
    service, visits, session_factory, clock, telegram, jobs
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    config = SchedulerConfig(attempts=3, retry_delay=timedelta(minutes=1))
    scheduler = Scheduler(jobs, clock, config, jitter=lambda: 0.0)
    service.register(scheduler)
    telegram.errors.extend(
        telegram_error(TelegramServerError, "Bad Gateway") for _ in range(config.attempts)
    )

    for attempt in range(1, config.attempts + 1):
        assert await scheduler.run_due() == 1
        survey, _ = await load(session_factory, survey_id)
        if attempt < config.attempts:
            assert survey.state is SurveyState.SCHEDULED
            clock.advance(hours=1)

    assert survey.state is SurveyState.FAILED
    assert survey.state_reason == "send_failed: TelegramServerError: Bad Gateway"
    send = await job(session_factory, f"survey:{survey_id}:send")
    assert (send.state, send.attempts) == (JobState.FAILED, config.attempts)
    assert "Bad Gateway" in send.last_error


# ------------------------------------------------------------------------------- the message


@pytest.mark.parametrize(
    ("location", "service_name", "question"),
    [
        ("Downtown", None, "How was your visit to Downtown today, Anna?"),
        ("Downtown", "haircut", "How was your haircut at Downtown today, Anna?"),
        (None, "haircut", "How was your haircut with Rice Shop today, Anna?"),
        (None, None, "How was your visit to Rice Shop today, Anna?"),
    ],
)
async def test_the_question_names_the_place_or_the_service(
    service, visits, session_factory, clock, telegram, location, service_name, question
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory, location=location, service=service_name)
    await service.send(survey_id)
    first_line, _, hint = telegram.sent[0].text.partition("\n\n")
    assert first_line == question
    assert hint == "Tap a score from 1 to 5, where 5 is excellent. One tap is all it takes!"


async def test_a_customer_without_a_first_name_is_still_addressed_politely(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock, name=None)
    survey_id = await survey_for(visits, session_factory)
    await service.send(survey_id)
    assert telegram.sent[0].text.startswith("How was your visit to Downtown today, dear customer?")


def test_an_nps_survey_offers_0_to_10_in_two_rows_and_asks_about_recommending() -> None:
    visit = Visit(location="Downtown", occurred_at=VISITED)
    customer = Customer(first_name="Anna")
    message = compose_survey(
        42, SurveyScale.NPS, visit, customer, words=Texts(BUSINESS), now=NOON, zone=UTC
    )
    rows = [[button.text for button in row] for row in message.keyboard.inline_keyboard]
    assert rows == [[str(n) for n in range(6)], [str(n) for n in range(6, 11)]]
    assert "recommend Rice Shop to a friend" in message.text
    data = [button.callback_data for row in message.keyboard.inline_keyboard for button in row]
    assert data[0] == "sc:42:0"
    assert data[-1] == "sc:42:10"


@pytest.mark.parametrize(
    ("visited", "now", "zone", "said"),
    [
        (NOON - timedelta(hours=3), NOON, "UTC", "today"),
        (NOON - timedelta(days=1), NOON, "UTC", "yesterday"),
        (NOON - timedelta(days=3), NOON, "UTC", "on Friday"),
        (NOON - timedelta(days=6), NOON, "UTC", "on Tuesday"),
        (NOON - timedelta(days=9), NOON, "UTC", "on 27 December"),
        # 22:30 UTC on the 4th is already the 5th in Tokyo: "today" there, "yesterday" in UTC.
        (datetime(2026, 1, 4, 22, 30, tzinfo=UTC), NOON, "Asia/Tokyo", "today"),
        (datetime(2026, 1, 4, 22, 30, tzinfo=UTC), NOON, "UTC", "yesterday"),
        # 23:00 in New York on the 4th is after midnight UTC: still "yesterday" there.
        (datetime(2026, 1, 5, 4, 0, tzinfo=UTC), NOON, "America/New_York", "yesterday"),
    ],
)
def test_the_day_of_the_visit_is_said_as_the_customer_would_say_it(
    visited: datetime, now: datetime, zone: str, said: str
) -> None:
    assert visit_day(visited, now, ZoneInfo(zone), Texts(BUSINESS), "en") == said


def test_score_callback_data_stays_well_inside_telegrams_64_bytes() -> None:
    largest = ScoreCallback(survey_id=2**63 - 1, score=10).pack()
    assert len(largest.encode()) <= 64
    assert ScoreCallback.unpack(largest) == ScoreCallback(survey_id=2**63 - 1, score=10)


# -------------------------------------------------------------------------------- reminding


async def sent_survey(service, visits, session_factory, clock) -> int:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    assert await service.send(survey_id) is Outcome.SENT
    return survey_id


async def test_one_reminder_replies_to_the_survey_message(
    service, visits, session_factory, clock, telegram
) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    clock.advance(hours=24)

    assert await service.remind(survey_id) is Outcome.REMINDED
    assert await service.remind(survey_id) is Outcome.NOTHING

    _, reminder = telegram.sent
    assert reminder.chat_id == ANNA
    assert reminder.reply_parameters.message_id == 701
    assert reminder.reply_markup is None
    assert reminder.text.startswith("A gentle reminder, Anna: one tap on a score above")
    survey, _ = await load(session_factory, survey_id)
    assert survey.reminder_sent_at == NOON + timedelta(hours=24)
    assert survey.state is SurveyState.SENT


@pytest.mark.parametrize(
    "change",
    [
        {"state": SurveyState.ANSWERED, "answered_at": NOON},
        {"state": SurveyState.EXPIRED, "state_reason": "unanswered"},
    ],
)
async def test_no_reminder_once_the_survey_is_answered_or_over(
    service, visits, session_factory, clock, telegram, change
) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    async with session_factory.begin() as session:
        await session.execute(update(Survey).where(Survey.id == survey_id).values(**change))
    clock.advance(hours=24)
    assert await service.remind(survey_id) is Outcome.NOTHING
    assert len(telegram.sent) == 1


async def test_no_reminder_after_the_customer_opted_out(
    service, visits, session_factory, clock, telegram
) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    await set_customer(session_factory, opted_out_at=NOON + timedelta(hours=1))
    clock.advance(hours=24)
    assert await service.remind(survey_id) is Outcome.NOTHING
    assert len(telegram.sent) == 1


async def test_a_reminder_running_late_into_quiet_hours_waits_for_the_morning(
    session_factory, jobs, clock, telegram, visits
) -> None:
    quiet = SurveyPolicy(quiet_hours=parse_quiet_hours("21:00-09:00"))
    service = SurveyService(session_factory, jobs, quiet, clock, telegram, words=Texts(BUSINESS))
    survey_id = await sent_survey(service, visits, session_factory, clock)
    clock.set(datetime(2026, 1, 6, 22, 0, tzinfo=UTC))  # the job ran late, at 22:00

    assert await service.remind(survey_id) is Outcome.RESCHEDULED

    morning = datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    again = await job(session_factory, reminder_job_key(survey_id, morning))
    assert (again.kind, again.due_at) == (SURVEY_REMINDER, morning)
    assert len(telegram.sent) == 1
    clock.set(morning)
    assert await service.remind(survey_id) is Outcome.REMINDED


async def test_a_reminder_that_fails_for_now_can_be_sent_by_the_retry(
    service, visits, session_factory, clock, telegram
) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    clock.advance(hours=24)
    telegram.errors.append(telegram_error(TelegramServerError, "Bad Gateway"))
    with pytest.raises(TelegramServerError):
        await service.remind(survey_id)
    survey, _ = await load(session_factory, survey_id)
    assert survey.reminder_sent_at is None
    assert await service.remind(survey_id) is Outcome.REMINDED


async def test_a_blocked_bot_at_reminder_time_marks_the_customer_unreachable(
    service, visits, session_factory, clock, telegram
) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    clock.advance(hours=24)
    telegram.errors.append(
        telegram_error(TelegramForbiddenError, "Forbidden: bot was blocked by the user")
    )
    assert await service.remind(survey_id) is Outcome.FAILED
    survey, customer = await load(session_factory, survey_id)
    assert customer.unreachable_at == clock.now()
    assert survey.state is SurveyState.SENT  # it was delivered; it will expire unanswered
    assert await service.remind(survey_id) is Outcome.NOTHING


# --------------------------------------------------------------------------------- expiring


async def test_an_unanswered_survey_expires_after_the_expiry_counted_from_sending(
    service, visits, session_factory, clock, telegram
) -> None:
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)
    clock.advance(hours=5)  # sent five hours after it was due
    assert await service.send(survey_id) is Outcome.SENT
    sent_at = clock.now()

    # The first expiry check (due + 72h) comes too early now, and defers to the exact one.
    clock.set(NOON + timedelta(hours=72))
    assert await service.expire(survey_id) is Outcome.RESCHEDULED
    check = await job(session_factory, expiry_job_key(survey_id, sent_at + timedelta(hours=72)))
    assert check.state is JobState.PENDING

    clock.set(sent_at + timedelta(hours=72))
    assert await service.expire(survey_id) is Outcome.EXPIRED
    survey, _ = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason, survey.closed_at) == (
        SurveyState.EXPIRED,
        "unanswered",
        clock.now(),
    )
    assert await service.expire(survey_id) is Outcome.NOTHING


async def test_a_survey_for_someone_who_never_started_the_bot_expires_with_that_reason(
    service, visits, session_factory, clock
) -> None:
    survey_id = await survey_for(visits, session_factory, user_id=None, ref="crm-77")
    assert await service.send(survey_id) is Outcome.WAITING
    clock.advance(hours=71)
    assert await service.expire(survey_id) is Outcome.RESCHEDULED
    clock.advance(hours=1)
    assert await service.expire(survey_id) is Outcome.EXPIRED
    survey, _ = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason) == (SurveyState.EXPIRED, "never_started")


async def test_an_answered_survey_never_expires(service, visits, session_factory, clock) -> None:
    survey_id = await sent_survey(service, visits, session_factory, clock)
    async with session_factory.begin() as session:
        await session.execute(
            update(Survey).where(Survey.id == survey_id).values(state=SurveyState.ANSWERED)
        )
    clock.advance(days=10)
    assert await service.expire(survey_id) is Outcome.NOTHING
    survey, _ = await load(session_factory, survey_id)
    assert survey.state is SurveyState.ANSWERED


async def test_the_whole_life_runs_through_the_scheduler(
    service, visits, session_factory, clock, telegram, jobs
) -> None:
    """Send at due time, remind a day later, expire three days after sending: each by its job."""
    scheduler = Scheduler(jobs, clock)
    service.register(scheduler)
    await started(session_factory, clock)
    survey_id = await survey_for(visits, session_factory)

    clock.advance(minutes=30)
    assert await scheduler.run_due() == 1  # the send, half an hour after it was due
    clock.advance(hours=24)
    assert await scheduler.run_due() == 1  # the reminder
    clock.set(NOON + timedelta(hours=72))
    # The expiry check due 72 h after the survey was due finds it sent later...
    assert await scheduler.run_due() == 1
    clock.advance(minutes=30)
    assert await scheduler.run_due() == 1  # ...and checks again 72 h after it was sent
    assert await scheduler.run_due() == 0

    survey, _ = await load(session_factory, survey_id)
    assert (survey.state, survey.state_reason) == (SurveyState.EXPIRED, "unanswered")
    assert len(telegram.sent) == 2
    async with session_factory() as session:
        states = set(await session.scalars(select(Job.state)))
    assert states == {JobState.DONE}
    assert scheduler.stats.by_kind == {SEND_SURVEY: 1, SURVEY_REMINDER: 1, EXPIRE_SURVEY: 2}
