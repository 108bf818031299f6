"""Service-level deadlines for cases, counted in plain time or in working time.

A case has two deadlines. The first response is plain elapsed time (``SLA_FIRST_RESPONSE``, 24h;
``SLA_CONTACT_REQUESTED``, 1h): `due_at(start, amount, None)`. The resolution is working time
(``SLA_RESOLUTION``, "3d" = three working days): `due_at(start, amount, working)`, where
``working`` is a `WorkingTime` built from ``WORKING_DAYS``, ``WORKING_HOURS`` and the business
time zone. `reminder_at` gives the moment a share (80 %) of the allowed time has passed, measured
the same way, for the reminder sent before a breach.

Everything here is pure: instants are passed in (never ``datetime.now()``), must be
timezone-aware (a naive datetime raises ValueError), and results are aware datetimes in UTC.

Working time
------------
- Working days are weekdays, 0 = Monday … 6 = Sunday. ``WORKING_DAYS`` takes English day names
  (``mon`` … ``sun``, or in full, any case) as a list, ranges or both: ``mon-fri``,
  ``mon,wed,fri``, ``mon-wed,fri``, ``mon-sun``. A range may wrap past Sunday, because working
  weeks such as ``sun-thu`` need it: ``fri-mon`` is Friday, Saturday, Sunday and Monday.
- Working hours are one span of the local day, the same on every working day:
  ``WORKING_HOURS=09:00-18:00``. Start and end are `datetime.time` values; an end of ``24:00``
  ("until midnight"; ``18:00-00:00`` reads the same) is stored as ``time(0)``, which is
  unambiguous because the end must otherwise come after the start: ``00:00-24:00`` is round
  the clock, a span that wraps midnight (``22:00-06:00``) is refused, and so is an empty one.
- A working period runs from the first moment the local clock shows the start to the first
  moment it shows the end, and is half-open: at 09:00 sharp it is working time, at 18:00 sharp
  it is not. A start or end skipped by a spring-forward change falls on the change itself; one
  repeated by a fall-back change is taken at its first occurrence. Working time is counted in
  real elapsed time, so a round-the-clock Sunday in March is 23 hours long and one in October 25.

Working amounts (`WorkingTime.add`)
-----------------------------------
An amount's whole days (``timedelta.days``) are working days and the rest are working hours:
``3d`` is three working days, ``4h`` four working hours, ``1d4h`` one working day and then four
working hours. `parse_sla_resolution` reads the setting so that the typed days are exactly the
timedelta's days (it refuses ``36h``, which a timedelta would store as 1 day 12 hours; write
``4d`` or ``1d12h``).

- Working hours: the earliest moment at which that much working time has passed since the
  start. A deadline that lands exactly on the close of business therefore stays there rather
  than moving to the next opening: 16:00 Friday + 2h = 18:00 Friday, not 09:00 Monday.
- Working days: counting starts at `next_working(start)`; the deadline is the same local clock
  time on the n-th following working day. When that is the very opening of a working period
  (counting started at an opening), the deadline is the close of the previous working period
  instead, which is the same point in working time: "by the end of the third working day".
  With working days all the same length, n working days equal n times the working day in
  working hours; on days whose length changes with daylight saving time, a day is still a day.

With mon-fri 09:00-18:00:

- opened Friday 17:30, 3d → Wednesday 17:30 (Monday, Tuesday, Wednesday at the same time);
- opened Saturday 11:00, 3d → counting starts Monday 09:00 → Wednesday 18:00 (the end of the
  third working day, not Thursday 09:00);
- opened Friday 16:00, 4h → two hours on Friday, two on Monday → Monday 11:00;
- opened Friday 18:00 (just closed), 1d → Monday 18:00.

Cost: the days part skips whole weeks arithmetically; the hours part and `elapsed` take one step
per calendar day crossed (a period at a time, never minute by minute), so "3d" is a handful of
steps and even ten years are a few thousand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bot.values import Duration, parse_duration, parse_time_zone

__all__ = [
    "DEFAULT_SLA_RESOLUTION",
    "DEFAULT_WORKING_DAYS",
    "DEFAULT_WORKING_HOURS",
    "REMINDER_SHARE",
    "WorkingTime",
    "due_at",
    "format_working_days",
    "format_working_hours",
    "parse_sla_resolution",
    "parse_working_days",
    "parse_working_hours",
    "reminder_at",
]

DEFAULT_WORKING_DAYS = "mon-fri"
DEFAULT_WORKING_HOURS = "09:00-18:00"
DEFAULT_SLA_RESOLUTION = "3d"
REMINDER_SHARE = 0.8

_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0)

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {
    name: number for names in (_DAY_NAMES, _FULL_NAMES) for number, name in enumerate(names)
}

_DAYS_HELP = (
    "must be weekdays such as mon-fri or mon,wed,fri (English day names; a range may wrap "
    "the week, e.g. sun-thu)"
)
_HOURS_HELP = (
    "must be HH:MM-HH:MM within one day, e.g. 09:00-18:00 (00:00-24:00 for round the clock)"
)
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_RESOLUTION_HELP = (
    "must be working time like 3d (working days), 4h (working hours) or 1d4h, more than 0"
)
_LEADING_DAYS = re.compile(r"\s*(\d+)\s*d", re.IGNORECASE)


# ------------------------------------------------------------------------------- parsers


def parse_working_days(value: object) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"sun-thu"``, ``"mon-sun"`` → weekday numbers (0 = Mon).

    Names are English, three letters or in full, any case; a range includes both ends and may
    wrap past Sunday (``fri-mon``); parts may overlap. An already parsed collection of numbers
    0-6 passes through, checked. Empty is refused.
    """
    if isinstance(value, frozenset | set | list | tuple):
        numbers = frozenset(value)
        if not numbers or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 6 for n in numbers
        ):
            raise ValueError(f"{_DAYS_HELP} (got {value!r})")
        return numbers
    if not isinstance(value, str):
        raise ValueError(_DAYS_HELP)
    text = value.strip().lower()
    if not text:
        raise ValueError(f"{_DAYS_HELP}; at least one day is needed (got {value!r})")
    days: set[int] = set()
    for part in text.split(","):
        ends = [_day_number(name, value) for name in part.split("-")]
        if len(ends) == 1:
            days.add(ends[0])
        elif len(ends) == 2:
            first, last = ends
            days.update((first + step) % 7 for step in range((last - first) % 7 + 1))
        else:
            raise ValueError(f"{_DAYS_HELP} (got {value!r})")
    return frozenset(days)


