"""/stop, /start again and /forget as a service, on a real database with a fake clock and a fake
Telegram: stopping closes what was scheduled and nothing goes out afterwards; forgetting leaves
no trace of the person anywhere in the database while every score still counts."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.types import Chat, InlineKeyboardMarkup, Message, ReplyParameters
from sqlalchemy import JSON, Integer, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.arrivals import LinkArrivals, Linked, LinkNotUsable, VisitNoted
from bot.clock import FakeClock
from bot.links import Links
from bot.policy import SurveyPolicy
from bot.privacy import ERASED_ACTION, PrivacyService, StopOutcome
from bot.surveys import EXPIRE_SURVEY, SURVEY_REMINDER, Outcome, SurveyService
from bot.texts import Texts
from bot.values import QuietHours
from bot.visits import SEND_SURVEY, CustomerIn, VisitIn, VisitService
from storage.jobs import JobQueue
from storage.models import (
    Answer,
    AnswerReason,
    AnswerStage,
    AuditEntry,
    Base,
    Case,
    CaseMessage,
    CaseOffer,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Customer,
    LinkKind,
    LinkTarget,
    MessageDirection,
    Reason,
    SentimentLabel,
    StaffChat,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)
from storage.repositories import CustomerRepository, TelegramProfile

NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # the FakeClock starts here
BUSINESS = "Rice Shop"

# The person who will ask to be forgotten: values distinctive enough to find anywhere.
ZEB = 987_654_321
NAME = "Zebulon"
USERNAME = "zeb_quietly"
REF = "CRM-ZEB-4711"
COMMENT = "The soup was cold and the waiter sighed at me"
LATER_COMMENT = "Also the music was far too loud"
VOICE = "AwACAgIAAxkBAAIZebVoiceNote"
PHOTO = "AgACAgIAAxkBAAIZebPhoto"

# Someone else, whose data must survive untouched.
OTTO = 123_450_987
OTTO_COMMENT = "Lovely noodles, thank you"

STAFF = 4242  # a staff member's Telegram id
_message_ids = itertools.count(100)


# ------------------------------------------------------------------------------ fakes, helpers


@dataclass
class FakeTelegram:
    """Records what the survey service sends."""

    sent: list[tuple[int | str, str]] = field(default_factory=list)

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        reply_parameters: ReplyParameters | None = None,
    ) -> Message:
        self.sent.append((chat_id, text))
        return Message(
            message_id=700 + len(self.sent),
            date=NOON,
            chat=Chat(id=int(chat_id), type="private"),
            text=text,
        )


@pytest.fixture
def policy() -> SurveyPolicy:
    # No quiet hours and no cooldown: every visit gets a survey, due two hours after it.
    return SurveyPolicy(quiet_hours=QuietHours.off(), cooldown=timedelta(0))


@pytest.fixture
def jobs(engine, clock) -> JobQueue:
    return JobQueue(engine, clock=clock)


@pytest.fixture
def visits(session_factory, jobs, policy, clock) -> VisitService:
    return VisitService(session_factory, jobs, policy, clock)


@pytest.fixture
def links(session_factory, clock) -> Links:
    return Links(session_factory, clock)


@pytest.fixture
def arrivals(session_factory, links, visits, jobs, policy, clock) -> LinkArrivals:
    return LinkArrivals(session_factory, links, visits, jobs, policy, clock)


@pytest.fixture
def telegram() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def surveys(session_factory, jobs, policy, clock, telegram) -> SurveyService:
    return SurveyService(session_factory, jobs, policy, clock, telegram, words=Texts(BUSINESS))


@pytest.fixture
def privacy(session_factory, clock) -> PrivacyService:
    return PrivacyService(session_factory, clock)


async def press(
    arrivals: LinkArrivals, payload: str, user_id: int = ZEB, name: str = NAME, username=USERNAME
):
    return await arrivals.arrived(
        payload,
        telegram_user_id=user_id,
        message_id=next(_message_ids),
        sent_at=NOON,
        first_name=name,
        username=username,
        language="en",
    )


async def api_visit(
    visits: VisitService, visit_id: str, at: datetime, *, ref: str | None = REF, user_id=None
) -> None:
    await visits.record(
        VisitIn(
            visit_id=visit_id,
            customer=CustomerIn(
                ref=ref, telegram_user_id=user_id, name=f"{NAME} Quill", timezone="Europe/Berlin"
            ),
            occurred_at=at,
            source=VisitSource.API,
            location="Harbour",
        )
    )


async def survey_of(session_factory, visit_id: str) -> Survey:
    async with session_factory() as session:
        return await session.scalar(select(Survey).join(Visit).where(Visit.external_id == visit_id))


async def run_due_jobs(
    jobs: JobQueue, surveys: SurveyService, clock: FakeClock, until: datetime
) -> list[Outcome]:
    """Do what the scheduler would over the time up to ``until``: run every job as it comes
    due, in order, with the clock at its due time."""
    handlers = {
        SEND_SURVEY: surveys.handle_send,
        SURVEY_REMINDER: surveys.handle_reminder,
        EXPIRE_SURVEY: surveys.handle_expiry,
    }
    outcomes = []
    while claimed := await jobs.claim_due(until, 1, lease=timedelta(minutes=5), worker="test"):
        [job] = claimed
        clock.set(max(clock.now(), job.due_at))
        outcomes.append(await handlers[job.kind](job))
        await jobs.complete(job)
    return outcomes


async def survey_of_id(session_factory, survey_id: int) -> Survey:
    async with session_factory() as session:
        return await session.get(Survey, survey_id)


async def customer(session_factory, customer_id: int) -> Customer:
    async with session_factory() as session:
        return await session.get(Customer, customer_id)


async def find_anywhere(session: AsyncSession, needles: list[str | int]) -> list[str]:
    """Every place in the database that holds one of the needles: each text (and enum) column
    is searched for the needles as text (case-insensitively, as a part of the value), each
    integer column for the integer needles, each JSON column for any needle in its JSON text.
    Answers "table.column = value" per hit."""
    texts = [str(needle).casefold() for needle in needles]
    numbers = {needle for needle in needles if isinstance(needle, int)}
    hits = []
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).mappings().all()
        for row in rows:
            for column in table.columns:
                value = row[column]
                if value is None:
                    continue
                if isinstance(column.type, JSON):
                    found = any(t in json.dumps(value, default=str).casefold() for t in texts)
                elif isinstance(column.type, String):
                    found = any(t in str(value).casefold() for t in texts)
                elif isinstance(column.type, Integer):
                    found = value in numbers
                else:
                    continue
                if found:
                    hits.append(f"{table.name}.{column.name} = {value!r}")
    return hits


PERSONAL = [ZEB, NAME, USERNAME, REF, COMMENT, LATER_COMMENT, VOICE, PHOTO]


# --------------------------------------------------------------------- Zebulon's whole history


@dataclass
class History:
    customer_id: int
    answered: int  # survey ids
    sent: int
    scheduled: int
    personal_payload: str


@pytest.fixture
async def history(
    session_factory, clock: FakeClock, visits, links, arrivals, surveys, telegram
) -> History:
    """Zebulon's time with the business, through the real services where they exist:

    - an API visit (ref REF) two hours ago, whose survey is sent and answered with a low score,
      a comment, a voice note and a tapped reason; a case about it, talked over and resolved;
    - his personal link pressed (binding his Telegram id to REF), then a QR scan at Harbour
      (a deep-link visit, survey scheduled for 14:00);
    - another API visit an hour ago, whose survey is sent at 13:00 and not answered;
    - a message of his own (unsolicited feedback);

    and the clock at 13:30. Otto is another customer, with a scan and a comment of his own.
    """
    await api_visit(visits, "pos-1", NOON - timedelta(hours=2))
    personal = await links.personal_payload(REF)
    assert isinstance(await press(arrivals, personal), Linked)
    location = await links.location_payload("Harbour", staff="Li")
    scan = await press(arrivals, location)
    assert isinstance(scan, VisitNoted) and scan.created
    await api_visit(visits, "pos-2", NOON - timedelta(hours=1))

    answered = await survey_of(session_factory, "pos-1")
    assert await surveys.send(answered.id) is Outcome.SENT
    await press(arrivals, location, user_id=OTTO, name="Otto", username="otto_k")

    async with session_factory.begin() as session:
        customer_id = answered.customer_id
        link_visit = await session.scalar(
            select(Visit).where(Visit.customer_id == customer_id, Visit.source == VisitSource.LINK)
        )
        assert str(ZEB) in link_visit.external_id
        await session.execute(
            update(Survey)
            .where(Survey.id == answered.id)
            .values(state=SurveyState.ANSWERED, answered_at=NOON)
        )
        reason = Reason(code="test_cold_food", label="Cold food", position=0, created_at=NOON)
        answer = Answer(
            survey_id=answered.id,
            customer_id=customer_id,
            scale=SurveyScale.CSAT,
            score=2,
            comment=COMMENT,
            media_kind="voice",
            media_file_id=VOICE,
            contact_requested=True,
            sentiment_label=SentimentLabel.NEGATIVE,
            sentiment_score=-0.8,
            sentiment_language="en",
            suggested_reasons=["test_cold_food"],
            stage=AnswerStage.DONE,
            prompt_message_id=555,
            completed_at=NOON,
            created_at=NOON,
            updated_at=NOON,
        )
        unsolicited = Answer(
            customer_id=customer_id,
            unsolicited=True,
            comment=LATER_COMMENT,
            sentiment_label=SentimentLabel.NEGATIVE,
            sentiment_score=-0.4,
            stage=AnswerStage.DONE,
            created_at=NOON,
        )
        session.add_all([reason, answer, unsolicited])
        await session.flush()
        session.add(AnswerReason(answer_id=answer.id, reason_id=reason.id))
        chat = StaffChat(chat_id=-100_777, title="Front desk", created_at=NOON)
        session.add(chat)
        await session.flush()
        case = Case(
            answer_id=answer.id,
            customer_id=customer_id,
            state=CaseState.RESOLVED,
            severity=CaseSeverity.CRITICAL,
            trigger=CaseTrigger.CONTACT_REQUESTED,
            staff_chat_id=chat.id,
            card_message_id=9000,
            taken_by=STAFF,
            taken_by_name="Mira",
            taken_at=NOON,
            first_responded_at=NOON,
            resolved_at=NOON,
            resolved_by=STAFF,
            resolution_note=f"Called {NAME}: refunded the soup",
            offer=CaseOffer.REFUND,
            created_at=NOON,
        )
        session.add(case)
        await session.flush()
        session.add_all(
            [
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.CUSTOMER_TO_STAFF,
                    author_user_id=ZEB,
                    text=f"{NAME} here: {COMMENT}",
                    staff_chat_id=chat.id,
                    staff_message_id=9001,
                    customer_message_id=77,
                    created_at=NOON,
                ),
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.CUSTOMER_TO_STAFF,
                    author_user_id=ZEB,
                    media_kind="photo",
                    media_file_id=PHOTO,
                    staff_chat_id=chat.id,
                    staff_message_id=9002,
                    customer_message_id=78,
                    created_at=NOON,
                ),
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.STAFF_TO_CUSTOMER,
                    author_user_id=STAFF,
                    text=f"Dear {NAME}, we are so sorry.",
                    staff_chat_id=chat.id,
                    staff_message_id=9003,
                    customer_message_id=79,
                    created_at=NOON,
                ),
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.INTERNAL,
                    author_user_id=STAFF,
                    text=f"regular, see {REF} (@{USERNAME})",
                    staff_chat_id=chat.id,
                    staff_message_id=9004,
                    created_at=NOON,
                ),
            ]
        )
        otto = await session.scalar(select(Customer).where(Customer.telegram_user_id == OTTO))
        session.add(
            Answer(customer_id=otto.id, unsolicited=True, comment=OTTO_COMMENT, created_at=NOON)
        )

    clock.set(NOON + timedelta(hours=1))
    sent = await survey_of(session_factory, "pos-2")
    assert await surveys.send(sent.id) is Outcome.SENT
    clock.set(NOON + timedelta(minutes=90))
    async with session_factory() as session:
        scheduled_id = await session.scalar(
            select(Survey.id).where(
                Survey.customer_id == customer_id, Survey.state == SurveyState.SCHEDULED
            )
        )
    telegram.sent.clear()
    return History(
        customer_id=customer_id,
        answered=answered.id,
        sent=sent.id,
        scheduled=scheduled_id,
        personal_payload=personal,
    )


async def snapshot(session_factory) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a call changed nothing."""
    async with session_factory() as session:
        return {
            table.name: sorted(map(tuple, (await session.execute(select(table))).all()), key=repr)
            for table in Base.metadata.sorted_tables
        }


