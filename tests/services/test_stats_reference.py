"""/stats's queries against a straightforward reference: random businesses (locations, test
surveys, volunteered feedback, corrected labels, chips, cases in every state and routed to
various chats), and every figure worked out again in plain Python from the raw rows, for many
periods and scopes. Rows are written through the ORM, as the bot's fixtures write them, so the
locations the database copies onto surveys, answers and cases (migration 0006) are exercised
too, including a visit whose location is changed afterwards."""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.periods import Period
from bot.stats import TOP_REASONS, Figures, Scope, StatsService, week_edges
from storage.models import (
    Answer,
    AnswerReason,
    AnswerStage,
    Case,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Customer,
    Reason,
    SentimentLabel,
    StaffChat,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
    VisitSource,
)
from storage.stats_repository import OPEN_CASE_STATES, StatsRepository

START = datetime(2026, 1, 5, tzinfo=UTC)
SPAN = timedelta(days=120)
NOW = START + SPAN - timedelta(days=3)
LOCATIONS = ("Downtown", "Airport", "Old Town", "Harbour", None)
LABELS = (*SentimentLabel, None)


@dataclass
class Rows:
    """The raw rows, as the reference reads them."""

    visits: dict[int, Visit]
    surveys: list[Survey]
    answers: list[Answer]
    chips: list[tuple[int, int]]  # (answer id, reason id)
    reasons: dict[int, str]
    cases: list[Case]


def _moment(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))


async def seed(sessions: async_sessionmaker[AsyncSession], seed: int) -> list[int]:
    """A random business; returns the staff chats' row ids."""
    rng = random.Random(seed)
    async with sessions.begin() as session:
        reasons = []
        for position, label in enumerate(("Slow", "Rude", "Dirty", "Cold", "Loud", "Pricey"), 1):
            reason = Reason(code=label.lower(), label=label, position=position, created_at=START)
            session.add(reason)
            reasons.append(reason)
        chats = [
            StaffChat(chat_id=-100_000 - n, title=f"Team {n}", created_at=START) for n in (1, 2)
        ]
        session.add_all([*chats, *reasons])
        await session.flush()
        customer = Customer(external_ref="CRM-1", created_at=START)
        session.add(customer)
        await session.flush()
        answers: list[Answer] = []
        for n in range(220):
            occurred = _moment(rng)
            visit = Visit(
                external_id=f"test:{n}" if rng.random() < 0.08 else f"V-{n}",
                customer_id=customer.id,
                location=rng.choice(LOCATIONS),
                occurred_at=occurred,
                source=VisitSource.API,
                created_at=occurred,
            )
            session.add(visit)
            await session.flush()
            scale = rng.choice((SurveyScale.CSAT, SurveyScale.CSAT, SurveyScale.NPS))
            sent = occurred + timedelta(hours=2) if rng.random() < 0.9 else None
            answered = (
                sent + timedelta(minutes=rng.randint(1, 3000))
                if sent and rng.random() < 0.7
                else None
            )
            survey = Survey(
                visit_id=visit.id,
                customer_id=customer.id,
                state=SurveyState.ANSWERED if answered else SurveyState.SENT,
                scale=scale,
                due_at=occurred,
                sent_at=sent,
                answered_at=answered,
                created_at=occurred,
            )
            session.add(survey)
            await session.flush()
            if answered is not None:
                top = 5 if scale is SurveyScale.CSAT else 10
                answer = Answer(
                    survey_id=survey.id,
                    customer_id=customer.id,
                    scale=scale,
                    score=rng.randint(0 if top == 10 else 1, top),
                    sentiment_label=rng.choice(LABELS),
                    sentiment_corrected=rng.choice(LABELS) if rng.random() < 0.2 else None,
                    stage=AnswerStage.DONE,
                    created_at=answered,
                )
                session.add(answer)
                answers.append(answer)
        for _ in range(40):
            at = _moment(rng)
            answer = Answer(
                customer_id=customer.id,
                unsolicited=True,
                comment="…",
                sentiment_label=rng.choice(LABELS),
                sentiment_corrected=rng.choice(LABELS) if rng.random() < 0.2 else None,
                stage=AnswerStage.DONE,
                created_at=at,
            )
            session.add(answer)
            answers.append(answer)
        await session.flush()
        for answer in answers:
            for reason in rng.sample(reasons, rng.choice((0, 0, 1, 2, 3))):
                session.add(AnswerReason(answer_id=answer.id, reason_id=reason.id))
            if rng.random() < 0.45:
                opened = answer.created_at + timedelta(seconds=rng.randint(0, 60))
                responded = (
                    opened + timedelta(minutes=rng.randint(1, 3000)) if rng.random() < 0.7 else None
                )
                resolved = (
                    responded + timedelta(minutes=rng.randint(1, 9000))
                    if responded and rng.random() < 0.6
                    else None
                )
                session.add(
                    Case(
                        answer_id=answer.id,
                        customer_id=customer.id,
                        state=rng.choice(list(CaseState)),
                        severity=CaseSeverity.MEDIUM,
                        trigger=CaseTrigger.LOW_SCORE,
                        staff_chat_id=rng.choice((chats[0].id, chats[1].id, None)),
                        first_response_due_at=opened + timedelta(hours=rng.randint(1, 200)),
                        resolution_due_at=(
                            opened + timedelta(hours=rng.randint(1, 400))
                            if rng.random() < 0.8
                            else None
                        ),
                        first_responded_at=responded,
                        resolved_at=resolved,
                        recovered=rng.choice((None, True, False)) if resolved else None,
                        created_at=opened,
                    )
                )
        await session.flush()
    # A visit whose location is put right afterwards: its survey, answer and case follow.
    async with sessions.begin() as session:
        moved = await session.scalar(
            select(Visit.id)
            .join(Survey, Survey.visit_id == Visit.id)
            .join(Answer, Answer.survey_id == Survey.id)
            .join(Case, Case.answer_id == Answer.id)
            .where(Visit.location == "Downtown")
            .limit(1)
        )
        assert moved is not None
        await session.execute(update(Visit).where(Visit.id == moved).values(location="Airport"))
    return [chat.id for chat in chats]


