"""Models round-trip through the real database: times, states, constraints, relationships."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.models import (
    Answer,
    AuditEntry,
    Case,
    CaseMessage,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Customer,
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

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

Sessions = async_sessionmaker[AsyncSession]


def _customer(**fields: object) -> Customer:
    return Customer(created_at=NOW, **fields)


def _visit(customer: Customer, external_id: str = "v-1") -> Visit:
    return Visit(
        external_id=external_id,
        customer=customer,
        location="Downtown",
        staff="Mia",
        service="Haircut",
        occurred_at=NOW - timedelta(hours=2),
        source=VisitSource.API,
        created_at=NOW,
    )


def _survey(visit: Visit) -> Survey:
    return Survey(
        visit=visit,
        customer_id=visit.customer.id,
        state=SurveyState.SCHEDULED,
        scale=SurveyScale.CSAT,
        due_at=NOW,
        created_at=NOW,
    )


async def test_times_come_back_aware_utc(session_factory: Sessions) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    local = datetime(2026, 1, 5, 13, 30, 15, 123456, tzinfo=berlin_winter)
    async with session_factory() as session, session.begin():
        customer = _customer(telegram_user_id=1, opted_out_at=local)
        session.add(customer)
    async with session_factory() as session:
        loaded = await session.scalar(select(Customer))
        assert loaded is not None
        assert loaded.opted_out_at == local
        assert loaded.opted_out_at.tzinfo is UTC
        assert loaded.opted_out_at == datetime(2026, 1, 5, 12, 30, 15, 123456, tzinfo=UTC)
        assert loaded.created_at.tzinfo is UTC
        assert loaded.started_at is None


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    session.add(Customer(telegram_user_id=2, created_at=datetime(2026, 1, 5, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


async def test_time_comparisons_in_sql_use_utc(session_factory: Sessions) -> None:
    """Rows written with different UTC offsets still compare as instants in queries."""
    plus_five = timezone(timedelta(hours=5))
    async with session_factory() as session, session.begin():
        session.add(_customer(telegram_user_id=3, last_surveyed_at=NOW))
        session.add(_customer(telegram_user_id=4, last_surveyed_at=NOW.astimezone(plus_five)))
        session.add(_customer(telegram_user_id=5, last_surveyed_at=NOW + timedelta(seconds=1)))
    async with session_factory() as session:
        cutoff = (NOW + timedelta(microseconds=1)).astimezone(plus_five)
        ids = await session.scalars(
            select(Customer.telegram_user_id)
            .where(Customer.last_surveyed_at < cutoff)
            .order_by(Customer.telegram_user_id)
        )
        assert list(ids) == [3, 4]


async def test_states_are_stored_as_their_values(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        customer = _customer(telegram_user_id=10)
        session.add(customer)
        await session.flush()
        survey = _survey(_visit(customer))
        session.add(survey)
    async with session_factory() as session:
        raw = await session.scalar(text("SELECT state FROM surveys"))
        assert raw == "scheduled"
        loaded = await session.scalar(select(Survey))
        assert loaded is not None
        assert loaded.state is SurveyState.SCHEDULED
        assert loaded.scale is SurveyScale.CSAT


async def test_an_unknown_state_is_refused_by_the_database(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        session.add(StaffChat(chat_id=-100123, title="Back room", is_forum=True, created_at=NOW))
    async with session_factory() as session:
        with pytest.raises(IntegrityError):
            await session.execute(
                text(
                    "INSERT INTO routing_rules (position, severity, staff_chat_id, created_at) "
                    "SELECT 1, 'apocalyptic', id, created_at FROM staff_chats"
                )
            )


async def test_visit_id_is_an_idempotency_key(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        customer = _customer(external_ref="C-1")
        session.add(_visit(customer, "visit-42"))
    async with session_factory() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None
        session.add(_visit(customer, "visit-42"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_unique_telegram_id_and_ref_but_many_unknowns(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        # Customers known only by ref, and erased customers, have no Telegram id: NULLs
        # never collide.
        session.add_all([_customer(), _customer(), _customer(telegram_user_id=7)])
    async with session_factory() as session:
        session.add(_customer(telegram_user_id=7))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with session_factory() as session:
        session.add_all([_customer(external_ref="R"), _customer(external_ref="R")])
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_one_answer_per_survey_any_number_unsolicited(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        customer = _customer(telegram_user_id=20)
        session.add(customer)
        await session.flush()
        survey = _survey(_visit(customer))
        session.add(survey)
        await session.flush()
        session.add(Answer(survey_id=survey.id, customer_id=customer.id, score=2, created_at=NOW))
        for words in ("cold coffee", "rude waiter"):
            session.add(
                Answer(customer_id=customer.id, unsolicited=True, comment=words, created_at=NOW)
            )
    async with session_factory() as session:
        survey_id = await session.scalar(select(Survey.id))
        session.add(Answer(survey_id=survey_id, score=5, created_at=NOW))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with session_factory() as session:
        # Neither a survey nor marked unsolicited: the database refuses the orphan.
        session.add(Answer(score=3, created_at=NOW))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_scores_stay_in_range(session: AsyncSession) -> None:
    session.add(Answer(unsolicited=True, score=11, created_at=NOW))
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    session.add(
        Visit(
            external_id="v-orphan",
            customer_id=999_999,
            occurred_at=NOW,
            source=VisitSource.CSV,
            created_at=NOW,
        )
    )
    with pytest.raises(IntegrityError):
        await session.flush()


async def test_answer_with_reasons_and_sentiment(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        rude = Reason(code="rude_staff", label="Rude staff", position=1, created_at=NOW)
        wait = Reason(code="waited_too_long", label="Waited too long", position=0, created_at=NOW)
        customer = _customer(telegram_user_id=30, first_name="Anna", language="zh-hans")
        session.add_all([rude, wait, customer])
        await session.flush()
        survey = _survey(_visit(customer))
        session.add(survey)
        await session.flush()
        session.add(
            Answer(
                survey_id=survey.id,
                customer_id=customer.id,
                scale=SurveyScale.CSAT,
                score=2,
                comment="等了很久 😡 " + "x" * 5000,  # longer than a Telegram message, kept whole
                contact_requested=True,
                sentiment_label=SentimentLabel.NEGATIVE,
                sentiment_score=-0.8,
                sentiment_language="zh",
                suggested_reasons=["waited_too_long"],
                reasons=[rude, wait],
                created_at=NOW,
            )
        )
    async with session_factory() as session:
        answer = await session.scalar(select(Answer))
        assert answer is not None
        await session.refresh(answer, ["reasons"])
        assert [reason.code for reason in answer.reasons] == ["waited_too_long", "rude_staff"]
        assert answer.comment is not None and answer.comment.startswith("等了很久 😡")
        assert len(answer.comment) == 5000 + len("等了很久 😡 ")
        assert answer.sentiment_label is SentimentLabel.NEGATIVE
        assert answer.suggested_reasons == ["waited_too_long"]
        assert answer.unsolicited is False


async def test_case_with_conversation(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        chat = StaffChat(chat_id=-1001234567890, title="Complaints", is_forum=True, created_at=NOW)
        customer = _customer(telegram_user_id=40, first_name="Ben", username="ben")
        session.add_all([chat, customer])
        await session.flush()
        case = Case(
            customer_id=customer.id,
            state=CaseState.OPEN,
            severity=CaseSeverity.CRITICAL,
            trigger=CaseTrigger.CONTACT_REQUESTED,
            staff_chat_id=chat.id,
            thread_id=777,
            card_message_id=778,
            first_response_due_at=NOW + timedelta(hours=1),
            created_at=NOW,
        )
        session.add(case)
        await session.flush()
        session.add_all(
            [
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.CUSTOMER_TO_STAFF,
                    text="Still waiting",
                    customer_message_id=55,
                    staff_chat_id=chat.id,
                    staff_message_id=780,
                    created_at=NOW,
                ),
                CaseMessage(
                    case_id=case.id,
                    direction=MessageDirection.INTERNAL,
                    author_user_id=9001,
                    text="// call him",
                    staff_chat_id=chat.id,
                    staff_message_id=781,
                    created_at=NOW,
                ),
            ]
        )
    async with session_factory() as session:
        case = await session.scalar(select(Case).where(Case.thread_id == 777))
        assert case is not None
        await session.refresh(case, ["messages"])
        assert [m.direction for m in case.messages] == [
            MessageDirection.CUSTOMER_TO_STAFF,
            MessageDirection.INTERNAL,
        ]
        assert case.reopened_count == 0
        assert case.first_response_due_at == NOW + timedelta(hours=1)
        assert case.staff_chat_id is not None
        # A staff reply to a relayed message finds its case through the staff-side ids.
        found = await session.scalar(
            select(CaseMessage.case_id).where(
                CaseMessage.staff_chat_id == case.staff_chat_id,
                CaseMessage.staff_message_id == 780,
            )
        )
        assert found == case.id


async def test_audit_values_are_json(session_factory: Sessions) -> None:
    async with session_factory() as session, session.begin():
        session.add(
            AuditEntry(
                at=NOW,
                actor_id=1,
                action="setting.set",
                target="QUIET_HOURS",
                old_value="21:00-09:00",
                new_value={"from": "22:00", "to": "08:00"},
            )
        )
    async with session_factory() as session:
        entry = await session.scalar(select(AuditEntry))
        assert entry is not None
        assert entry.old_value == "21:00-09:00"
        assert entry.new_value == {"from": "22:00", "to": "08:00"}


async def test_relationships_never_load_implicitly(session_factory: Sessions) -> None:
    """In async code an implicit lazy load cannot work: it is refused with a clear error, and
    an explicit load works."""
    async with session_factory() as session, session.begin():
        customer = _customer(telegram_user_id=50)
        session.add(customer)
        await session.flush()
        session.add(_visit(customer, "v-50"))
    async with session_factory() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None
        with pytest.raises(InvalidRequestError, match="raise_on_sql"):
            _ = customer.visits
        loaded = await session.scalar(select(Customer).options(selectinload(Customer.visits)))
        assert loaded is not None
        assert [visit.external_id for visit in loaded.visits] == ["v-50"]