async def kept_for_statistics(session_factory) -> dict[str, Any]:
    """What /forget must keep: every answer with its score and reading, the tapped reasons, the
    cases with their outcome, the visits and the surveys."""
    async with session_factory() as session:
        answers = await session.execute(
            select(
                Answer.id,
                Answer.customer_id,
                Answer.survey_id,
                Answer.unsolicited,
                Answer.scale,
                Answer.score,
                Answer.contact_requested,
                Answer.sentiment_label,
                Answer.sentiment_score,
                Answer.sentiment_language,
                Answer.stage,
                Answer.completed_at,
                Answer.created_at,
            ).order_by(Answer.id)
        )
        reasons = await session.execute(select(AnswerReason.answer_id, AnswerReason.reason_id))
        cases = await session.execute(
            select(Case.id, Case.customer_id, Case.state, Case.severity, Case.offer, Case.taken_by)
        )
        return {
            "answers": answers.all(),
            "reasons": sorted(reasons.all()),
            "cases": cases.all(),
            "case_messages": await session.scalar(select(func.count()).select_from(CaseMessage)),
            "visits": await session.scalar(select(func.count()).select_from(Visit)),
            "surveys": await session.scalar(select(func.count()).select_from(Survey)),
        }


# ------------------------------------------------------------------------------------- /stop


