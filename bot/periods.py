"""Periods of time as a manager types them: `/stats 7d`, `/export 2026-11`, `/stats lastweek`.

A `Period` is half-open, [start, end), in UTC, with calendar words (today, this week, a month)
read in the business's time zone, so "yesterday" in Berlin is Berlin's yesterday. Nothing here
reads the clock: `now` is passed in.

Accepted forms (case and surrounding spaces do not matter):

- nothing: the last 30 days (`DEFAULT`);
- ``7d``, ``4w``, ``3m`` (months), ``1y``: that much time back from now, ending now;
- ``today``, ``yesterday``, ``week`` (this calendar week, from Monday), ``lastweek``,
  ``month`` (this calendar month), ``lastmonth``, ``year`` (this calendar year);
- ``2026-11`` (a calendar month), ``2026-11-05`` (a day), ``2026`` (a year);
- ``2026-11-01..2026-11-20`` (both days included);
- ``all``: everything ever recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["DEFAULT", "EXAMPLES", "Period", "PeriodError", "looks_like_period", "parse_period"]

DEFAULT = "30d"
EXAMPLES = "7d, 4w, 3m, today, yesterday, week, lastweek, month, lastmonth, year, all, 2026-11, "
EXAMPLES += "2026-11-05 or 2026-11-01..2026-11-20"

# The earliest instant `all` means: before any feedback Hearback could have recorded.
_BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
# How far back a relative period may reach: beyond this a typo ("9999d") is more likely.
_MAX_DAYS = 3660

_RELATIVE = re.compile(r"(\d{1,4})\s*(d|days?|w|weeks?|m|mo|months?|y|years?)")
_DAY = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_RANGE = re.compile(rf"{_DAY}\s*(?:\.\.|–|—|to)\s*{_DAY}")
_ONE_DAY = re.compile(_DAY)
_MONTH = re.compile(r"(\d{4})-(\d{1,2})")
_YEAR = re.compile(r"(\d{4})")


class PeriodError(ValueError):
    """Text that is not a period; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC, and how to name it to a person (``label``)."""

    start: datetime
    end: datetime
    label: str

    def __post_init__(self) -> None:
        for edge in (self.start, self.end):
            if edge.tzinfo is None:
                raise ValueError("a period's edges are timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"a period ends after it starts ({self.start} .. {self.end})")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def looks_like_period(word: str) -> bool:
    """Whether ``word`` is meant as a period (so `/stats 7d Downtown` splits right)."""
    try:
        parse_period(word, datetime(2026, 1, 1, tzinfo=UTC), UTC)
    except PeriodError:
        return False
    return True


def parse_period(text: str | None, now: datetime, zone: tzinfo) -> Period:
    """The period ``text`` names, as seen at ``now`` in ``zone``; see the module for the forms."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    raw = (text or "").strip()
    word = raw.lower().replace(" ", "") or DEFAULT
    local_now = now.astimezone(zone)
    today = local_now.date()

    def days(first: date, after_last: date, label: str) -> Period:
        start = _midnight(first, zone)
        end = _midnight(after_last, zone)
        if start >= end:
            raise PeriodError(f"{raw!r} ends before it starts: name the earlier day first")
        return Period(start.astimezone(UTC), end.astimezone(UTC), label)

    if match := _RELATIVE.fullmatch(word):
        count, unit = int(match[1]), match[2][0]
        if count == 0:
            raise PeriodError(f"{raw!r} is no time at all: try {DEFAULT}")
        if unit == "m":
            first = _add_months(today, -count)
            back = _midnight(today, zone) - _midnight(first, zone)
        else:
            back = timedelta(days=count * {"d": 1, "w": 7, "y": 365}[unit])
        if back > timedelta(days=_MAX_DAYS):
            raise PeriodError(f"{raw!r} reaches back more than ten years: use all instead")
        unit_name = {"d": "day", "w": "week", "m": "month", "y": "year"}[unit]
        label = f"the last {unit_name}" if count == 1 else f"the last {count} {unit_name}s"
        return Period(now - back, now, label)
    if word == "today":
        return days(today, today + timedelta(days=1), "today")
    if word == "yesterday":
        return days(today - timedelta(days=1), today, "yesterday")
    monday = today - timedelta(days=today.weekday())
    if word in {"week", "thisweek"}:
        return days(monday, today + timedelta(days=1), "this week")
    if word in {"lastweek", "last-week", "last_week"}:
        return days(
            monday - timedelta(days=7), monday, f"the week of {_day(monday - timedelta(7))}"
        )
    first_of_month = today.replace(day=1)
    if word in {"month", "thismonth"}:
        return days(first_of_month, today + timedelta(days=1), f"{today:%B %Y} so far")
    if word in {"lastmonth", "last-month", "last_month"}:
        previous = _add_months(first_of_month, -1)
        return days(previous, first_of_month, f"{previous:%B %Y}")
    if word in {"year", "thisyear"}:
        return days(date(today.year, 1, 1), today + timedelta(days=1), f"{today.year} so far")
    if word == "all":
        return Period(_BEGINNING, max(now, _BEGINNING + timedelta(seconds=1)), "all time")
    if match := _RANGE.fullmatch(word):
        first = _date(raw, *match.groups()[:3])
        last = _date(raw, *match.groups()[3:])
        return days(first, last + timedelta(days=1), f"{_day(first)} – {_day(last)}")
    if match := _ONE_DAY.fullmatch(word):
        day = _date(raw, *match.groups())
        return days(day, day + timedelta(days=1), _day(day))
    if match := _MONTH.fullmatch(word):
        first = _date(raw, match[1], match[2], "1")
        return days(first, _add_months(first, 1), f"{first:%B %Y}")
    if match := _YEAR.fullmatch(word):
        year = int(match[1])
        if not 2000 <= year <= 9998:
            raise PeriodError(f"{raw!r} is not a year Hearback has figures for")
        return days(date(year, 1, 1), date(year + 1, 1, 1), str(year))
    raise PeriodError(f"{raw!r} is not a period I know. Try one of: {EXAMPLES}.")


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def _date(raw: str, year: str, month: str, day: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise PeriodError(f"{raw!r} has a date that does not exist (write 2026-11-05)") from None


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    # The 31st of a shorter month becomes its last day.
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
