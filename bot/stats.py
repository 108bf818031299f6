"""Statistics a manager reads at a glance: /stats, the weekly digest, and their figures.

`StatsService.figures(period, scope)` counts; `render(figures, zone)` words them for a phone;
`bot.charts.stats_chart(figures)` draws them. Nothing here reads the wall clock.

What each figure means (test-survey visits, ids starting "test:", are always left out):

- surveys sent: surveys sent in the period; response rate: the share of those answered;
- CSAT: the share of 4–5 among CSAT scores given in the period; NPS: % 9–10 minus % 0–6 among
  NPS scores (shown only when NPS answers exist); average score per scale;
- sentiment split: answers given in the period by effective sentiment (the staff's correction,
  else the classifier's label), unsolicited feedback included;
- top reasons: the chips tapped most in the period;
- cases open and overdue: as they stand now (a first response or a resolution past due);
- medians: time to first response and to resolution of the cases opened in the period;
- recovery rate: of the follow-ups answered (cases opened in the period), the share answered Yes;
- the silent majority: of all negative experiences recorded (effective sentiment negative or
  mixed), the share that came from surveys Hearback asked, not from feedback customers
  volunteered — the complaints nobody would have heard without asking.

Scope. An admin sees everything, or one location. A staff chat sees what it handles
(`Scope.for_staff_chat`): the locations its routing rules name (every location if one of its
rules names none, or if it is the default chat that takes whatever no rule catches), plus every
case routed to it, with its answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.periods import Period
from storage.models import SentimentLabel, StaffChat, SurveyScale
from storage.staff_repository import StaffRepository
from storage.stats_repository import AnswerGroup, CaseCounts, ScopeFilter, StatsRepository
from storage.stats_rollup import coverage, snapshot

__all__ = [
    "TOP_REASONS",
    "TREND_WEEKS",
    "Figures",
    "Scope",
    "StatsService",
    "Week",
    "headline",
    "render",
]

#: How many reasons the text and the chart list.
TOP_REASONS = 5
#: The chart's trend: the weeks ending with the period's (fewer for a young business).
TREND_WEEKS = 12

_NEGATIVE = (SentimentLabel.NEGATIVE, SentimentLabel.MIXED)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a reader may see: visits at ``locations`` (None: every location) and the cases
    routed to the staff chat row ``staff_chat_id`` (`StaffChat.id`, not Telegram's id)."""

    locations: frozenset[str] | None = None
    staff_chat_id: int | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def location(cls, name: str) -> Scope:
        return cls(frozenset({name}))

    @classmethod
    async def for_staff_chat(cls, session: AsyncSession, chat: StaffChat) -> Scope:
        """The locations of the chat's routing rules (all if one has no location matcher, or
        the chat is the default chat), plus the cases routed to it."""
        staff = StaffRepository(session)
        default = await staff.default_chat()
        rules = [rule for rule in await staff.rules() if rule.staff_chat_id == chat.id]
        if (default is not None and default.id == chat.id) or any(
            rule.location is None for rule in rules
        ):
            return cls(None, chat.id)
        return cls(frozenset(rule.location for rule in rules if rule.location), chat.id)


@dataclass(frozen=True, slots=True)
class Week:
    start: datetime  # UTC instant of the local Monday 00:00
    surveys_sent: int
    surveys_answered: int
    csat: float | None  # share of 4–5, 0–1
    nps: float | None  # −100…100

    @property
    def response_rate(self) -> float | None:
        return self.surveys_answered / self.surveys_sent if self.surveys_sent else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Figures:
    period: Period
    scope: Scope
    scope_label: str
    now: datetime
    surveys_sent: int = 0
    surveys_answered: int = 0
    csat_answers: int = 0
    csat_satisfied: int = 0
    csat_score_sum: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    nps_score_sum: int = 0
    sentiment: dict[SentimentLabel, int] = field(default_factory=dict)
    negative_asked: int = 0
    negative_volunteered: int = 0
    feedback: int = 0  # unsolicited messages
    reasons: list[tuple[str, int]] = field(default_factory=list)
    cases: CaseCounts = field(default_factory=lambda: CaseCounts(0, 0, 0, 0, 0, None, None))
    weeks: list[Week] = field(default_factory=list)

    @property
    def response_rate(self) -> float | None:
        return _share(self.surveys_answered, self.surveys_sent)

    @property
    def csat(self) -> float | None:
        return _share(self.csat_satisfied, self.csat_answers)

    @property
    def nps(self) -> float | None:
        if not self.nps_answers:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.nps_answers

    @property
    def average_csat(self) -> float | None:
        return self.csat_score_sum / self.csat_answers if self.csat_answers else None

    @property
    def average_nps(self) -> float | None:
        return self.nps_score_sum / self.nps_answers if self.nps_answers else None

    @property
    def recovery_rate(self) -> float | None:
        return _share(self.cases.recovered, self.cases.followups_answered)

    @property
    def silent_majority(self) -> float | None:
        return _share(self.negative_asked, self.negative_asked + self.negative_volunteered)

    @property
    def has_data(self) -> bool:
        """Anything happened in the period (else: say so, and draw no empty chart)."""
        return bool(
            self.surveys_sent
            or self.csat_answers
            or self.nps_answers
            or self.feedback
            or self.cases.opened
        )


