"""The conversation service on a real database, without Telegram: what each turn records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.conversation import (
    COMMENT_WINDOW,
    DEFAULT_REASONS,
    FOLLOW_ON,
    ConversationPolicy,
    ConversationService,
    Media,
    Result,
    case_severity,
    score_band,
)
from bot.sentiment import BaselineClassifier, ScoreBand
from storage.models import (
    Answer,
    AnswerStage,
    Case,
    CaseSeverity,
    CaseTrigger,
    Customer,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)
from storage.repositories import TelegramProfile

ANNA = TelegramProfile(user_id=5001, first_name="Anna", language_code="en")
BORIS = TelegramProfile(user_id=5002, first_name="Boris", language_code="en")


@pytest.fixture
async def service(
    session_factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> ConversationService:
    conversation = ConversationService(
        session_factory, clock, BaselineClassifier(), ConversationPolicy()
    )
    await conversation.ensure_reasons()
    return conversation


async def sent_survey(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    who: TelegramProfile = ANNA,
    *,
    scale: SurveyScale = SurveyScale.CSAT,
    state: SurveyState = SurveyState.SENT,
) -> int:
    now = clock.now()
    async with sessions.begin() as session:
        customer = await session.scalar(
            select(Customer).where(Customer.telegram_user_id == who.user_id)
        )
        if customer is None:
            customer = Customer(
                telegram_user_id=who.user_id,
                first_name=who.first_name,
                started_at=now,
                created_at=now,
            )
            session.add(customer)
            await session.flush()
        count = await session.scalar(select(func.count()).select_from(Visit))
        visit = Visit(
            external_id=f"v{count}",
            customer_id=customer.id,
            location="Downtown",
            occurred_at=now - timedelta(hours=2),
            source=VisitSource.API,
            created_at=now,
        )
        session.add(visit)
        await session.flush()
        survey = Survey(
            visit_id=visit.id,
            customer_id=customer.id,
            state=state,
            scale=scale,
            due_at=now,
            sent_at=now,
            created_at=now,
        )
        session.add(survey)
        await session.flush()
        return survey.id


async def the(session_factory: async_sessionmaker[AsyncSession], model, ident):
    async with session_factory() as session:
        return await session.get(model, ident)


async def cases(session_factory: async_sessionmaker[AsyncSession]) -> list[Case]:
    async with session_factory() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


# -- pure rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "scale", "low", "band"),
    [
        (1, SurveyScale.CSAT, 3, ScoreBand.LOW),
        (3, SurveyScale.CSAT, 3, ScoreBand.LOW),
        (4, SurveyScale.CSAT, 3, ScoreBand.HIGH),
        (3, SurveyScale.CSAT, 2, ScoreBand.MIDDLE),
        (4, SurveyScale.CSAT, 4, ScoreBand.LOW),
        (5, SurveyScale.CSAT, 4, ScoreBand.HIGH),
        (0, SurveyScale.NPS, 6, ScoreBand.LOW),
        (6, SurveyScale.NPS, 6, ScoreBand.LOW),
        (7, SurveyScale.NPS, 6, ScoreBand.MIDDLE),
        (8, SurveyScale.NPS, 6, ScoreBand.MIDDLE),
        (9, SurveyScale.NPS, 6, ScoreBand.HIGH),
    ],
)
def test_score_bands(score: int, scale: SurveyScale, low: int, band: ScoreBand) -> None:
    assert score_band(score, scale, low) is band


def test_low_score_applies_to_its_own_scale_and_defaults_elsewhere() -> None:
    policy = ConversationPolicy(low_score=2, low_score_scale=SurveyScale.CSAT)
    assert policy.low_limit(SurveyScale.CSAT) == 2
    assert policy.low_limit(SurveyScale.NPS) == 6  # surveys sent before the scale changed
    assert ConversationPolicy().low_limit(SurveyScale.CSAT) == 3


def test_case_severity() -> None:
    assert case_severity(CaseTrigger.CONTACT_REQUESTED, 5, SurveyScale.CSAT) == "critical"
    assert case_severity(CaseTrigger.LOW_SCORE, 1, SurveyScale.CSAT) == "high"
    assert case_severity(CaseTrigger.LOW_SCORE, 2, SurveyScale.CSAT) == "medium"
    assert case_severity(CaseTrigger.LOW_SCORE, 3, SurveyScale.NPS) == "high"
    assert case_severity(CaseTrigger.UNSOLICITED, None, None) == "medium"


def test_default_reasons_are_the_design_list() -> None:
    codes = [code for code, _ in DEFAULT_REASONS]
    assert len(codes) == 10 and codes[0] == "rude_staff" and codes[-1] == "other"


# -- turns ---------------------------------------------------------------------------------------


async def test_reasons_are_put_in_once_and_never_over_an_admins_list(
    service: ConversationService, session_factory
) -> None:
    assert await service.ensure_reasons() == 0
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Reason)) == 10


async def test_an_nps_detractor_gets_the_recovery_and_a_passive_the_middle_path(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    low = await sent_survey(session_factory, clock, scale=SurveyScale.NPS)
    middle = await sent_survey(session_factory, clock, BORIS, scale=SurveyScale.NPS)

    detractor = await service.score(ANNA, low, 5)
    passive = await service.score(BORIS, middle, 8)

    assert (detractor.band, detractor.stage, detractor.top) == (
        ScoreBand.LOW,
        AnswerStage.REASONS,
        10,
    )
    assert len(detractor.chips) == 10
    assert (passive.band, passive.stage) == (ScoreBand.MIDDLE, AnswerStage.COMMENT)
    assert [c.trigger for c in await cases(session_factory)] == [CaseTrigger.LOW_SCORE]


async def test_a_middle_score_with_negative_words_opens_a_case(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock, scale=SurveyScale.NPS)
    await service.score(ANNA, survey, 7)
    turn = await service.message(ANNA, text="The staff were rude and we waited an hour")

    assert turn.stage is AnswerStage.DONE and turn.sentiment is SentimentLabel.NEGATIVE
    [case] = await cases(session_factory)
    assert (case.trigger, case.severity) == (CaseTrigger.NEGATIVE_COMMENT, CaseSeverity.MEDIUM)
    assert turn.deadline == clock.now() + timedelta(hours=24)


async def test_a_score_out_of_scale_or_for_an_unsent_survey_is_not_usable(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock)
    assert (await service.score(ANNA, survey, 6)).result is Result.NOT_USABLE
    assert (await service.score(ANNA, survey, 0)).result is Result.NOT_USABLE
    assert (await service.score(BORIS, survey, 5)).result is Result.NOT_USABLE


async def test_erased_customers_surveys_cannot_be_answered(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock)
    async with session_factory.begin() as session:
        customer = await session.scalar(select(Customer))
        customer.telegram_user_id = None
        customer.erased_at = clock.now()
    assert (await service.score(ANNA, survey, 5)).result is Result.NOT_USABLE


async def test_every_step_is_saved_and_stale_buttons_change_nothing(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock)
    scored = await service.score(ANNA, survey, 2)
    answer_id = scored.answer_id
    assert answer_id is not None
    chip = scored.chips[3].reason_id

    toggled = await service.toggle_reason(ANNA, answer_id, chip)
    assert [c.reason_id for c in toggled.chips if c.selected] == [chip]
    assert (await service.toggle_reason(BORIS, answer_id, chip)).result is Result.NOT_USABLE
    assert (await service.toggle_reason(ANNA, answer_id, 99999)).result is Result.NOT_USABLE
    assert (await service.contact(ANNA, answer_id, True)).result is Result.STEP_DONE

    done = await service.reasons_done(ANNA, answer_id)
    assert done.stage is AnswerStage.COMMENT
    assert (await service.reasons_done(ANNA, answer_id)).result is Result.STEP_DONE
    assert (await service.toggle_reason(ANNA, answer_id, chip)).result is Result.STEP_DONE

    skipped = await service.skip_comment(ANNA, answer_id)
    assert skipped.stage is AnswerStage.CONTACT
    answer = await the(session_factory, Answer, answer_id)
    assert (answer.stage, answer.comment, answer.completed_at) == (AnswerStage.CONTACT, None, None)

    closing = await service.contact(ANNA, answer_id, False)
    assert (closing.stage, closing.contact) == (AnswerStage.DONE, False)
    assert closing.deadline == clock.now() + timedelta(hours=24)
    answer = await the(session_factory, Answer, answer_id)
    assert answer.contact_requested is False and answer.completed_at == clock.now()
    assert (await the(session_factory, Survey, survey)).state is SurveyState.ANSWERED
    [case] = await cases(session_factory)
    assert case.trigger is CaseTrigger.LOW_SCORE  # "no contact" does not raise the case


async def test_a_contact_request_pulls_the_first_response_forward(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock)
    scored = await service.score(ANNA, survey, 1)
    assert scored.answer_id is not None
    await service.reasons_done(ANNA, scored.answer_id)
    await service.skip_comment(ANNA, scored.answer_id)
    clock.advance(timedelta(minutes=10))
    closing = await service.contact(ANNA, scored.answer_id, True)

    [case] = await cases(session_factory)
    assert (case.trigger, case.severity) == (CaseTrigger.CONTACT_REQUESTED, CaseSeverity.CRITICAL)
    assert case.first_response_due_at == clock.now() + timedelta(hours=1)
    assert closing.deadline == case.first_response_due_at


async def test_words_long_after_the_question_are_new_feedback(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    survey = await sent_survey(session_factory, clock)
    await service.score(ANNA, survey, 5)
    clock.advance(COMMENT_WINDOW + timedelta(minutes=1))
    turn = await service.message(ANNA, text="Lovely as always")

    assert turn.unsolicited
    async with session_factory() as session:
        answers = list(await session.scalars(select(Answer).order_by(Answer.id)))
    assert [(a.unsolicited, a.comment) for a in answers] == [
        (False, None),
        (True, "Lovely as always"),
    ]


async def test_a_second_photo_stands_on_its_own_and_nothing_is_lost(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    first = await service.message(ANNA, media=Media("photo", "file-1"))
    second = await service.message(ANNA, media=Media("photo", "file-2"), text="and this")
    clock.advance(FOLLOW_ON + timedelta(seconds=1))
    third = await service.message(ANNA, text="later words")

    assert len({first.answer_id, second.answer_id, third.answer_id}) == 3
    async with session_factory() as session:
        kept = list(
            await session.execute(select(Answer.media_file_id, Answer.comment).order_by(Answer.id))
        )
    assert [tuple(row) for row in kept] == [
        ("file-1", None),
        ("file-2", "and this"),
        (None, "later words"),
    ]


async def test_a_tap_while_the_survey_is_still_being_recorded_as_sent_waits_for_it(
    service: ConversationService, session_factory, clock: FakeClock
) -> None:
    import asyncio

    survey = await sent_survey(session_factory, clock, state=SurveyState.SCHEDULED)

    async def sender_records_it() -> None:
        await asyncio.sleep(0.1)
        async with session_factory.begin() as session:
            row = await session.get(Survey, survey)
            row.state = SurveyState.SENT

    turn, _ = await asyncio.gather(service.score(ANNA, survey, 4), sender_records_it())
    assert turn.result is Result.OK