async def test_stop_skips_what_was_scheduled_and_nothing_goes_out_afterwards(
    privacy, history, session_factory, clock, jobs, surveys, telegram
) -> None:
    assert await privacy.stop(ZEB) is StopOutcome.STOPPED

    assert (await customer(session_factory, history.customer_id)).opted_out_at == clock.now()
    scheduled = await survey_of_id(session_factory, history.scheduled)
    assert scheduled.state is SurveyState.SKIPPED
    assert (scheduled.state_reason, scheduled.closed_at) == ("opted_out", clock.now())
    # Sent but unanswered: left to expire; answered: as it was.
    assert (await survey_of_id(session_factory, history.sent)).state is SurveyState.SENT
    assert (await survey_of_id(session_factory, history.answered)).state is SurveyState.ANSWERED

    # The scheduled survey's send job comes due at 14:00, the reminder of the sent one the next
    # day, its expiry three days after sending: none of them writes to him.
    await run_due_jobs(jobs, surveys, clock, NOON + timedelta(days=10))
    assert [chat for chat, _ in telegram.sent if chat == ZEB] == []
    assert {chat for chat, _ in telegram.sent} == {OTTO}  # the jobs did run
    expired = await survey_of_id(session_factory, history.sent)
    assert (expired.state, expired.state_reason) == (SurveyState.EXPIRED, "unanswered")
    assert expired.reminder_sent_at is None