def _day_number(name: str, value: object) -> int:
    number = _DAY_NUMBERS.get(name.strip())
    if number is None:
        shown = name.strip()
        what = f"unknown day {shown!r}" if shown else "a day name is missing"
        raise ValueError(f"{_DAYS_HELP}; {what} (got {value!r})")
    return number


def format_working_days(days: Iterable[int]) -> str:
    """The short form `parse_working_days` reads back: mon-fri, mon,wed,fri, sun-thu, mon-sun."""
    chosen = frozenset(days)
    if len(chosen) == 7:
        return "mon-sun"
    # Begin where a run begins, in Monday-first order, so that sun-thu reads as typed.
    first = next(d for d in range(7) if d in chosen and (d - 1) % 7 not in chosen)
    parts: list[str] = []
    run: list[int] = []
    for step in range(8):
        day = (first + step) % 7
        if step < 7 and day in chosen:
            run.append(day)
            continue
        if run:
            name = _DAY_NAMES[run[0]]
            parts.append(name if len(run) == 1 else f"{name}-{_DAY_NAMES[run[-1]]}")
            run = []
    return ",".join(parts)


def parse_working_hours(value: object) -> tuple[time, time]:
    """``"09:00-18:00"`` → (time(9), time(18)); ``"00:00-24:00"`` → (time(0), time(0)).

    The span lies within one day: the end comes after the start, except that an end of 24:00
    (or 00:00, as in ``18:00-00:00``; stored as ``time(0)``) means midnight at the end of the
    day. ``00:00-00:00`` is refused as unclear; round the clock is ``00:00-24:00``. An already
    parsed pair of times passes through, checked.
    """
    if isinstance(value, tuple) and len(value) == 2:
        start, end = value
        if not isinstance(start, time) or not isinstance(end, time):
            raise ValueError(f"{_HOURS_HELP} (got {value!r})")
        _check_hours(start, end, f"{start:%H:%M}-{'24:00' if end == _MIDNIGHT else f'{end:%H:%M}'}")
        return start, end
    if not isinstance(value, str):
        raise ValueError(_HOURS_HELP)
    text = value.strip()
    match = _HOURS.fullmatch(text)
    if match is None:
        raise ValueError(f"{_HOURS_HELP} (got {value!r})")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
        raise ValueError(f"{_HOURS_HELP}; hours run 00-23 (24:00 only as the end) (got {value!r})")
    if (start_h, start_m, end_h, end_m) == (0, 0, 0, 0):
        raise ValueError(
            f"{_HOURS_HELP}; the end must come after the start (got {value!r}), "
            "write 00:00-24:00 for round the clock"
        )
    start, end = time(start_h, start_m), time(0 if end_h == 24 else end_h, end_m)
    _check_hours(start, end, text)
    return start, end