def week_edges(period: Period, zone: tzinfo, weeks: int = TREND_WEEKS) -> list[datetime]:
    """Local Monday midnights (as UTC) bounding up to ``weeks`` weeks that end with the period:
    the last edge is the period's end, the first no earlier than a week before its start... or
    ``weeks`` weeks back, whichever is later, so a week-long period still shows a trend."""
    end = period.end
    local_end = end.astimezone(zone)
    monday = local_end.date() - timedelta(days=local_end.weekday())
    first = datetime.combine(monday, time(0), tzinfo=zone).astimezone(UTC)
    edges = [end] if first >= end else [first, end]
    day = monday
    while len(edges) <= weeks:
        day -= timedelta(days=7)
        edges.insert(0, datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC))
    return edges


class StatsService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        zone: tzinfo | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        #: The business's time zone (TIMEZONE): weeks start on its Mondays.
        self.zone: tzinfo = zone or UTC

    async def locations(self) -> list[str]:
        async with self._sessions() as session:
            return await StatsRepository(session).locations()

    async def find_location(self, typed: str) -> str | None:
        """The stored spelling of a location typed in any case; None if there is none."""
        folded = " ".join(typed.split()).casefold()
        return next((name for name in await self.locations() if name.casefold() == folded), None)

    async def scope_of(self, chat: StaffChat) -> Scope:
        async with self._sessions() as session:
            return await Scope.for_staff_chat(session, chat)

    async def describe(self, scope: Scope) -> str:
        """What ``scope`` covers, in words, its locations spelt as the visits spell them."""
        async with self._sessions() as session:
            return _named(scope, await self._filter(StatsRepository(session), scope))

    async def figures(self, period: Period, scope: Scope, *, label: str | None = None) -> Figures:
        now = self._clock.now()
        async with self._sessions() as session:
            # One snapshot: the roll-up, its log of stale days and the raw rows agree.
            await snapshot(session)
            stats = StatsRepository(session)
            where = await self._filter(stats, scope)
            label = label or _named(scope, where)
            # Whole local days from the daily roll-up where it is fresh, the rest raw.
            cover = await coverage(session, self.zone)
            plan = cover.plan(period.start, period.end)
            sent, answered = await stats.surveys(plan, where)
            groups = await stats.answer_groups(plan, where)
            reasons = await stats.reasons(plan, where, TOP_REASONS)
            cases = await stats.cases(plan, now, where)
            weeks = await stats.weeks(week_edges(period, self.zone), where, cover)
        values = _from_groups(groups)
        return Figures(
            period=period,
            scope=scope,
            scope_label=label or describe(scope),
            now=now,
            surveys_sent=sent,
            surveys_answered=answered,
            reasons=reasons,
            cases=cases,
            weeks=[
                Week(
                    w.start,
                    w.surveys_sent,
                    w.surveys_answered,
                    _share(w.csat_satisfied, w.csat_answers),
                    100.0 * (w.promoters - w.detractors) / w.nps_answers if w.nps_answers else None,
                )
                for w in weeks
            ],
            **values,
        )

    @staticmethod
    async def _filter(stats: StatsRepository, scope: Scope) -> ScopeFilter:
        if scope.locations is None:
            return ScopeFilter(None, scope.staff_chat_id)
        # Locations are matched as routing matches them (trimmed, any case, any script), then
        # queried by their stored spellings, which both backends compare the same way.
        wanted = {_fold(name) for name in scope.locations}
        stored = tuple(name for name in await stats.locations() if name.casefold() in wanted)
        return ScopeFilter(stored, scope.staff_chat_id)


