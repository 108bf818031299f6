"""/stats figures as a service, on a real database: every figure of one hand-counted week
against the numbers worked out below, and what is left out (test surveys, other locations,
answers just outside the period), what a staff chat sees, and a business with nothing yet."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.periods import Period
from bot.stats import Scope, StatsService, render
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
from storage.staff_repository import StaffRepository

POSITIVE, NEUTRAL, NEGATIVE = (
    SentimentLabel.POSITIVE,
    SentimentLabel.NEUTRAL,
    SentimentLabel.NEGATIVE,
)
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEK = Period(START, START + timedelta(days=7), "the week of 2 Mar 2026")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LATER = START + timedelta(days=30)  # a due time not yet passed (now is before it)
EARLIER = START + timedelta(hours=8)  # one passed

_numbers = itertools.count(1)


@dataclass
class Visited:
    """One visit's survey as it went: sent at ``sent``, answered ten minutes later if scored."""

    external_id: str
    location: str | None
    sent: datetime
    scale: SurveyScale = SurveyScale.CSAT
    score: int | None = None
    label: SentimentLabel | None = None
    corrected: SentimentLabel | None = None
    reasons: tuple[str, ...] = ()
    case: dict[str, object] | None = None
    answer_id: int | None = field(default=None, init=False)


async def add_reasons(session: AsyncSession) -> dict[str, int]:
    ids = {}
    for position, (code, label) in enumerate(
        (("slow", "Waited too long"), ("rude", "Rude staff"), ("friendly", "Friendly staff")), 1
    ):
        reason = Reason(code=code, label=label, position=position, created_at=START)
        session.add(reason)
        await session.flush()
        ids[code] = reason.id
    return ids


async def add_staff_chat(session: AsyncSession, chat_id: int, title: str, at: datetime) -> int:
    chat = StaffChat(chat_id=chat_id, title=title, created_at=at)
    session.add(chat)
    await session.flush()
    return chat.id


async def add_customer(session: AsyncSession, at: datetime) -> int:
    customer = Customer(external_ref=f"CRM-{next(_numbers)}", created_at=at)
    session.add(customer)
    await session.flush()
    return customer.id


async def add_visit(session: AsyncSession, reasons: dict[str, int], visit: Visited) -> None:
    customer_id = await add_customer(session, visit.sent - timedelta(hours=1))
    row = Visit(
        external_id=visit.external_id,
        customer_id=customer_id,
        location=visit.location,
        occurred_at=visit.sent - timedelta(hours=1),
        source=VisitSource.API,
        created_at=visit.sent - timedelta(hours=1),
    )
    session.add(row)
    await session.flush()
    answered = visit.sent + timedelta(minutes=10) if visit.score is not None else None
    survey = Survey(
        visit_id=row.id,
        customer_id=customer_id,
        state=SurveyState.ANSWERED if answered else SurveyState.SENT,
        scale=visit.scale,
        due_at=visit.sent,
        sent_at=visit.sent,
        answered_at=answered,
        created_at=visit.sent - timedelta(hours=1),
    )
    session.add(survey)
    await session.flush()
    if answered is None:
        return
    answer = Answer(
        survey_id=survey.id,
        customer_id=customer_id,
        scale=visit.scale,
        score=visit.score,
        sentiment_label=visit.label,
        sentiment_corrected=visit.corrected,
        stage=AnswerStage.DONE,
        completed_at=answered,
        created_at=answered,
    )
    session.add(answer)
    await session.flush()
    visit.answer_id = answer.id
    for code in visit.reasons:
        session.add(AnswerReason(answer_id=answer.id, reason_id=reasons[code]))
    if visit.case is not None:
        await add_case(session, answer.id, customer_id, answered, **visit.case)  # type: ignore[arg-type]
    await session.flush()


async def add_case(
    session: AsyncSession,
    answer_id: int,
    customer_id: int | None,
    opened: datetime,
    *,
    state: CaseState = CaseState.OPEN,
    chat: int | None = None,
    responded: timedelta | None = None,
    resolved: timedelta | None = None,
    recovered: bool | None = None,
    response_due: datetime = LATER,
    resolution_due: datetime = LATER,
) -> None:
    session.add(
        Case(
            answer_id=answer_id,
            customer_id=customer_id,
            state=state,
            severity=CaseSeverity.MEDIUM,
            trigger=CaseTrigger.LOW_SCORE,
            staff_chat_id=chat,
            first_response_due_at=response_due,
            resolution_due_at=resolution_due,
            first_responded_at=None if responded is None else opened + responded,
            resolved_at=None if resolved is None else opened + resolved,
            recovered=recovered,
            created_at=opened,
        )
    )


