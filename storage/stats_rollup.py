"""The daily roll-up behind /stats: additive counts per local day and location, kept exact.

What it holds (tables of migration 0007), for the local days [first_day, end_day) of the
business's time zone, days of the past only:

- `stats_daily_surveys`: surveys sent (by `sent_at`) and how many of them are answered;
- `stats_daily_answers`: answers given (by `created_at`) by scale, score, unsolicited and
  effective sentiment label — everything the CSAT, NPS, averages, sentiment split and silent
  majority are sums of;
- `stats_daily_reasons`: chips by reason (by their answer's day and location);
- `stats_daily_cases`: cases opened, follow-ups answered and recovered.

Test visits' rows are counted too: /stats takes them away over the whole period, as it does
for raw rows, so whether a visit is a test never decides what a day holds.

Exactness. Past days keep changing (a late answer, a corrected label, a chip after midnight, a
follow-up answered). Every such write adds a row to `stats_stale` (triggers, migration 0007)
naming the UTC hour of the row's day-deciding time. A reader (`coverage` then `Coverage.plan`)
takes a rolled-up day only if no log row touches it; every other part of a period — its first
and last partial days, today, stale days, days outside the roll-up — is counted from the raw
rows. A refresh (`refresh_step`) takes the log rows it can see, recounts their days from the
raw rows and removes exactly those log rows, in one transaction that first locks the state
row: refreshes run one at a time, and a write committing meanwhile keeps its own log row, so
its day stays stale until the next refresh. A reader should read in one snapshot
(`snapshot`), so that the roll-up, the log and the raw rows it sees belong together.

Days are local days of the zone the roll-up was built for, with the same midnights as
bot.periods (`Calendar`); a reader in another zone (TIMEZONE changed) uses none of it until a
refresh has rebuilt it for the new zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Table,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    AnswerReason,
    Case,
    StatsRollupState,
    StatsStale,
    Survey,
    UTCDateTime,
    stats_daily_answers,
    stats_daily_cases,
    stats_daily_reasons,
    stats_daily_surveys,
)

__all__ = [
    "DAYS_PER_STEP",
    "DAY_TABLES",
    "Calendar",
    "Coverage",
    "Plan",
    "RollupStep",
    "coverage",
    "days_condition",
    "refresh_step",
    "snapshot",
    "zone_name",
]

ONE_DAY = timedelta(days=1)
ONE_HOUR = timedelta(hours=1)
#: Days recounted in one refresh transaction at most: SQLite has one writer, and a refresh
#: holding the lock for seconds would hold up the bot's writes as long.
DAYS_PER_STEP = 7
DAY_TABLES: tuple[Table, ...] = (
    stats_daily_surveys,
    stats_daily_answers,
    stats_daily_reasons,
    stats_daily_cases,
)
_STATE_ID = 1


def zone_name(zone: tzinfo) -> str:
    """How a time zone is recorded: its IANA key (ZoneInfo), else its name ("UTC")."""
    return str(getattr(zone, "key", None) or zone)


class Calendar:
    """Local days of ``zone`` as UTC intervals [midnight(d), midnight(d + 1)), with the same
    midnights as bot.periods and bot.stats.week_edges (`datetime.combine` at 00:00)."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._midnights: dict[date, datetime] = {}

    def midnight(self, day: date) -> datetime:
        found = self._midnights.get(day)
        if found is None:
            found = datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)
            self._midnights[day] = found
        return found

    def day_of(self, moment: datetime) -> date:
        """The day whose interval holds ``moment`` (checked against the midnights themselves,
        so a midnight skipped or repeated by a clock change cannot put it in two days)."""
        day = moment.astimezone(self.zone).date()
        while moment < self.midnight(day):
            day -= ONE_DAY
        while moment >= self.midnight(day + ONE_DAY):
            day += ONE_DAY
        return day

    def days_of_hour(self, hour: datetime) -> set[date]:
        """The days the UTC hour starting at ``hour`` touches (two where a zone's offset is
        not whole hours and its midnight falls inside)."""
        return {self.day_of(hour), self.day_of(hour + ONE_HOUR - timedelta(microseconds=1))}


@dataclass(frozen=True, slots=True)
class Plan:
    """How to count [start, end): the rolled-up days in ``runs`` (first, last: inclusive
    stretches of days) and the raw rows of the ``raw`` ranges; together exactly the period."""

    start: datetime
    end: datetime
    runs: tuple[tuple[date, date], ...] = ()
    raw: tuple[tuple[datetime, datetime], ...] = ()

    @classmethod
    def unrolled(cls, start: datetime, end: datetime) -> Plan:
        return cls(start, end, (), ((start, end),))

    @property
    def rolled_days(self) -> int:
        return sum((last - first).days + 1 for first, last in self.runs)