def _named(scope: Scope, where: ScopeFilter) -> str:
    """`describe`, with the stored spelling of each location (a routing rule's "airport" is the
    visits' "Airport"); a location no visit has yet keeps the spelling it was given."""
    if not where.locations:
        return describe(scope)
    folded = {name.casefold() for name in where.locations}
    unseen = {name for name in scope.locations or () if _fold(name) not in folded}
    return describe(Scope(frozenset(where.locations) | unseen, scope.staff_chat_id))


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _from_groups(groups: Sequence[AnswerGroup]) -> dict[str, object]:
    values: dict[str, int] = dict.fromkeys(
        (
            "csat_answers",
            "csat_satisfied",
            "csat_score_sum",
            "nps_answers",
            "promoters",
            "detractors",
            "nps_score_sum",
            "negative_asked",
            "negative_volunteered",
            "feedback",
        ),
        0,
    )
    sentiment: dict[SentimentLabel, int] = {}
    for group in groups:
        n = group.count
        if group.score is not None and group.scale is SurveyScale.CSAT:
            values["csat_answers"] += n
            values["csat_satisfied"] += n * (group.score >= 4)
            values["csat_score_sum"] += n * group.score
        elif group.score is not None and group.scale is SurveyScale.NPS:
            values["nps_answers"] += n
            values["promoters"] += n * (group.score >= 9)
            values["detractors"] += n * (group.score <= 6)
            values["nps_score_sum"] += n * group.score
        if group.unsolicited:
            values["feedback"] += n
        if group.label is not None:
            sentiment[group.label] = sentiment.get(group.label, 0) + n
        if group.label in _NEGATIVE:
            values["negative_volunteered" if group.unsolicited else "negative_asked"] += n
    return {**values, "sentiment": sentiment}


def describe(scope: Scope) -> str:
    if scope.locations is None:
        return "all locations"
    if not scope.locations:
        return "the cases routed to this chat"
    names = ", ".join(sorted(scope.locations, key=str.casefold))
    if scope.staff_chat_id is not None:
        return f"{names}, and the cases routed to this chat"
    return names


# -- wording (English: the back room) -----------------------------------------------------------

NO_DATA = "Nothing recorded for {scope} in {period}: no surveys sent, no answers, no cases."
HEADING = "📊 {period} · {scope}"
_SENTIMENT_ORDER = (
    SentimentLabel.POSITIVE,
    SentimentLabel.NEUTRAL,
    SentimentLabel.NEGATIVE,
    SentimentLabel.MIXED,
    SentimentLabel.UNKNOWN,
)


def headline(label: str) -> str:
    """A period's label at the start of a line: "the week of 2 Mar" → "The week of 2 Mar"
    (`str.capitalize` would lower the month's name too)."""
    return label[:1].upper() + label[1:]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "–"
    minutes = round(value.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def render(figures: Figures, zone: tzinfo) -> str:
    """The text for a phone: a line per figure, the period's label and when it was counted."""
    period_label = figures.period.label
    if not figures.has_data:
        return NO_DATA.format(scope=figures.scope_label, period=period_label)
    lines = [HEADING.format(period=headline(period_label), scope=figures.scope_label)]
    lines.append(
        f"Surveys sent: {figures.surveys_sent} · answered {figures.surveys_answered}"
        f" ({_percent(figures.response_rate)})"
    )
    if figures.csat_answers:
        lines.append(
            f"CSAT: {_percent(figures.csat)} satisfied (4–5) of {figures.csat_answers}"
            f" · average {figures.average_csat:.1f}/5"
        )
    if figures.nps_answers:
        lines.append(
            f"NPS: {figures.nps:+.0f} of {figures.nps_answers}"
            f" · average {figures.average_nps:.1f}/10"
        )
    total = sum(figures.sentiment.values())
    if total:
        split = " · ".join(
            f"{label.value} {_percent(figures.sentiment[label] / total)}"
            for label in _SENTIMENT_ORDER
            if figures.sentiment.get(label)
        )
        lines.append(f"Sentiment: {split}")
    if figures.reasons:
        lines.append("Top reasons: " + ", ".join(f"{name} {n}" for name, n in figures.reasons))
    cases = figures.cases
    lines.append(
        f"Cases: {cases.opened} opened · {cases.open_now} open now, {cases.overdue_now} overdue"
    )
    lines.append(
        f"Median first response {_duration(cases.median_first_response)}"
        f" · resolution {_duration(cases.median_resolution)}"
    )
    if cases.followups_answered:
        lines.append(
            f"Recovered: {_percent(figures.recovery_rate)} of {cases.followups_answered}"
            " follow-ups answered"
        )
    negatives = figures.negative_asked + figures.negative_volunteered
    if negatives:
        lines.append(
            f"Heard by asking: {_percent(figures.silent_majority)} of {negatives} negative"
            " experiences came from surveys, not volunteered complaints"
        )
    lines.append(f"As of {figures.now.astimezone(zone):%a %d %b %H:%M}")
    return "\n".join(lines)