async def add_feedback(
    session: AsyncSession,
    at: datetime,
    label: SentimentLabel,
    corrected: SentimentLabel | None = None,
) -> None:
    """A message a customer volunteered: no survey, no location."""
    session.add(
        Answer(
            customer_id=await add_customer(session, at),
            unsolicited=True,
            comment="…",
            sentiment_label=label,
            sentiment_corrected=corrected,
            stage=AnswerStage.DONE,
            created_at=at,
        )
    )
    await session.flush()


def about(value: timedelta | None, expected: timedelta) -> bool:
    """SQLite works out durations from Julian days, a few microseconds off."""
    return value is not None and abs(value - expected) < timedelta(milliseconds=1)


def hour(n: float) -> datetime:
    return START + timedelta(hours=n)


@dataclass
class Chats:
    """The staff chats' rows: ``everyone`` is the default (registered first), ``airport`` has a
    rule for the Airport, ``rude`` a rule on a reason only (any location)."""

    everyone: int
    airport: int
    rude: int


@pytest.fixture
async def week(session_factory: async_sessionmaker[AsyncSession]) -> Chats:
    return await seed_week(session_factory)


async def seed_week(
    sessions: async_sessionmaker[AsyncSession],
    chat_ids: tuple[int, int, int] = (-100_001, -100_002, -100_003),
) -> Chats:
    """The week of 2 March, hand-counted:

    Downtown (CSAT): 5 👍, 4 👍, 2 (case to the Airport chat: 30 min to respond, resolved in 2 h,
    recovered), 1 (case: 90 min, 6 h, not recovered), 3 read as neutral but corrected to negative
    by staff (case open, its first response overdue), and one survey left unanswered.
    Airport (NPS): 10, 9, 7, 3 (case taken, answered in 10 min, resolution not yet due), and one
    survey unanswered. Volunteered: negative, neutral corrected to negative, negative corrected
    to positive. Outside the figures: a test survey (score 1, open overdue case), and a February
    answer whose case is still open and overdue (so it counts among the open cases, nothing else).
    """
    async with sessions.begin() as session:
        reasons = await add_reasons(session)
        first, second, third = chat_ids
        everyone = await add_staff_chat(session, first, "Everyone", START - timedelta(days=90))
        airport = await add_staff_chat(session, second, "Airport", START - timedelta(days=60))
        rude = await add_staff_chat(session, third, "Rudeness", START - timedelta(days=30))
        staff = StaffRepository(session)
        await staff.add_rule(staff_chat_id=airport, location="airport", created_by=None, now=START)
        await staff.add_rule(staff_chat_id=rude, reason_code="rude", created_by=None, now=START)
        visits = [
            Visited("D1", "Downtown", hour(1), score=5, label=POSITIVE, reasons=("friendly",)),
            Visited("D2", "Downtown", hour(2), score=4, label=POSITIVE, reasons=("friendly",)),
            Visited(
                "D3",
                "Downtown",
                hour(3),
                score=2,
                label=NEGATIVE,
                reasons=("slow", "rude"),
                case={
                    "state": CaseState.CONFIRMED,
                    "chat": airport,
                    "responded": timedelta(minutes=30),
                    "resolved": timedelta(hours=2),
                    "recovered": True,
                    "response_due": hour(4),
                    "resolution_due": hour(30),
                },
            ),
            Visited(
                "D4",
                "Downtown",
                hour(4),
                score=1,
                label=NEGATIVE,
                reasons=("slow",),
                case={
                    "state": CaseState.RESOLVED,
                    "chat": everyone,
                    "responded": timedelta(minutes=90),
                    "resolved": timedelta(hours=6),
                    "recovered": False,
                    "response_due": hour(5),
                    "resolution_due": hour(30),
                },
            ),
            Visited(
                "D5",
                "Downtown",
                hour(5),
                score=3,
                label=NEUTRAL,
                corrected=NEGATIVE,
                case={"chat": everyone, "response_due": EARLIER},
            ),
            Visited("D6", "Downtown", hour(6)),
            Visited("A1", "Airport", hour(24), SurveyScale.NPS, 10, POSITIVE),
            Visited("A2", "Airport", hour(25), SurveyScale.NPS, 9, POSITIVE),
            Visited("A3", "Airport", hour(26), SurveyScale.NPS, 7, NEUTRAL),
            Visited(
                "A4",
                "Airport",
                hour(27),
                SurveyScale.NPS,
                3,
                NEGATIVE,
                reasons=("slow",),
                case={
                    "state": CaseState.TAKEN,
                    "chat": airport,
                    "responded": timedelta(minutes=10),
                    "response_due": EARLIER,
                },
            ),
            Visited("A5", "Airport", hour(28), SurveyScale.NPS),
            # Left out: a test survey, however bad, and its case.
            Visited(
                "test:1:2:3",
                "Downtown",
                hour(7),
                score=1,
                label=NEGATIVE,
                reasons=("rude",),
                case={"chat": everyone, "response_due": EARLIER},
            ),
            # Before the week: only its still-open, overdue case counts (cases stand as of now).
            Visited(
                "D0",
                "Downtown",
                START - timedelta(days=10),
                score=1,
                label=NEGATIVE,
                reasons=("rude",),
                case={"chat": everyone, "response_due": EARLIER},
            ),
        ]
        for visit in visits:
            await add_visit(session, reasons, visit)
        await add_feedback(session, hour(40), NEGATIVE)
        await add_feedback(session, hour(41), NEUTRAL, corrected=NEGATIVE)
        await add_feedback(session, hour(42), NEGATIVE, corrected=POSITIVE)
    return Chats(everyone, airport, rude)