@dataclass(frozen=True)
class Coverage:
    """What a reader may take from the roll-up: the days [first, end) of ``zone`` but the
    ``stale`` ones. ``first`` None: nothing (not built, or built for another zone)."""

    zone: tzinfo
    first: date | None = None
    end: date | None = None
    stale: frozenset[date] = frozenset()
    calendar: Calendar = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "calendar", Calendar(self.zone))

    def plan(self, start: datetime, end: datetime) -> Plan:
        if self.first is None or self.end is None:
            return Plan.unrolled(start, end)
        calendar = self.calendar
        day = calendar.day_of(start)
        if calendar.midnight(day) < start:
            day += ONE_DAY
        day = max(day, self.first)
        runs: list[tuple[date, date]] = []
        while day < self.end and calendar.midnight(day + ONE_DAY) <= end:
            if day not in self.stale:
                if runs and runs[-1][1] == day - ONE_DAY:
                    runs[-1] = (runs[-1][0], day)
                else:
                    runs.append((day, day))
            day += ONE_DAY
        raw: list[tuple[datetime, datetime]] = []
        cursor = start
        for first, last in runs:
            if cursor < calendar.midnight(first):
                raw.append((cursor, calendar.midnight(first)))
            cursor = calendar.midnight(last + ONE_DAY)
        if cursor < end:
            raw.append((cursor, end))
        return Plan(start, end, tuple(runs), tuple(raw))


def days_condition(table: Table, runs: Sequence[tuple[date, date]]) -> ColumnElement[bool]:
    return or_(*(table.c.day.between(first, last) for first, last in runs))


# -- reading ------------------------------------------------------------------------------------


async def snapshot(session: AsyncSession) -> None:
    """Make the session's reads one snapshot: the roll-up, the log of stale days and the raw
    rows as of one moment (PostgreSQL: REPEATABLE READ; SQLite: a read transaction). Call it
    before the session's first statement."""
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        await session.execute(text("BEGIN"))


async def _state(session: AsyncSession) -> Row[tuple[str | None, date | None, date | None]] | None:
    """The roll-up's one state row: (zone, first_day, end_day), or None if it is gone."""
    return (
        await session.execute(
            select(
                StatsRollupState.zone, StatsRollupState.first_day, StatsRollupState.end_day
            ).where(StatsRollupState.id == _STATE_ID)
        )
    ).one_or_none()


async def coverage(session: AsyncSession, zone: tzinfo) -> Coverage:
    """What the roll-up offers a reader in ``zone`` now."""
    state = await _state(session)
    if state is None or state.zone != zone_name(zone) or state.first_day is None:
        return Coverage(zone)
    if state.first_day >= state.end_day:
        return Coverage(zone)
    calendar = Calendar(zone)
    hours = await session.scalars(select(StatsStale.at).distinct())
    stale = frozenset(day for hour in hours for day in calendar.days_of_hour(hour))
    return Coverage(zone, state.first_day, state.end_day, stale)


# -- refreshing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollupStep:
    """What one refresh transaction did."""

    recounted: int  # days recounted (stale or newly covered)
    first: date
    end: date
    rebuilt: bool  # started over (first build, or another time zone)
    done: bool  # the roll-up reaches from the first data to yesterday