async def test_stop_again_keeps_the_first_moment(privacy, history, session_factory, clock) -> None:
    assert await privacy.stop(ZEB) is StopOutcome.STOPPED
    first = clock.now()
    clock.advance(hours=3)
    assert await privacy.stop(ZEB) is StopOutcome.ALREADY
    assert (await customer(session_factory, history.customer_id)).opted_out_at == first


async def test_a_visit_after_stop_is_not_asked_about(privacy, history, visits) -> None:
    await privacy.stop(ZEB)
    recorded = await visits.record(
        VisitIn(
            visit_id="pos-9",
            customer=CustomerIn(ref=REF),
            occurred_at=NOON + timedelta(hours=1),
            source=VisitSource.API,
        )
    )
    assert (recorded.survey_state, recorded.survey_reason) == (SurveyState.SKIPPED, "opted_out")


# ----------------------------------------------------------------------------------- resuming


async def test_start_after_stop_turns_questions_back_on(
    privacy, history, session_factory, clock, jobs, surveys, telegram, visits
) -> None:
    assert await privacy.resume(ZEB) is False  # had not stopped
    await privacy.stop(ZEB)
    clock.advance(minutes=10)

    assert await privacy.resume(ZEB) is True
    assert await privacy.resume(ZEB) is False  # a repeated /start
    assert (await customer(session_factory, history.customer_id)).opted_out_at is None
    # What was skipped while he had opted out stays skipped.
    skipped = await survey_of_id(session_factory, history.scheduled)
    assert (skipped.state, skipped.state_reason) == (SurveyState.SKIPPED, "opted_out")

    await api_visit(visits, "pos-3", clock.now())
    new = await survey_of(session_factory, "pos-3")
    assert new.state is SurveyState.SCHEDULED
    await run_due_jobs(jobs, surveys, clock, new.due_at)
    assert [chat for chat, _ in telegram.sent if chat == ZEB] == [ZEB]
    assert (await survey_of_id(session_factory, new.id)).state is SurveyState.SENT