@pytest.fixture
def stats(session_factory: async_sessionmaker[AsyncSession]) -> StatsService:
    return StatsService(session_factory, FakeClock(NOW), UTC)


async def staff_chat(stats: StatsService, session: AsyncSession, row_id: int) -> Scope:
    chat = await session.get(StaffChat, row_id)
    assert chat is not None
    return await stats.scope_of(chat)


async def test_every_figure_of_a_hand_counted_week(stats: StatsService, week: Chats) -> None:
    figures = await stats.figures(WEEK, Scope.everything())

    assert (figures.surveys_sent, figures.surveys_answered) == (11, 9)
    assert figures.response_rate == pytest.approx(9 / 11)
    # CSAT 5, 4, 2, 1, 3: two of five satisfied; NPS 10, 9, 7, 3: (2 − 1) / 4.
    assert (figures.csat_answers, figures.csat) == (5, pytest.approx(0.4))
    assert figures.average_csat == pytest.approx(3.0)
    assert (figures.nps_answers, figures.nps) == (4, pytest.approx(25.0))
    assert figures.average_nps == pytest.approx(29 / 4)
    # The staff's corrections win: D5 and one volunteered message negative, one positive.
    assert figures.sentiment == {POSITIVE: 5, NEUTRAL: 1, NEGATIVE: 6}
    assert figures.reasons == [("Waited too long", 3), ("Friendly staff", 2), ("Rude staff", 1)]
    cases = figures.cases
    assert (cases.opened, cases.open_now, cases.overdue_now) == (4, 3, 2)
    # First responses 30, 90 and 10 min; resolutions 2 h and 6 h (an even count: the mean of two).
    assert about(cases.median_first_response, timedelta(minutes=30))
    assert about(cases.median_resolution, timedelta(hours=4))
    assert (cases.followups_answered, cases.recovered, figures.recovery_rate) == (2, 1, 0.5)
    # D3, D4, D5 and A4 were asked for; two complaints were volunteered.
    assert (figures.negative_asked, figures.negative_volunteered) == (4, 2)
    assert figures.silent_majority == pytest.approx(4 / 6)

    # The trend's last week is this one; February's answer is in its own week.
    assert figures.weeks[-1].start == START
    last = figures.weeks[-1]
    assert (last.surveys_sent, last.surveys_answered, last.csat, last.nps) == (
        11,
        9,
        pytest.approx(0.4),
        pytest.approx(25.0),
    )
    february = next(w for w in figures.weeks if w.surveys_sent)
    assert (february.start, february.surveys_answered, february.csat) == (
        datetime(2026, 2, 16, tzinfo=UTC),
        1,
        0.0,
    )
    assert len(figures.weeks) == 12

    assert render(figures, UTC).splitlines() == [
        "📊 The week of 2 Mar 2026 · all locations",
        "Surveys sent: 11 · answered 9 (82%)",
        "CSAT: 40% satisfied (4–5) of 5 · average 3.0/5",
        "NPS: +25 of 4 · average 7.2/10",
        "Sentiment: positive 42% · neutral 8% · negative 50%",
        "Top reasons: Waited too long 3, Friendly staff 2, Rude staff 1",
        "Cases: 4 opened · 3 open now, 2 overdue",
        "Median first response 30 min · resolution 4.0 h",
        "Recovered: 50% of 2 follow-ups answered",
        "Heard by asking: 67% of 6 negative experiences came from surveys, not volunteered"
        " complaints",
        "As of Tue 10 Mar 12:00",
    ]