async def refresh_step(
    session: AsyncSession, zone: tzinfo, now: datetime, *, days: int = DAYS_PER_STEP
) -> RollupStep:
    """One refresh, inside the caller's transaction: recount the stale days, then cover at
    most ``days`` more (yesterday back to the first data). Call again until ``done``."""
    # Locks the state row first: refreshes run one at a time (PostgreSQL: a row lock until
    # commit; SQLite: the write lock, taken before anything is read).
    locked = await session.execute(
        update(StatsRollupState).where(StatsRollupState.id == _STATE_ID).values(refreshed_at=now)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        # The row migration 0007 made is gone (tables emptied by hand): start afresh. A
        # concurrent refresh doing the same fails on the key and runs again later.
        session.add(StatsRollupState(id=_STATE_ID, refreshed_at=now))
        await session.flush()
    state = await _state(session)
    assert state is not None  # locked or made just above
    calendar = Calendar(zone)
    today = calendar.day_of(now)
    hours = await _take_log(session)
    rebuilt = state.zone != zone_name(zone) or state.first_day is None
    if rebuilt:
        for table in DAY_TABLES:
            await session.execute(delete(table))
        first = end = today
        recount: set[date] = set()
    else:
        first, end = state.first_day, state.end_day
        recount = {
            day for hour in hours for day in calendar.days_of_hour(hour) if first <= day < end
        }
    # Then cover more: the days since the last refresh first (the recent ones matter most),
    # then further back towards the first data.
    budget = max(days, 0)
    while end < today and budget:
        recount.add(end)
        end += ONE_DAY
        budget -= 1
    earliest = await _earliest(session)
    oldest = min(calendar.day_of(earliest), today) if earliest is not None else first
    while first > oldest and budget:
        first -= ONE_DAY
        recount.add(first)
        budget -= 1
    for day in sorted(recount):
        await _recount(session, calendar, day, fresh=rebuilt)
    await session.execute(
        update(StatsRollupState)
        .where(StatsRollupState.id == _STATE_ID)
        .values(zone=zone_name(zone), first_day=first, end_day=end)
    )
    return RollupStep(len(recount), first, end, rebuilt, end >= today and first <= oldest)


async def _take_log(session: AsyncSession) -> list[datetime]:
    """The hours logged so far, removing exactly the log rows read."""
    if session.get_bind().dialect.name == "postgresql":
        # One statement: the rows it deletes are the rows it returns. A row whose write has
        # not committed yet is not seen, so not deleted: it stays for the next refresh.
        taken = text(
            "WITH taken AS (DELETE FROM stats_stale RETURNING at) SELECT DISTINCT at FROM taken"
        ).columns(at=UTCDateTime())
        return list(await session.scalars(taken))
    # SQLite: this transaction holds the write lock, so no write can come in between.
    hours = list(await session.scalars(select(StatsStale.at).distinct()))
    await session.execute(delete(StatsStale))
    return hours


async def _earliest(session: AsyncSession) -> datetime | None:
    """The earliest time any counted row has (each from its own index)."""
    found = [
        await session.scalar(select(func.min(Survey.sent_at))),
        await session.scalar(select(func.min(Answer.created_at))),
        await session.scalar(select(func.min(Case.created_at))),
    ]
    present = [moment for moment in found if moment is not None]
    return min(present) if present else None


async def _recount(session: AsyncSession, calendar: Calendar, day: date, *, fresh: bool) -> None:
    """Replace ``day``'s rows in every roll-up table by counts of the raw rows."""
    start, end = calendar.midnight(day), calendar.midnight(day + ONE_DAY)
    if not fresh:
        for table in DAY_TABLES:
            await session.execute(delete(table).where(table.c.day == day))
    the_day = literal(day, Date)
    label = func.coalesce(Answer.sentiment_corrected, Answer.sentiment_label)
    statements: Iterable[object] = (
        insert(stats_daily_surveys).from_select(
            ["day", "location", "sent", "answered"],
            select(the_day, Survey.location, func.count(), func.count(Survey.answered_at))
            .where(Survey.sent_at >= start, Survey.sent_at < end)
            .group_by(Survey.location),
        ),
        insert(stats_daily_answers).from_select(
            ["day", "location", "scale", "score", "unsolicited", "label", "answers"],
            select(
                the_day,
                Answer.location,
                Answer.scale,
                Answer.score,
                Answer.unsolicited,
                label,
                func.count(),
            )
            .where(Answer.created_at >= start, Answer.created_at < end)
            .group_by(Answer.location, Answer.scale, Answer.score, Answer.unsolicited, label),
        ),
        insert(stats_daily_reasons).from_select(
            ["day", "location", "reason_id", "chips"],
            select(the_day, Answer.location, AnswerReason.reason_id, func.count())
            .join(Answer, Answer.id == AnswerReason.answer_id)
            .where(Answer.created_at >= start, Answer.created_at < end)
            .group_by(Answer.location, AnswerReason.reason_id),
        ),
        insert(stats_daily_cases).from_select(
            ["day", "location", "opened", "followups", "recovered"],
            select(
                the_day,
                Case.location,
                func.count(),
                func.count(Case.recovered),
                func.count().filter(Case.recovered.is_(True)),
            )
            .where(Case.created_at >= start, Case.created_at < end)
            .group_by(Case.location),
        ),
    )
    for statement in statements:
        await session.execute(statement)  # type: ignore[call-overload]