def _check_hours(start: time, end: time, shown: str) -> None:
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError(f"{_HOURS_HELP}; working hours are local times without a zone")
    if end == _MIDNIGHT:
        return
    if end == start:
        raise ValueError(f"{_HOURS_HELP}; the end must come after the start (got {shown!r})")
    if end < start:
        raise ValueError(f"{_HOURS_HELP}; working hours cannot run past midnight (got {shown!r})")


def format_working_hours(start: time, end: time) -> str:
    """The form `parse_working_hours` reads back: 09:00-18:00, 00:00-24:00."""
    return f"{start:%H:%M}-{'24:00' if end == _MIDNIGHT else f'{end:%H:%M}'}"


def parse_sla_resolution(value: object) -> Duration:
    """``"3d"``, ``"4h"``, ``"1d4h"`` → a Duration whose days are working days, the rest hours.

    The syntax is `bot.values.parse_duration`'s. Hours that add up to a day or more (``36h``)
    are refused rather than silently read as 1 working day and 12 working hours; 0 is refused
    because a case is never due the moment it opens.
    """
    try:
        amount = parse_duration(value)
    except ValueError as error:
        raise ValueError(f"{_RESOLUTION_HELP}: {error}") from None
    if not amount:
        raise ValueError(f"{_RESOLUTION_HELP} (got {value!r})")
    if isinstance(value, str):
        leading = _LEADING_DAYS.match(value)
        typed_days = int(leading.group(1)) if leading else 0
        if amount.days != typed_days:
            raise ValueError(
                f"{_RESOLUTION_HELP}; days count working days and hours working hours, so "
                f"hours must stay under 24h: write e.g. 4d or 1d12h (got {value!r})"
            )
    return amount


# ------------------------------------------------------------------------------- working time


def _utc(at: datetime, name: str) -> datetime:
    if not isinstance(at, datetime):
        raise ValueError(f"{name} must be a datetime (got {at!r})")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    return at.astimezone(UTC)


def _amount(amount: timedelta) -> timedelta:
    if not isinstance(amount, timedelta):
        raise ValueError(f"the amount must be a timedelta (got {amount!r})")
    if amount < timedelta(0):
        raise ValueError(f"the amount must not be negative (got {amount})")
    return amount