# ------------------------------------------------------------------------------------ /forget


async def test_forget_leaves_no_trace_of_the_person_and_every_score_still_counts(
    privacy, history, session_factory
) -> None:
    kept = await kept_for_statistics(session_factory)
    async with session_factory() as session:
        before = await find_anywhere(session, PERSONAL)
    # The search finds him where he was (so finding nothing afterwards means something).
    for place in (
        "customers.telegram_user_id",
        "customers.external_ref",
        "customers.first_name",
        "customers.username",
        "visits.external_id",
        "surveys.chat_id",
        "answers.comment",
        "answers.media_file_id",
        "cases.resolution_note",
        "case_messages.text",
        "case_messages.author_user_id",
        "case_messages.media_file_id",
        "link_targets.customer_ref",
    ):
        assert any(hit.startswith(f"{place} = ") for hit in before), place

    assert await privacy.forget(ZEB) is True

    async with session_factory() as session:
        assert await find_anywhere(session, PERSONAL) == []
    assert await kept_for_statistics(session_factory) == kept


async def test_forget_closes_surveys_renames_link_visits_and_ends_the_personal_link(
    privacy, history, session_factory, clock, links, visits
) -> None:
    assert await privacy.forget(ZEB) is True
    now = clock.now()

    erased = await customer(session_factory, history.customer_id)
    assert erased.erased_at == now
    assert (erased.telegram_user_id, erased.external_ref, erased.first_name) == (None, None, None)
    assert (erased.username, erased.language, erased.timezone) == (None, None, None)

    scheduled = await survey_of_id(session_factory, history.scheduled)
    assert (scheduled.state, scheduled.state_reason) == (SurveyState.SKIPPED, "erased")
    sent = await survey_of_id(session_factory, history.sent)
    assert (sent.state, sent.state_reason, sent.closed_at) == (SurveyState.EXPIRED, "erased", now)
    assert (sent.chat_id, sent.message_id) == (None, None)
    answered = await survey_of_id(session_factory, history.answered)
    assert (answered.state, answered.state_reason) == (SurveyState.ANSWERED, None)

    async with session_factory() as session:
        business_ids = list(
            await session.scalars(
                select(Visit.external_id)
                .where(Visit.customer_id == history.customer_id, Visit.source == VisitSource.API)
                .order_by(Visit.id)
            )
        )
        link_visit = await session.scalar(
            select(Visit).where(
                Visit.source == VisitSource.LINK, Visit.customer_id == history.customer_id
            )
        )
        kinds = list(await session.scalars(select(LinkTarget.kind)))
        answer = await session.scalar(select(Answer).where(Answer.survey_id == history.answered))
        case = await session.scalar(select(Case))
        messages = (await session.scalars(select(CaseMessage).order_by(CaseMessage.id))).all()
    assert link_visit.external_id == f"erased:{link_visit.id}"
    assert business_ids == ["pos-1", "pos-2"]  # the business's own visit ids stay
    assert LinkKind.CUSTOMER not in kinds and LinkKind.LOCATION in kinds
    assert await links.resolve(history.personal_payload) is None

    assert (answer.comment, answer.media_kind, answer.media_file_id) == (None, None, None)
    assert answer.suggested_reasons is None and answer.prompt_message_id is None
    assert (answer.score, answer.sentiment_label, answer.contact_requested) == (
        2,
        SentimentLabel.NEGATIVE,
        True,
    )
    assert (case.state, case.resolution_note, case.taken_by) == (CaseState.RESOLVED, None, STAFF)
    assert [(m.direction, m.text, m.media_file_id) for m in messages] == [
        (MessageDirection.CUSTOMER_TO_STAFF, None, None),
        (MessageDirection.CUSTOMER_TO_STAFF, None, None),
        (MessageDirection.STAFF_TO_CUSTOMER, None, None),
        (MessageDirection.INTERNAL, None, None),
    ]
    assert [m.author_user_id for m in messages] == [None, None, STAFF, STAFF]
    assert [m.staff_message_id for m in messages] == [9001, 9002, 9003, 9004]

    # The business sending a visit again stays idempotent: no new customer springs up.
    again = await visits.record(
        VisitIn(
            visit_id="pos-1",
            customer=CustomerIn(ref=REF, name=NAME),
            occurred_at=NOON - timedelta(hours=2),
            source=VisitSource.API,
        )
    )
    assert not again.created


