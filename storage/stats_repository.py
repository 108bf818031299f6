"""The statistics' queries: a few aggregate passes over surveys, answers, reasons and cases.

Each count is taken from three parts that add up to the period exactly (a `Plan`, see
storage.stats_rollup): the fresh whole days of the daily roll-up, the raw rows of the rest of
the period (its cut-off first and last days, today, stale days), and — for a staff chat — the
raw rows routed to it from elsewhere; then the test visits' rows of the whole period are taken
away. With no roll-up (not built yet, another time zone) the plan is the raw period alone.

Measured over a million answers by bench/stats.py (SQLite and PostgreSQL):

- **Counts by raw columns, arithmetic in Python.** Answers are counted grouped by (scale, score,
  unsolicited, label, corrected label) — at most a few hundred groups — and CSAT, NPS, averages,
  the sentiment split and the silent-majority figure are all sums over those groups. The
  grouping follows the index `ix_answers_stats` (migration 0005), so SQLite streams the index in
  group order with no sort and no per-row expression; only the time range is checked per entry.
- **Test visits are subtracted, not filtered.** Excluding them row by row (`NOT IN`) costs a
  lookup per answer; instead the same counts are taken once more over test visits only (a tiny
  partial index, `ix_visits_test`) and taken away. Sums and counts subtract exactly.
- **Reasons** are counted by reason id first and named afterwards: with the (few) reasons joined
  before the count, SQLite chose to walk the period's answers once per reason.
- **Weekly trend** is one small range query per week on `ix_answers_trend` / `ix_surveys_stats`.
- **Medians** are exact, from the raw cases, both in one pass: on PostgreSQL
  `percentile_cont` with a FILTER each; on SQLite the period's times are fetched as Julian days
  (at most ~100,000 rows) and the middles taken in Python.

A `ScopeFilter` narrows everything to some locations and/or to the cases routed to one staff
chat; None everywhere means the whole business. A location is read from the survey's, the
answer's or the case's own `location` (the visit's, copied by the database as the row is
inserted: migration 0006), so a location's figures are index ranges of `ix_surveys_location`,
`ix_answers_location` and `ix_cases_location`, never a walk through the visits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    Answer,
    AnswerReason,
    Case,
    CaseState,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    Visit,
    stats_daily_answers,
    stats_daily_cases,
    stats_daily_reasons,
    stats_daily_surveys,
)
from storage.stats_rollup import Coverage, Plan, days_condition
from storage.test_visits import TEST_VISITS_WHERE

__all__ = [
    "OPEN_CASE_STATES",
    "TEST_VISITS_WHERE",
    "AnswerGroup",
    "CaseCounts",
    "ScopeFilter",
    "StatsRepository",
    "WeekCounts",
    "open_and_overdue",
]

#: Cases somebody still has to act on.
OPEN_CASE_STATES = (CaseState.OPEN, CaseState.TAKEN, CaseState.REOPENED)


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """Which rows count: visits at ``locations`` (exact stored spellings; None: any location),
    or cases (and their answers) routed to the staff chat row ``staff_chat_id``."""

    locations: tuple[str, ...] | None = None
    staff_chat_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.locations is None


@dataclass(frozen=True, slots=True)
class AnswerGroup:
    scale: SurveyScale | None
    score: int | None
    unsolicited: bool
    label: SentimentLabel | None  # effective: the staff's correction, else the classifier's
    count: int


@dataclass(frozen=True, slots=True)
class WeekCounts:
    start: datetime
    surveys_sent: int
    surveys_answered: int
    csat_answers: int
    csat_satisfied: int
    nps_answers: int
    promoters: int
    detractors: int


@dataclass(frozen=True, slots=True)
class CaseCounts:
    opened: int
    open_now: int
    overdue_now: int
    followups_answered: int
    recovered: int
    median_first_response: timedelta | None
    median_resolution: timedelta | None


def open_and_overdue(now: datetime, *where: ColumnElement[bool]) -> Select[tuple[int, int]]:
    """Two counts: the cases somebody still has to act on, and those of them past their
    first-response or resolution deadline at ``now`` (for /stats and for /metrics)."""
    overdue = or_(
        and_(Case.first_responded_at.is_(None), Case.first_response_due_at < now),
        Case.resolution_due_at < now,
    )
    return select(func.count(), func.count().filter(overdue)).where(
        Case.state.in_(OPEN_CASE_STATES), *where
    )


def _test_visits() -> Select[tuple[int]]:
    return select(Visit.id).where(literal_column(TEST_VISITS_WHERE))


def _count_score(row: list[int], scale: SurveyScale | None, score: int, n: int) -> None:
    """Add ``n`` answers of ``score`` on ``scale`` to a week's row (see `WeekCounts`)."""
    if scale is SurveyScale.CSAT:
        row[2] += n
        row[3] += n * (score >= 4)
    elif scale is SurveyScale.NPS:
        row[4] += n
        row[5] += n * (score >= 9)
        row[6] += n * (score <= 6)


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"
        self._tested: list[int] | None = None
        self._tested_survey_ids: list[int] | None = None

    # -- scope -----------------------------------------------------------------------------------

    async def locations(self) -> list[str]:
        """Every location a visit was recorded at, as stored: a handful, found by jumping from
        one to the next along `ix_visits_location_occurred_at` (a DISTINCT would read every
        visit's entry)."""
        following = aliased(Visit)
        found = (
            select(func.min(Visit.location).label("location"))
            .where(Visit.location.is_not(None))
            .cte("found", recursive=True)
        )
        found = found.union_all(
            select(
                select(func.min(following.location))
                .where(following.location > found.c.location)
                .scalar_subquery()
            ).where(found.c.location.is_not(None))
        )
        rows = await self._session.scalars(
            select(found.c.location).where(found.c.location.is_not(None))
        )
        return sorted((row for row in rows if row), key=str.casefold)

    def _survey_scope(
        self, scope: ScopeFilter, tests: list[int] | None
    ) -> list[ColumnElement[bool]]:
        """Surveys in scope; with ``tests`` (the test surveys' ids), only those."""
        where: list[ColumnElement[bool]] = []
        if scope.locations is not None:
            where.append(Survey.location.in_(scope.locations))
        if tests is not None:
            where.append(Survey.id.in_(tests))
        return where

    def _answer_scope(
        self, scope: ScopeFilter, tests: list[int] | None, *, routed: bool = True
    ) -> list[ColumnElement[bool]]:
        """Answers in scope; with ``tests`` (the test surveys' ids), only theirs. Without
        ``routed``, only those at the scope's locations (not those routed to its chat)."""
        where: list[ColumnElement[bool]] = []
        if scope.locations is not None:
            at_locations = Answer.location.in_(scope.locations)
            if scope.staff_chat_id is not None and routed:
                routed = select(Case.answer_id).where(Case.staff_chat_id == scope.staff_chat_id)
                where.append(or_(at_locations, Answer.id.in_(routed)))
            else:
                where.append(at_locations)
        if tests is not None:
            where.append(Answer.survey_id.in_(tests))
        return where

    async def _tested_surveys(self) -> list[int]:
        """The ids of test visits' surveys: a handful, read once through `ix_visits_test` and
        then used as a list, so that each is one lookup by key (given as a subquery, the
        planner guessed thousands of test visits and read every survey of the range)."""
        if self._tested_survey_ids is None:
            # The visits first, then their surveys: as one statement, PostgreSQL expected
            # thousands of test visits and read every survey.
            visits = list(await self._session.scalars(_test_visits()))
            tested = select(Survey.id).where(Survey.visit_id.in_(visits))
            self._tested_survey_ids = list(await self._session.scalars(tested))
        return self._tested_survey_ids

    async def _tested_answers(self) -> list[int]:
        """The ids of test visits' answers, as a list (SQLite runs a nested NOT IN subquery
        far slower)."""
        if self._tested is None:
            tested = select(Answer.id).where(Answer.survey_id.in_(await self._tested_surveys()))
            self._tested = list(await self._session.scalars(tested))
        return self._tested

    async def _case_scope(self, scope: ScopeFilter) -> list[ColumnElement[bool]]:
        """Cases in scope, test visits' cases left out (cases are few: filtered, not
        subtracted)."""
        tested = await self._tested_answers()
        return [
            or_(Case.answer_id.is_(None), Case.answer_id.not_in(tested)),
            *self._case_locations(scope),
        ]

    @staticmethod
    def _case_locations(scope: ScopeFilter) -> list[ColumnElement[bool]]:
        """Cases at the scope's locations or routed to its chat, test visits' included."""
        if scope.locations is None:
            return []
        at_locations = Case.location.in_(scope.locations)
        if scope.staff_chat_id is not None:
            return [or_(at_locations, Case.staff_chat_id == scope.staff_chat_id)]
        return [at_locations]

    def _routed_elsewhere(self, scope: ScopeFilter) -> list[ColumnElement[bool]] | None:
        """Answers routed to the scope's staff chat that are not at its locations (what the
        chat sees beyond its locations); None when the scope has no such part."""
        if scope.locations is None or scope.staff_chat_id is None:
            return None
        routed = select(Case.answer_id).where(Case.staff_chat_id == scope.staff_chat_id)
        return [
            Answer.id.in_(routed),
            or_(Answer.location.not_in(scope.locations), Answer.location.is_(None)),
        ]

    def _cases_routed_elsewhere(self, scope: ScopeFilter) -> list[ColumnElement[bool]] | None:
        if scope.locations is None or scope.staff_chat_id is None:
            return None
        return [
            Case.staff_chat_id == scope.staff_chat_id,
            or_(Case.location.not_in(scope.locations), Case.location.is_(None)),
        ]

    @staticmethod
    def _rolled(table: Table, plan: Plan, scope: ScopeFilter) -> list[ColumnElement[bool]]:
        """The roll-up rows of the plan's days at the scope's locations."""
        where = [days_condition(table, plan.runs)]
        if scope.locations is not None:
            where.append(table.c.location.in_(scope.locations))
        return where

    # -- surveys and answers ---------------------------------------------------------------------

    async def surveys(self, plan: Plan, scope: ScopeFilter) -> tuple[int, int]:
        """(sent, answered since) of the surveys sent in the period, test visits left out: the
        rolled-up days, the raw rows of the rest, less the test visits' surveys."""
        totals = [0, 0]
        if plan.runs:
            t = stats_daily_surveys
            row = (
                await self._session.execute(
                    select(func.sum(t.c.sent), func.sum(t.c.answered)).where(
                        *self._rolled(t, plan, scope)
                    )
                )
            ).one()
            totals = [int(row[0] or 0), int(row[1] or 0)]
        parts: list[tuple[datetime, datetime, list[int] | None, int]] = [
            (start, end, None, 1) for start, end in plan.raw
        ]
        parts.append((plan.start, plan.end, await self._tested_surveys(), -1))
        for start, end, tests, sign in parts:
            row = (
                await self._session.execute(
                    select(func.count(Survey.sent_at), func.count(Survey.answered_at)).where(
                        Survey.sent_at >= start,
                        Survey.sent_at < end,
                        *self._survey_scope(scope, tests),
                    )
                )
            ).one()
            totals[0] += sign * int(row[0])
            totals[1] += sign * int(row[1])
        return totals[0], totals[1]

    async def answer_groups(self, plan: Plan, scope: ScopeFilter) -> list[AnswerGroup]:
        """Answers given in the period counted by what they said; test visits left out."""
        counts: dict[tuple[object, ...], int] = {}

        def add(key: tuple[object, ...], n: int) -> None:
            counts[key] = counts.get(key, 0) + n

        if plan.runs:
            t = stats_daily_answers
            keys = (t.c.scale, t.c.score, t.c.unsolicited, t.c.label)
            rolled = (
                select(*keys, func.sum(t.c.answers))
                .where(*self._rolled(t, plan, scope))
                .group_by(*keys)
            )
            for scale, score, unsolicited, label, count in await self._session.execute(rolled):
                key = (
                    SurveyScale(scale) if scale is not None else None,
                    score,
                    bool(unsolicited),
                    SentimentLabel(label) if label is not None else None,
                )
                add(key, int(count))
        raw_keys = (
            Answer.scale,
            Answer.score,
            Answer.unsolicited,
            Answer.sentiment_label,
            Answer.sentiment_corrected,
        )
        tested = await self._tested_surveys()
        parts = [
            (start, end, self._answer_scope(scope, None, routed=False), 1)
            for start, end in plan.raw
        ]
        if (elsewhere := self._routed_elsewhere(scope)) is not None:
            parts.append((plan.start, plan.end, elsewhere, 1))
        parts.append((plan.start, plan.end, self._answer_scope(scope, tested), -1))
        for start, end, where, sign in parts:
            statement = (
                select(*raw_keys, func.count())
                .where(Answer.created_at >= start, Answer.created_at < end, *where)
                .group_by(*raw_keys)
            )
            for scale, score, unsolicited, label, corrected, count in await self._session.execute(
                statement
            ):
                add((scale, score, bool(unsolicited), corrected or label), sign * int(count))
        return [
            AnswerGroup(scale, score, unsolicited, label, count)  # type: ignore[arg-type]
            for (scale, score, unsolicited, label), count in counts.items()
            if count
        ]

    async def reasons(self, plan: Plan, scope: ScopeFilter, limit: int) -> list[tuple[str, int]]:
        """The most tapped reasons of answers given in the period: (label, count), most
        first (ties by label).

        The chips are counted by reason first and named after: joined to the (few) reasons
        before counting, a planner may walk the answers once per reason."""
        counts: dict[int, int] = {}
        if plan.runs:
            t = stats_daily_reasons
            rolled = (
                select(t.c.reason_id, func.sum(t.c.chips))
                .where(*self._rolled(t, plan, scope))
                .group_by(t.c.reason_id)
            )
            for reason_id, n in await self._session.execute(rolled):
                counts[reason_id] = counts.get(reason_id, 0) + int(n)
        tested = await self._tested_surveys()
        parts: list[tuple[datetime, datetime, list[ColumnElement[bool]] | None, int]] = []
        for start, end in plan.raw:
            if scope.everything and await self._covers_every_answer(start, end):
                # A period holding every answer (`all` with no roll-up) counts the chips
                # alone, with no date to check.
                parts.append((start, end, None, 1))
            else:
                parts.append((start, end, self._answer_scope(scope, None, routed=False), 1))
        if (elsewhere := self._routed_elsewhere(scope)) is not None:
            parts.append((plan.start, plan.end, elsewhere, 1))
        parts.append((plan.start, plan.end, self._answer_scope(scope, tested), -1))
        for start, end, where, sign in parts:
            chips = select(AnswerReason.reason_id, func.count())
            if where is not None:
                chips = chips.join(Answer, Answer.id == AnswerReason.answer_id).where(
                    Answer.created_at >= start, Answer.created_at < end, *where
                )
            for reason_id, n in await self._session.execute(chips.group_by(AnswerReason.reason_id)):
                counts[reason_id] = counts.get(reason_id, 0) + sign * int(n)
        if not any(counts.values()):
            return []
        wanted = [reason_id for reason_id, n in counts.items() if n]
        named = select(Reason.id, Reason.label).where(Reason.id.in_(wanted))
        labels = {reason_id: label for reason_id, label in await self._session.execute(named)}
        ranked = sorted(
            (
                (labels[reason_id], n)
                for reason_id, n in counts.items()
                if n and reason_id in labels
            ),
            key=lambda item: (-item[1], item[0]),
        )
        return ranked[:limit]

    async def _covers_every_answer(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) holds every answer there is: two index lookups (min and max
        asked apart, as SQLite reads only one end of an index for a lone min or max)."""
        first = await self._session.scalar(select(func.min(Answer.created_at)))
        last = await self._session.scalar(select(func.max(Answer.created_at)))
        return first is None or last is None or (start <= first and last < end)

    async def weeks(
        self, edges: Sequence[datetime], scope: ScopeFilter, cover: Coverage | None = None
    ) -> list[WeekCounts]:
        """Counts for each week [edges[i], edges[i + 1]): its rolled-up days (one query per
        table for the whole window), a range query per table for each raw part, then the
        (few) test visits' rows of the whole window taken away."""
        plans = [
            cover.plan(start, end) if cover is not None else Plan.unrolled(start, end)
            for start, end in pairwise(edges)
        ]
        rows: list[list[int]] = [[0] * 7 for _ in plans]

        def week_of(moment: datetime) -> int:
            return next(i for i in range(len(edges) - 1) if moment < edges[i + 1])

        runs = [run for plan in plans for run in plan.runs]
        if runs and cover is not None:
            window = Plan(edges[0], edges[-1], tuple(runs))
            t = stats_daily_surveys
            surveys = (
                select(t.c.day, func.sum(t.c.sent), func.sum(t.c.answered))
                .where(*self._rolled(t, window, scope))
                .group_by(t.c.day)
            )
            for day, sent, answered in await self._session.execute(surveys):
                row = rows[week_of(cover.calendar.midnight(day))]
                row[0] += int(sent)
                row[1] += int(answered)
            t = stats_daily_answers
            answers = (
                select(t.c.day, t.c.scale, t.c.score, func.sum(t.c.answers))
                .where(
                    *self._rolled(t, window, scope),
                    t.c.scale.in_((SurveyScale.CSAT.value, SurveyScale.NPS.value)),
                    t.c.score.is_not(None),
                )
                .group_by(t.c.day, t.c.scale, t.c.score)
            )
            for day, scale, score, n in await self._session.execute(answers):
                _count_score(
                    rows[week_of(cover.calendar.midnight(day))],
                    SurveyScale(scale),
                    score,
                    int(n),
                )
        csat, nps = Answer.scale == SurveyScale.CSAT, Answer.scale == SurveyScale.NPS
        answer_counts = (
            func.count().filter(csat),
            func.count().filter(csat, Answer.score >= 4),
            func.count().filter(nps),
            func.count().filter(nps, Answer.score >= 9),
            func.count().filter(nps, Answer.score <= 6),
        )
        for row, plan in zip(rows, plans, strict=True):
            for start, end in plan.raw:
                survey_row = (
                    await self._session.execute(
                        select(func.count(Survey.sent_at), func.count(Survey.answered_at)).where(
                            Survey.sent_at >= start,
                            Survey.sent_at < end,
                            *self._survey_scope(scope, None),
                        )
                    )
                ).one()
                answer_row = (
                    await self._session.execute(
                        select(*answer_counts).where(
                            Answer.scale.in_((SurveyScale.CSAT, SurveyScale.NPS)),
                            Answer.created_at >= start,
                            Answer.created_at < end,
                            Answer.score.is_not(None),
                            *self._answer_scope(scope, None, routed=False),
                        )
                    )
                ).one()
                for i, value in enumerate((*survey_row, *answer_row)):
                    row[i] += int(value)
        first, last = edges[0], edges[-1]
        tested = await self._tested_surveys()
        tested_surveys = select(Survey.sent_at, Survey.answered_at).where(
            Survey.sent_at >= first, Survey.sent_at < last, *self._survey_scope(scope, tested)
        )
        for sent_at, answered_at in await self._session.execute(tested_surveys):
            row = rows[week_of(sent_at)]
            row[0] -= 1
            row[1] -= answered_at is not None
        scores = [(self._answer_scope(scope, tested), -1)]
        if (elsewhere := self._routed_elsewhere(scope)) is not None:
            scores.append((elsewhere, 1))
        for where, sign in scores:
            statement = select(Answer.created_at, Answer.scale, Answer.score).where(
                Answer.created_at >= first,
                Answer.created_at < last,
                Answer.score.is_not(None),
                *where,
            )
            for created_at, scale, score in await self._session.execute(statement):
                _count_score(rows[week_of(created_at)], scale, score, sign)
        return [WeekCounts(start, *row) for start, row in zip(edges, rows, strict=False)]

    # -- cases -----------------------------------------------------------------------------------

    async def cases(self, plan: Plan, now: datetime, scope: ScopeFilter) -> CaseCounts:
        """Cases opened in the period, their follow-ups and medians, and those open now."""
        totals = [0, 0, 0]
        if plan.runs:
            t = stats_daily_cases
            row = (
                await self._session.execute(
                    select(
                        func.sum(t.c.opened), func.sum(t.c.followups), func.sum(t.c.recovered)
                    ).where(*self._rolled(t, plan, scope))
                )
            ).one()
            totals = [int(value or 0) for value in row]
        at_locations = [Case.location.in_(scope.locations)] if scope.locations is not None else []
        parts = [(start, end, at_locations, 1) for start, end in plan.raw]
        if (elsewhere := self._cases_routed_elsewhere(scope)) is not None:
            parts.append((plan.start, plan.end, elsewhere, 1))
        # Test visits' cases in scope, taken away.
        tested = Case.answer_id.in_(await self._tested_answers())
        parts.append((plan.start, plan.end, [tested, *self._case_locations(scope)], -1))
        for start, end, where, sign in parts:
            row = (
                await self._session.execute(
                    select(
                        func.count(),
                        func.count(Case.recovered),
                        func.count().filter(Case.recovered.is_(True)),
                    ).where(Case.created_at >= start, Case.created_at < end, *where)
                )
            ).one()
            for i, value in enumerate(row):
                totals[i] += sign * int(value)
        where = await self._case_scope(scope)
        open_row = (await self._session.execute(open_and_overdue(now, *where))).one()
        first_response, resolution = await self._medians(plan.start, plan.end, where)
        return CaseCounts(
            opened=totals[0],
            open_now=int(open_row[0]),
            overdue_now=int(open_row[1]),
            followups_answered=totals[1],
            recovered=totals[2],
            median_first_response=first_response,
            median_resolution=resolution,
        )

    async def _medians(
        self, start: datetime, end: datetime, where: list[ColumnElement[bool]]
    ) -> tuple[timedelta | None, timedelta | None]:
        """The medians of (first response − opening) and (resolution − opening) over the
        period's cases that have them: one pass over the cases for both."""
        responded, resolved = Case.first_responded_at, Case.resolved_at
        base = [
            Case.created_at >= start,
            Case.created_at < end,
            or_(responded.is_not(None), resolved.is_not(None)),
            *where,
        ]
        if self._postgres:

            def median(column: Any) -> Any:
                seconds = func.extract("epoch", column - Case.created_at)
                return func.percentile_cont(0.5).within_group(seconds).filter(column.is_not(None))

            row = (
                await self._session.execute(
                    select(median(responded), median(resolved)).where(*base)
                )
            ).one()
            return (
                None if row[0] is None else timedelta(seconds=float(row[0])),
                None if row[1] is None else timedelta(seconds=float(row[1])),
            )
        # SQLite: the (at most ~100,000) times fetched as Julian days and the middles taken
        # here; a sort on the expression in SQL costs more than the fetch.
        statement = select(
            func.julianday(Case.created_at), func.julianday(responded), func.julianday(resolved)
        ).where(*base)
        firsts: list[float] = []
        resolutions: list[float] = []
        for opened, first, last in await self._session.execute(statement):
            if first is not None:
                firsts.append((first - opened) * 86_400.0)
            if last is not None:
                resolutions.append((last - opened) * 86_400.0)
        return _middle(firsts), _middle(resolutions)


def _middle(values: list[float]) -> timedelta | None:
    """The middle value (odd count) or the two middle ones averaged, as percentile_cont."""
    if not values:
        return None
    values.sort()
    middle = len(values) // 2
    value = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return timedelta(seconds=value)
