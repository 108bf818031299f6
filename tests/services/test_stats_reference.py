"""/stats's queries against a straightforward reference: random businesses (locations, test
surveys, volunteered feedback, corrected labels, chips, cases in every state and routed to
various chats), and every figure worked out again in plain Python from the raw rows, for many
periods and scopes. Rows are written through the ORM, as the bot's fixtures write them, so the
locations the database copies onto surveys, answers and cases (migration 0006) are exercised
too, including a visit whose location is changed afterwards.

The same checks run on the daily roll-up (storage.stats_rollup): once built, then after rows of
rolled-up days change (late answers, corrected labels, chips, follow-ups, a moved visit, an
erased and an imported answer), before and after the refresh that recounts them, and for a
roll-up built for another time zone."""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.periods import Period, parse_period
from bot.stats import TOP_REASONS, Figures, Scope, StatsService, week_edges
from bot.stats_rollup import StatsRollup
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
from storage.stats_rollup import Calendar, coverage

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


def _periods(rng: random.Random, zone: ZoneInfo) -> list[Period]:
    """`all`, random stretches (cut mid-day), and whole local days and weeks."""
    periods = [Period(datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1), "all")]
    for _ in range(5):
        first, second = sorted((_moment(rng), _moment(rng)))
        periods.append(Period(first, second + timedelta(seconds=1), "random"))
    for text in ("30d", "lastweek", "lastmonth", "yesterday", "month", "2026-02-10..2026-03-20"):
        periods.append(parse_period(text, NOW, zone))
    return periods


_SCOPES = (
    lambda chats: Scope.everything(),
    lambda chats: Scope.location("airport"),
    lambda chats: Scope(frozenset({"Downtown", "Old Town"})),
    lambda chats: Scope(frozenset({"Harbour"}), chats[0]),
    lambda chats: Scope(frozenset(), chats[1]),
    lambda chats: Scope(None, chats[0]),
    lambda chats: Scope.location("Nowhere"),
)


async def check_every_figure(
    sessions: async_sessionmaker[AsyncSession],
    chats: list[int],
    periods: list[Period],
    zone: ZoneInfo,
) -> int:
    """Every figure of every period and scope equals the reference's; how many surveys and
    cases the checks reached."""
    stats = StatsService(sessions, FakeClock(NOW), zone)
    async with sessions() as session:
        rows = await load(session)
    checked = 0
    for period in periods:
        for make_scope in _SCOPES:
            scope = make_scope(chats)
            figures = await stats.figures(period, scope)
            async with sessions() as session:
                where = await StatsService._filter(StatsRepository(session), scope)
            expected = reference(rows, period, where.locations, where.staff_chat_id, zone)
            got = measured(figures)
            for key in ("median_first_response", "median_resolution"):
                assert _same_duration(got.pop(key), expected.pop(key)), (key, period, scope)
            assert got == expected, (period, scope)
            checked += figures.surveys_sent + figures.cases.opened
    return checked


@pytest.mark.parametrize("seed_number", [1, 2, 3])
async def test_every_figure_equals_the_raw_rows_reckoning(
    session_factory: async_sessionmaker[AsyncSession], seed_number: int
) -> None:
    """No roll-up yet (the job never ran): every figure from the raw rows."""
    chats = await seed(session_factory, seed_number)
    zone = ZoneInfo("Europe/Berlin")
    periods = _periods(random.Random(seed_number), zone)
    assert await check_every_figure(session_factory, chats, periods, zone) > 500


async def rolled_days(sessions: async_sessionmaker[AsyncSession], zone: ZoneInfo) -> int:
    """How many days of the `all` period /stats takes from the roll-up now."""
    async with sessions() as session:
        cover = await coverage(session, zone)
    return cover.plan(datetime(2000, 1, 1, tzinfo=UTC), NOW).rolled_days