async def load(session: AsyncSession) -> Rows:
    return Rows(
        visits={visit.id: visit for visit in await session.scalars(select(Visit))},
        surveys=list(await session.scalars(select(Survey))),
        answers=list(await session.scalars(select(Answer))),
        chips=[
            tuple(row)
            for row in await session.execute(select(AnswerReason.answer_id, AnswerReason.reason_id))
        ],  # type: ignore[misc]
        reasons={reason.id: reason.label for reason in await session.scalars(select(Reason))},
        cases=list(await session.scalars(select(Case))),
    )


def _median(values: list[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(values)) if values else None


def reference(
    rows: Rows, period: Period, locations: tuple[str, ...] | None, chat: int | None, zone: ZoneInfo
) -> dict[str, object]:
    """Every figure of `Figures`, from the raw rows, as bot/stats.py's docstring defines it."""
    survey_of = {survey.id: survey for survey in rows.surveys}

    def location_of_survey(survey: Survey) -> str | None:
        return rows.visits[survey.visit_id].location

    def is_test(survey: Survey) -> bool:
        return rows.visits[survey.visit_id].external_id.startswith("test:")

    answer_of = {answer.id: answer for answer in rows.answers}
    routed = {
        case.answer_id for case in rows.cases if chat is not None and case.staff_chat_id == chat
    }

    def survey_in_scope(survey: Survey) -> bool:
        return not is_test(survey) and (
            locations is None or location_of_survey(survey) in locations
        )

    def answer_in_scope(answer: Answer) -> bool:
        survey = survey_of.get(answer.survey_id) if answer.survey_id else None
        if survey is not None and is_test(survey):
            return False
        if locations is None:
            return True
        return (
            survey is not None and location_of_survey(survey) in locations
        ) or answer.id in routed

    def case_in_scope(case: Case) -> bool:
        answer = answer_of.get(case.answer_id) if case.answer_id else None
        survey = survey_of.get(answer.survey_id) if answer and answer.survey_id else None
        if survey is not None and is_test(survey):
            return False
        if locations is None:
            return True
        at = survey is not None and location_of_survey(survey) in locations
        return at or (chat is not None and case.staff_chat_id == chat)

    def within(moment: datetime | None, start: datetime, end: datetime) -> bool:
        return moment is not None and start <= moment < end

    start, end = period.start, period.end
    sent = [s for s in rows.surveys if survey_in_scope(s) and within(s.sent_at, start, end)]
    given = [a for a in rows.answers if answer_in_scope(a) and within(a.created_at, start, end)]
    csat = [a.score for a in given if a.scale is SurveyScale.CSAT and a.score is not None]
    nps = [a.score for a in given if a.scale is SurveyScale.NPS and a.score is not None]
    sentiment: dict[SentimentLabel, int] = {}
    negative = {True: 0, False: 0}
    for answer in given:
        label = answer.sentiment_corrected or answer.sentiment_label
        if label is not None:
            sentiment[label] = sentiment.get(label, 0) + 1
        if label in (SentimentLabel.NEGATIVE, SentimentLabel.MIXED):
            negative[answer.unsolicited] += 1
    given_ids = {a.id for a in given}
    chips: dict[int, int] = {}
    for answer_id, reason_id in rows.chips:
        if answer_id in given_ids:
            chips[reason_id] = chips.get(reason_id, 0) + 1
    top = sorted(
        ((rows.reasons[r], n) for r, n in chips.items()), key=lambda item: (-item[1], item[0])
    )
    cases = [c for c in rows.cases if case_in_scope(c)]
    opened = [c for c in cases if within(c.created_at, start, end)]
    open_now = [c for c in cases if c.state in OPEN_CASE_STATES]

    def overdue(case: Case) -> bool:
        late_response = (
            case.first_responded_at is None
            and case.first_response_due_at is not None
            and case.first_response_due_at < NOW
        )
        return late_response or (
            case.resolution_due_at is not None and case.resolution_due_at < NOW
        )

    weeks = []
    edges = week_edges(period, zone)
    for week_start, week_end in itertools.pairwise(edges):
        week_sent = [
            s
            for s in rows.surveys
            if survey_in_scope(s) and within(s.sent_at, week_start, week_end)
        ]
        week_given = [
            a
            for a in rows.answers
            if answer_in_scope(a)
            and within(a.created_at, week_start, week_end)
            and a.score is not None
        ]
        week_csat = [a.score for a in week_given if a.scale is SurveyScale.CSAT]
        week_nps = [a.score for a in week_given if a.scale is SurveyScale.NPS]
        weeks.append(
            (
                week_start,
                len(week_sent),
                sum(s.answered_at is not None for s in week_sent),
                sum(score >= 4 for score in week_csat) / len(week_csat) if week_csat else None,
                100.0
                * (sum(s >= 9 for s in week_nps) - sum(s <= 6 for s in week_nps))
                / len(week_nps)
                if week_nps
                else None,
            )
        )
    return {
        "surveys_sent": len(sent),
        "surveys_answered": sum(s.answered_at is not None for s in sent),
        "csat_answers": len(csat),
        "csat_satisfied": sum(score >= 4 for score in csat),
        "csat_score_sum": sum(csat),
        "nps_answers": len(nps),
        "promoters": sum(score >= 9 for score in nps),
        "detractors": sum(score <= 6 for score in nps),
        "nps_score_sum": sum(nps),
        "sentiment": sentiment,
        "negative_asked": negative[False],
        "negative_volunteered": negative[True],
        "feedback": sum(a.unsolicited for a in given),
        "reasons": top[:TOP_REASONS],
        "opened": len(opened),
        "open_now": len(open_now),
        "overdue_now": sum(overdue(c) for c in open_now),
        "followups_answered": sum(c.recovered is not None for c in opened),
        "recovered": sum(c.recovered is True for c in opened),
        "median_first_response": _median(
            [
                (c.first_responded_at - c.created_at).total_seconds()
                for c in opened
                if c.first_responded_at
            ]
        ),
        "median_resolution": _median(
            [(c.resolved_at - c.created_at).total_seconds() for c in opened if c.resolved_at]
        ),
        "weeks": weeks,
    }


def measured(figures: Figures) -> dict[str, object]:
    cases = figures.cases
    return {
        "surveys_sent": figures.surveys_sent,
        "surveys_answered": figures.surveys_answered,
        "csat_answers": figures.csat_answers,
        "csat_satisfied": figures.csat_satisfied,
        "csat_score_sum": figures.csat_score_sum,
        "nps_answers": figures.nps_answers,
        "promoters": figures.promoters,
        "detractors": figures.detractors,
        "nps_score_sum": figures.nps_score_sum,
        "sentiment": figures.sentiment,
        "negative_asked": figures.negative_asked,
        "negative_volunteered": figures.negative_volunteered,
        "feedback": figures.feedback,
        "reasons": figures.reasons,
        "opened": cases.opened,
        "open_now": cases.open_now,
        "overdue_now": cases.overdue_now,
        "followups_answered": cases.followups_answered,
        "recovered": cases.recovered,
        "median_first_response": cases.median_first_response,
        "median_resolution": cases.median_resolution,
        "weeks": [
            (w.start, w.surveys_sent, w.surveys_answered, w.csat, w.nps) for w in figures.weeks
        ],
    }


def _same_duration(got: object, expected: object) -> bool:
    """SQLite works durations out from Julian days, a few microseconds off."""
    if got is None or expected is None:
        return got is expected
    assert isinstance(got, timedelta) and isinstance(expected, timedelta)
    return abs(got - expected) < timedelta(milliseconds=1)


@pytest.mark.parametrize("seed_number", [1, 2, 3])
async def test_every_figure_equals_the_raw_rows_reckoning(
    session_factory: async_sessionmaker[AsyncSession], seed_number: int
) -> None:
    chats = await seed(session_factory, seed_number)
    zone = ZoneInfo("Europe/Berlin")
    stats = StatsService(session_factory, FakeClock(NOW), zone)
    async with session_factory() as session:
        rows = await load(session)
    rng = random.Random(seed_number)
    periods = [Period(datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1), "all")]
    for _ in range(5):
        first, second = sorted((_moment(rng), _moment(rng)))
        periods.append(Period(first, second + timedelta(seconds=1), "random"))
    scopes: list[Scope] = [
        Scope.everything(),
        Scope.location("airport"),
        Scope(frozenset({"Downtown", "Old Town"})),
        Scope(frozenset({"Harbour"}), chats[0]),
        Scope(frozenset(), chats[1]),
        Scope(None, chats[0]),
        Scope.location("Nowhere"),
    ]
    checked = 0
    for period in periods:
        for scope in scopes:
            figures = await stats.figures(period, scope)
            async with session_factory() as session:
                where = await StatsService._filter(StatsRepository(session), scope)
            expected = reference(rows, period, where.locations, where.staff_chat_id, zone)
            got = measured(figures)
            for key in ("median_first_response", "median_resolution"):
                assert _same_duration(got.pop(key), expected.pop(key)), (key, period, scope)
            assert got == expected, (period, scope)
            checked += figures.surveys_sent + figures.cases.opened
    assert checked > 500  # the periods and scopes did reach the data