async def test_forget_is_audited_without_personal_data(privacy, history, session_factory) -> None:
    await privacy.forget(ZEB)
    async with session_factory() as session:
        [entry] = (await session.scalars(select(AuditEntry))).all()
    assert (entry.action, entry.target) == (ERASED_ACTION, f"customer:{history.customer_id}")
    assert (entry.actor_id, entry.actor_name, entry.old_value) == (None, None, None)
    assert entry.new_value == {
        "surveys_closed": 2,
        "answers": 2,
        "case_messages": 4,
        "link_visits": 1,
        "personal_links": 1,
    }


async def test_after_forget_no_job_writes_to_the_person(
    privacy, history, jobs, surveys, telegram, session_factory, clock
) -> None:
    await privacy.forget(ZEB)
    await run_due_jobs(jobs, surveys, clock, NOON + timedelta(days=10))
    assert [chat for chat, _ in telegram.sent if chat == ZEB] == []
    assert {chat for chat, _ in telegram.sent} == {OTTO}  # the jobs did run
    assert (await survey_of_id(session_factory, history.sent)).state_reason == "erased"


async def test_forget_leaves_everyone_else_alone(privacy, history, session_factory) -> None:
    await privacy.forget(ZEB)
    async with session_factory() as session:
        otto = await session.scalar(select(Customer).where(Customer.telegram_user_id == OTTO))
        assert (otto.first_name, otto.username, otto.erased_at) == ("Otto", "otto_k", None)
        visit = await session.scalar(select(Visit).where(Visit.customer_id == otto.id))
        assert visit.external_id.startswith(f"link:{OTTO}:")
        comment = await session.scalar(select(Answer.comment).where(Answer.customer_id == otto.id))
        assert comment == OTTO_COMMENT


async def test_forget_twice_erases_once(privacy, history, session_factory, clock) -> None:
    assert await privacy.forget(ZEB) is True
    after = await snapshot(session_factory)
    clock.advance(hours=1)
    assert await privacy.forget(ZEB) is False
    assert await snapshot(session_factory) == after


async def test_forget_arriving_twice_at_once_erases_once(privacy, history, session_factory) -> None:
    results = await asyncio.gather(privacy.forget(ZEB), privacy.forget(ZEB))
    assert sorted(results) == [False, True]
    async with session_factory() as session:
        assert await find_anywhere(session, PERSONAL) == []
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1


async def test_an_unknown_person_changes_nothing(privacy, history, session_factory) -> None:
    before = await snapshot(session_factory)
    assert await privacy.stop(555) is StopOutcome.UNKNOWN
    assert await privacy.resume(555) is False
    assert await privacy.forget(555) is False
    assert await snapshot(session_factory) == before


async def test_after_forget_the_same_person_starts_afresh(
    privacy, history, session_factory, clock, arrivals
) -> None:
    await privacy.forget(ZEB)
    # Erased, he is nobody the bot knows: /stop finds no one.
    assert await privacy.stop(ZEB) is StopOutcome.UNKNOWN
    assert await privacy.resume(ZEB) is False
    # His old personal link leads nowhere now; pressing it is a plain /start.
    outcome = await press(arrivals, history.personal_payload)
    assert outcome == LinkNotUsable(name=NAME, is_new=True)

    async with session_factory.begin() as session:
        again, created = await CustomerRepository(session).get_or_create_by_telegram(
            TelegramProfile(user_id=ZEB, first_name=NAME), now=clock.now()
        )
    assert not created  # made by the press just above: one new customer, not two
    assert again.id != history.customer_id
    assert (again.telegram_user_id, again.erased_at, again.external_ref) == (ZEB, None, None)
    async with session_factory() as session:
        old_answers = await session.scalar(
            select(func.count()).select_from(Answer).where(Answer.customer_id == again.id)
        )
    assert old_answers == 0


async def test_forget_then_start_makes_a_new_customer(privacy, history, session_factory, clock):
    await privacy.forget(ZEB)
    async with session_factory.begin() as session:
        fresh, created = await CustomerRepository(session).get_or_create_by_telegram(
            TelegramProfile(user_id=ZEB, first_name=NAME, username=USERNAME), now=clock.now()
        )
    assert created and fresh.id != history.customer_id
    erased = await customer(session_factory, history.customer_id)
    assert erased.erased_at is not None and erased.telegram_user_id is None