async def test_one_location_however_it_is_typed(stats: StatsService, week: Chats) -> None:
    figures = await stats.figures(WEEK, Scope.location(" downTOWN "))

    assert (figures.surveys_sent, figures.surveys_answered) == (6, 5)
    assert (figures.csat_answers, figures.csat) == (5, pytest.approx(0.4))
    assert (figures.nps_answers, figures.nps) == (0, None)  # no NPS line without NPS answers
    assert figures.sentiment == {POSITIVE: 2, NEGATIVE: 3}  # volunteered messages have no place
    assert figures.reasons == [("Friendly staff", 2), ("Waited too long", 2), ("Rude staff", 1)]
    cases = figures.cases
    assert (cases.opened, cases.open_now, cases.overdue_now) == (3, 2, 2)
    assert about(cases.median_first_response, timedelta(minutes=60))
    assert (figures.negative_asked, figures.negative_volunteered) == (3, 0)
    assert figures.silent_majority == 1.0
    assert figures.scope_label == "Downtown"  # as visits spell it
    assert "NPS" not in render(figures, UTC)


async def test_a_staff_chat_sees_its_routes_locations_and_its_cases(
    stats: StatsService, week: Chats, session: AsyncSession
) -> None:
    scope = await staff_chat(stats, session, week.airport)
    assert scope == Scope(frozenset({"airport"}), week.airport)

    figures = await stats.figures(WEEK, scope)

    # The Airport's surveys, and D3's answer and case, which were routed here.
    assert (figures.surveys_sent, figures.surveys_answered) == (5, 4)
    assert (figures.nps_answers, figures.nps) == (4, pytest.approx(25.0))
    assert (figures.csat_answers, figures.csat) == (1, 0.0)
    assert figures.sentiment == {POSITIVE: 2, NEUTRAL: 1, NEGATIVE: 2}
    assert figures.reasons == [("Waited too long", 2), ("Rude staff", 1)]
    cases = figures.cases
    assert (cases.opened, cases.open_now, cases.overdue_now) == (2, 1, 0)
    assert about(cases.median_first_response, timedelta(minutes=20))
    assert about(cases.median_resolution, timedelta(hours=2))
    assert figures.recovery_rate == 1.0
    assert figures.scope_label == "Airport, and the cases routed to this chat"  # as visits spell it


async def test_the_default_chat_and_a_chat_without_a_location_rule_see_everything(
    stats: StatsService, week: Chats, session: AsyncSession
) -> None:
    everything = await stats.figures(WEEK, Scope.everything())
    for row_id in (week.everyone, week.rude):
        scope = await staff_chat(stats, session, row_id)
        assert scope.locations is None
        figures = await stats.figures(WEEK, scope)
        assert (figures.surveys_sent, figures.sentiment, figures.cases) == (
            everything.surveys_sent,
            everything.sentiment,
            everything.cases,
        )


async def test_a_chat_with_no_rules_sees_only_its_cases(
    stats: StatsService, session_factory: async_sessionmaker[AsyncSession], week: Chats
) -> None:
    async with session_factory.begin() as session:
        lonely = await add_staff_chat(session, -100_004, "Lonely", START)
    async with session_factory() as session:
        scope = await staff_chat(stats, session, lonely)
    assert scope == Scope(frozenset(), lonely)

    figures = await stats.figures(WEEK, scope)

    assert not figures.has_data
    assert render(figures, UTC) == (
        "Nothing recorded for the cases routed to this chat in the week of 2 Mar 2026:"
        " no surveys sent, no answers, no cases."
    )


async def test_the_period_is_half_open(
    stats: StatsService, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # Answered ten minutes after sending: sent 10 min + 1 µs before the start, so answered
    # just before it; then exactly at the start; just before the end; exactly at the end.
    tick = timedelta(microseconds=1)
    ten = timedelta(minutes=10)
    edges = (START - ten - tick, START - ten, WEEK.end - ten - tick, WEEK.end - ten)
    async with session_factory.begin() as session:
        reasons = await add_reasons(session)
        for n, sent in enumerate(edges):
            await add_visit(
                session, reasons, Visited(f"E{n}", "Downtown", sent, score=5, label=POSITIVE)
            )

    figures = await stats.figures(WEEK, Scope.everything())

    # Answers given in [start, end): the second and third; surveys sent in it: the last two.
    assert (figures.csat_answers, figures.sentiment) == (2, {POSITIVE: 2})
    assert (figures.surveys_sent, figures.surveys_answered) == (2, 2)


async def test_nothing_at_all(stats: StatsService) -> None:
    figures = await stats.figures(WEEK, Scope.everything())

    assert not figures.has_data
    assert (figures.surveys_sent, figures.response_rate, figures.csat, figures.nps) == (
        0,
        None,
        None,
        None,
    )
    assert (figures.recovery_rate, figures.silent_majority) == (None, None)
    assert figures.cases.median_first_response is None
    assert figures.reasons == [] and figures.sentiment == {}
    assert await stats.locations() == []
    assert render(figures, UTC) == (
        "Nothing recorded for all locations in the week of 2 Mar 2026:"
        " no surveys sent, no answers, no cases."
    )