@dataclass(frozen=True)
class WorkingTime:
    """Working days and hours in a business time zone; see the module docstring for the rules.

    ``days``: weekday numbers, 0 = Monday … 6 = Sunday. ``start``/``end``: local wall-clock
    times with ``start < end``, or ``end == time(0)`` for 24:00 (so ``start == end == time(0)``
    is round the clock). ``zone``: the business time zone.
    """

    days: frozenset[int]
    start: time
    end: time
    zone: tzinfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", parse_working_days(self.days))
        parse_working_hours((self.start, self.end))
        if not isinstance(self.zone, tzinfo):
            raise ValueError(
                f"zone must be a tzinfo such as ZoneInfo('Europe/Berlin') (got {self.zone!r})"
            )

    @classmethod
    def parse(
        cls,
        days: str | Iterable[int],
        hours: str | tuple[time, time],
        zone: tzinfo | str,
    ) -> WorkingTime:
        """From the setting texts, e.g. ``parse("mon-fri", "09:00-18:00", ZoneInfo("UTC"))``."""
        start, end = parse_working_hours(hours)
        if isinstance(zone, str):
            zone = ZoneInfo(parse_time_zone(zone))
        return cls(parse_working_days(days), start, end, zone)

    def __str__(self) -> str:
        hours = format_working_hours(self.start, self.end)
        return f"{format_working_days(self.days)} {hours} {self.zone}"

    @property
    def round_the_clock(self) -> bool:
        """Whether every moment of a working day is working time (00:00-24:00)."""
        return self.start == _MIDNIGHT and self.end == _MIDNIGHT

    # -- public operations

    def is_working(self, at: datetime) -> bool:
        """Whether ``at`` falls in working time (start inclusive, end exclusive)."""
        at = _utc(at, "at")
        _, opens, _ = next(self._periods(at))
        return opens <= at

    def next_working(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if it is working time, else the start of the next period."""
        at = _utc(at, "at")
        _, opens, _ = next(self._periods(at))
        return max(opens, at)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """``start`` plus ``amount`` of working time: its days as working days, the rest hours."""
        start = _utc(start, "start")
        amount = _amount(amount)
        days, hours = amount.days, amount - timedelta(days=amount.days)
        if not days:
            return self._advance(start, hours)
        day, opens, _ = next(self._periods(start))
        first = max(opens, start)
        wall = first.astimezone(self.zone).replace(tzinfo=None).time()
        target_day = self._working_day_after(day, days)
        period = self._period(target_day)
        if period is None:  # swallowed by a spring-forward change: as if at its opening
            target = self._previous_close(target_day)
        else:
            # Clamped into the period: a wall time repeated by a fall-back change may lie
            # outside it. At the very opening, the previous close is the same working moment.
            opens, closes = period
            target = min(max(self._instant(target_day, wall), opens), closes)
            if target == opens:
                target = self._previous_close(target_day)
        return self._advance(target, hours)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end``; negative when ``end`` comes first."""
        start, end = _utc(start, "start"), _utc(end, "end")
        if end < start:
            return -self.elapsed(end, start)
        total = timedelta(0)
        for _, opens, closes in self._periods(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total

    # -- internals (all instants in UTC)

    def _advance(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant by which ``amount`` of working time has passed since ``start``."""
        if not amount:
            return start
        remaining = amount
        for _, opens, closes in self._periods(start):
            opens = max(opens, start)
            if closes - opens >= remaining:
                return opens + remaining
            remaining -= closes - opens
        raise AssertionError("unreachable: working periods never run out")  # pragma: no cover

    def _instant(self, day: date, wall: time) -> datetime:
        """The first instant at which the local clock shows ``wall`` on ``day``, or later."""
        local = datetime.combine(day, wall)
        first = local.replace(tzinfo=self.zone).astimezone(UTC)  # fold=0: first occurrence
        if first.astimezone(self.zone).replace(tzinfo=None) == local:
            return first
        # Skipped by a spring-forward change: the answer is the change itself, which lies
        # between the readings with the offsets before and after it. Find it to the second.
        other = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        low, high = min(first, other), max(first, other)
        after = high.astimezone(self.zone).utcoffset()
        while high - low > timedelta(seconds=1):
            middle = (low + (high - low) / 2).replace(microsecond=0)
            if middle.astimezone(self.zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return high

    def _period(self, day: date) -> tuple[datetime, datetime] | None:
        """The working period of ``day`` as (opens, closes); None on a day without one."""
        if day.weekday() not in self.days:
            return None
        opens = self._instant(day, self.start)
        if self.end == _MIDNIGHT:
            closes = self._instant(day + _ONE_DAY, _MIDNIGHT)
        else:
            closes = self._instant(day, self.end)
        # Empty only when a spring-forward change swallows the whole of the working hours.
        return (opens, closes) if closes > opens else None

    def _periods(self, at: datetime) -> Iterator[tuple[date, datetime, datetime]]:
        """Non-empty working periods in order, from the one containing ``at`` or the next."""
        # A period of an earlier local date ends no later than the local midnight before the
        # day before ``at``'s local date, which ``at`` is past (even when clocks go back).
        day = at.astimezone(self.zone).date() - _ONE_DAY
        while True:
            period = self._period(day)
            if period is not None and period[1] > at:
                yield day, *period
            day += _ONE_DAY

    def _working_day_after(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (count ≥ 1), skipping whole weeks."""
        weeks, rest = divmod(count - 1, len(self.days))
        day += timedelta(weeks=weeks)
        rest += 1
        while rest:
            day += _ONE_DAY
            if day.weekday() in self.days:
                rest -= 1
        return day

    def _previous_close(self, day: date) -> datetime:
        """The close of the last non-empty working period before ``day``."""
        for back in range(1, 15):
            period = self._period(day - timedelta(days=back))
            if period is not None:
                return period[1]
        raise AssertionError("unreachable: a week always has a working period")  # pragma: no cover


# ------------------------------------------------------------------------------- deadlines


def due_at(start: datetime, amount: timedelta, working: WorkingTime | None) -> datetime:
    """When ``amount`` is up: plain elapsed time without ``working``, else working time (UTC)."""
    if working is not None:
        return working.add(start, amount)
    return _utc(start, "start") + _amount(amount)


def reminder_at(
    start: datetime,
    due: datetime,
    working: WorkingTime | None,
    share: float = REMINDER_SHARE,
) -> datetime:
    """The moment ``share`` (80 %) of the time from ``start`` to ``due`` has passed (UTC).

    Measured like `due_at`: in plain time without ``working``, else in working time, so a
    reminder never falls at night or on a weekend when the deadline does not.
    """
    start, due = _utc(start, "start"), _utc(due, "due")
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1 (got {share!r})")
    if due < start:
        raise ValueError(
            f"due ({due.isoformat()}) must not come before start ({start.isoformat()})"
        )
    if working is None:
        return start + (due - start) * share
    return working._advance(start, working.elapsed(start, due) * share)