async def change_past_days(sessions: async_sessionmaker[AsyncSession], seed_number: int) -> None:
    """What happens to rows of days already rolled up: a late answer to an old survey, labels
    corrected, chips tapped and taken back, a score changed, a follow-up answered, a case
    reopened, a visit's location put right, feedback erased, and old feedback imported."""
    rng = random.Random(seed_number * 7)
    old = NOW - timedelta(days=20)
    async with sessions.begin() as session:
        unanswered = list(
            await session.scalars(
                select(Survey)
                .where(Survey.sent_at < old, Survey.answered_at.is_(None))
                .order_by(Survey.id)
            )
        )
        survey = unanswered[0]
        late = NOW - timedelta(minutes=30)
        survey.answered_at, survey.state = late, SurveyState.ANSWERED
        session.add(
            Answer(
                survey_id=survey.id,
                customer_id=survey.customer_id,
                scale=survey.scale,
                score=1,
                sentiment_label=SentimentLabel.NEGATIVE,
                stage=AnswerStage.DONE,
                created_at=late,
            )
        )
        answers = list(
            await session.scalars(select(Answer).where(Answer.created_at < old).order_by(Answer.id))
        )
        for answer in rng.sample(answers, 8):
            answer.sentiment_corrected = rng.choice(
                [label for label in SentimentLabel if label != answer.sentiment_corrected]
            )
        scored = [answer for answer in answers if answer.score is not None]
        changed = rng.choice(scored)
        changed.score = 0 if changed.score else 1
        reasons = list(await session.scalars(select(Reason.id)))
        chips = set(
            (await session.execute(select(AnswerReason.answer_id, AnswerReason.reason_id))).all()
        )
        for answer in rng.sample(answers, 6):
            free = [reason for reason in reasons if (answer.id, reason) not in chips]
            if free:
                session.add(AnswerReason(answer_id=answer.id, reason_id=free[0]))
        taken_back = sorted(chip for chip in chips if chip[0] in {a.id for a in answers})[:3]
        for answer_id, reason_id in taken_back:
            await session.execute(
                delete(AnswerReason).where(
                    AnswerReason.answer_id == answer_id, AnswerReason.reason_id == reason_id
                )
            )
        cases = list(
            await session.scalars(select(Case).where(Case.created_at < old).order_by(Case.id))
        )
        followed = [case for case in cases if case.resolved_at and case.recovered is None]
        for case in followed[:3]:
            case.recovered = True
        cases[0].state = CaseState.REOPENED
        cases[1].recovered = None if cases[1].recovered is not None else False
        with_cases = select(Case.answer_id).where(Case.answer_id.is_not(None))
        erased = await session.scalar(
            select(Answer)
            .where(Answer.unsolicited, Answer.created_at < old, Answer.id.not_in(with_cases))
            .limit(1)
        )
        if erased is not None:
            await session.delete(erased)
        session.add(
            Answer(
                customer_id=survey.customer_id,
                unsolicited=True,
                comment="imported",
                sentiment_label=SentimentLabel.NEGATIVE,
                stage=AnswerStage.DONE,
                created_at=START - timedelta(days=9, hours=5),
            )
        )
    async with sessions.begin() as session:
        moved = await session.scalar(
            select(Visit.id)
            .join(Survey, Survey.visit_id == Visit.id)
            .where(
                Visit.location == "Harbour", Survey.sent_at < old, Survey.answered_at.is_not(None)
            )
            .order_by(Visit.id)
            .limit(1)
        )
        await session.execute(update(Visit).where(Visit.id == moved).values(location="Old Town"))


@pytest.mark.parametrize("seed_number", [4, 5])
async def test_figures_stay_exact_with_a_daily_roll_up_while_past_days_change(
    session_factory: async_sessionmaker[AsyncSession], seed_number: int
) -> None:
    chats = await seed(session_factory, seed_number)
    zone = ZoneInfo("Europe/Berlin")
    periods = _periods(random.Random(seed_number), zone)
    rollup = StatsRollup(session_factory, FakeClock(NOW), zone=lambda: zone)

    # Built in steps, up to yesterday: every whole past day of `all` comes from it.
    run = await rollup.refresh()
    assert run.rebuilt and run.steps > 1
    rolled = await rolled_days(session_factory, zone)
    assert rolled == (NOW.astimezone(zone).date() - run.first).days > 100
    assert await check_every_figure(session_factory, chats, periods, zone) > 500

    # Past days change: those days are stale, counted raw, until the next refresh.
    await change_past_days(session_factory, seed_number)
    assert await rolled_days(session_factory, zone) < rolled
    await check_every_figure(session_factory, chats, periods, zone)

    # The refresh recounts just those days (and the imported one, before the first).
    again = await rollup.refresh()
    assert not again.rebuilt and 0 < again.recounted < 40
    assert again.first < run.first
    assert await rolled_days(session_factory, zone) > rolled
    await check_every_figure(session_factory, chats, periods, zone)


async def test_a_roll_up_of_another_time_zone_is_not_used_until_rebuilt(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    chats = await seed(session_factory, 6)
    berlin, tokyo = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    await StatsRollup(session_factory, FakeClock(NOW), zone=lambda: berlin).refresh()
    assert await rolled_days(session_factory, tokyo) == 0
    periods = _periods(random.Random(6), tokyo)
    await check_every_figure(session_factory, chats, periods, tokyo)
    run = await StatsRollup(session_factory, FakeClock(NOW), zone=lambda: tokyo).refresh()
    assert run.rebuilt
    assert await rolled_days(session_factory, berlin) == 0
    assert await rolled_days(session_factory, tokyo) > 100
    await check_every_figure(session_factory, chats, periods, tokyo)


async def test_a_write_racing_the_refresh_of_its_day_is_not_lost(
    session_factory: async_sessionmaker[AsyncSession], backend: str
) -> None:
    """PostgreSQL: a correction that commits after a refresh has recounted its day (and
    removed the log rows it saw) keeps its own log row, so its day is still counted raw."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: a refresh cannot run beside a write")
    chats = await seed(session_factory, 7)
    zone = ZoneInfo("Europe/Berlin")
    rollup = StatsRollup(session_factory, FakeClock(NOW), zone=lambda: zone)
    await rollup.refresh()
    periods = [Period(datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(days=1), "all")]
    async with session_factory() as writer:
        answer = await writer.scalar(
            select(Answer)
            .where(Answer.created_at < NOW - timedelta(days=20), Answer.score.is_not(None))
            .order_by(Answer.id)
            .limit(1)
        )
        assert answer is not None
        answer.sentiment_corrected = (
            SentimentLabel.POSITIVE
            if answer.sentiment_corrected is not SentimentLabel.POSITIVE
            else SentimentLabel.NEGATIVE
        )
        answer.score = 0 if answer.score else 1
        await writer.flush()  # written and logged, not committed
        step = await rollup.refresh()  # recounts nothing of it: it cannot see the write
        assert step.recounted == 0
        await writer.commit()
    assert await check_every_figure(session_factory, chats, periods, zone) > 0
    async with session_factory() as session:
        cover = await coverage(session, zone)
    assert Calendar(zone).day_of(answer.created_at) in cover.stale
