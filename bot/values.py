"""Parsers for the values people type into settings: durations, quiet hours, yes/no, time zones.

The same text arrives from two places — environment variables read by `bot.settings`, and (later)
an admin's `/set NAME value` in chat — so the parsing and the error messages live here, once.
Every parser is pure, takes the raw text (an already parsed value passes through, checked), and
either returns a typed value or raises ValueError with a message that says what is allowed,
phrased to be shown to a shop owner as it is ("must be a duration like 2h, 30m or 30d, or 0
(got '2 hours')").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Duration",
    "QuietHours",
    "format_duration",
    "parse_bool",
    "parse_duration",
    "parse_quiet_hours",
    "parse_time_zone",
]

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

# Units in falling order, each at most once, so "1h30m" reads one way only ("30m1h" is refused).
_DURATION = re.compile(
    r"(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?",
    re.IGNORECASE,
)

# timedelta's own ceiling is ~2.7 million years; a setting beyond ten years is a typo, and refusing
# it here keeps arithmetic such as `sent_at + expiry` from overflowing a datetime.
_LONGEST = timedelta(days=3650)

_DURATION_HELP = "must be a duration like 2h, 30m or 30d, or 0"


class Duration(timedelta):
    """A timedelta that prints the way it is typed (``2h``, ``30d``), e.g. in `hearback config`.

    Arithmetic gives plain timedeltas and datetimes as usual; only the text form differs.
    """

    def __str__(self) -> str:
        return format_duration(self)

    @classmethod
    def of(cls, value: timedelta) -> Duration:
        return cls(days=value.days, seconds=value.seconds, microseconds=value.microseconds)


def parse_duration(value: object) -> Duration:
    """``"2h"``, ``"30d"``, ``"90m"``, ``"45s"``, ``"1h30m"``, ``"1d 12h"``, ``"0"`` → Duration.

    Whole units only, no sign, no fractions: a bare number other than 0 is refused, because
    "30" could mean seconds, minutes or days and a wrong guess would silently misbehave.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        if value > _LONGEST:
            raise ValueError("must be at most 3650d")
        return Duration.of(value)
    if not isinstance(value, str):
        raise ValueError(_DURATION_HELP)
    text = value.strip()
    if text == "0":
        return Duration(0)
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groupdict().values()):
        hint = "; a number needs a unit: d, h, m or s" if text.isdigit() else ""
        raise ValueError(f"{_DURATION_HELP}{hint} (got {value!r})")
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount
    )
    if seconds > _LONGEST.total_seconds():
        raise ValueError(f"must be at most 3650d (got {value!r})")
    return Duration(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text that `parse_duration` reads back as ``value``: 2h, 1h30m, 30d, 0.

    Fractions of a second (which `parse_duration` never produces) are shown as decimals, so a
    value computed elsewhere still prints truthfully rather than raising.
    """
    if value < timedelta(0):
        return "-" + format_duration(-value)
    whole = int(value.total_seconds())
    fraction = value - timedelta(seconds=whole)
    if whole == 0 and not fraction:
        return "0"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        amount, whole = divmod(whole, size)
        if unit == "s" and fraction:
            seconds = amount + fraction.total_seconds()
            parts.append(f"{seconds:.6f}".rstrip("0") + "s")
        elif amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


@dataclass(frozen=True)
class QuietHours:
    """Hours of the local day in which customers are not messaged; may wrap past midnight.

    ``start`` is the first quiet minute and ``end`` the first allowed one again, so 21:00-09:00
    means 21:00:00 up to 08:59:59 are quiet. Both None means no quiet hours at all.
    """

    start: time | None = None
    end: time | None = None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise ValueError("quiet hours need both a start and an end, or neither")
        for edge in (self.start, self.end):
            if edge is not None and (edge.second or edge.microsecond or edge.tzinfo):
                raise ValueError("quiet hours start and end on whole minutes of local time")
        if self.start is not None and self.start == self.end:
            raise ValueError(
                f"start and end must differ (got {self}); leave it empty for no quiet hours"
            )

    @classmethod
    def off(cls) -> QuietHours:
        return cls()

    @property
    def enabled(self) -> bool:
        return self.start is not None

    @property
    def wraps_midnight(self) -> bool:
        return self.start is not None and self.end is not None and self.start > self.end

    def __contains__(self, moment: time) -> bool:
        """Whether the local wall-clock time ``moment`` is quiet."""
        if self.start is None or self.end is None:
            return False
        moment = moment.replace(tzinfo=None)
        if self.wraps_midnight:
            return moment >= self.start or moment < self.end
        return self.start <= moment < self.end

    def __str__(self) -> str:
        """The form `parse_quiet_hours` reads: ``21:00-09:00``, or empty when off."""
        if self.start is None or self.end is None:
            return ""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


_QUIET_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_QUIET_HELP = "must be quiet hours like 21:00-09:00 (from-until, 24-hour clock), or empty for none"


def parse_quiet_hours(value: object) -> QuietHours:
    """``"21:00-09:00"`` → QuietHours (wrapping midnight is fine); ``""`` → no quiet hours.

    ``24:00`` is accepted as an end ("until midnight") and means 00:00. Equal start and end is
    refused: it could mean "always quiet" (no survey ever sent) or "never", and both are better
    said another way.
    """
    if isinstance(value, QuietHours):
        return value
    if not isinstance(value, str):
        raise ValueError(_QUIET_HELP)
    text = value.strip()
    if not text:
        return QuietHours.off()
    match = _QUIET_HOURS.fullmatch(text)
    if match is None:
        raise ValueError(f"{_QUIET_HELP} (got {value!r})")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if end_h == 24 and end_m == 0:
        end_h = 0
    if start_h > 23 or end_h > 23 or start_m > 59 or end_m > 59:
        raise ValueError(f"hours run 00-23 and minutes 00-59 (got {value!r})")
    start, end = time(start_h, start_m), time(end_h, end_m)
    if start == end:
        raise ValueError(
            f"start and end must differ (got {value.strip()!r}); leave it empty for no quiet hours"
        )
    return QuietHours(start, end)


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklySlot:
    """A moment of the week in local time, e.g. Monday 09:00: when something weekly is sent."""

    weekday: int  # 0 Monday … 6 Sunday, as datetime.weekday()
    at: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday runs 0 (Monday) to 6 (Sunday)")
        if self.at.second or self.at.microsecond or self.at.tzinfo:
            raise ValueError("a weekly slot starts on a whole minute of local time")

    def __str__(self) -> str:
        """The form `parse_weekly_slot` reads: ``mon 09:00``."""
        return f"{_DAY_NAMES[self.weekday]} {self.at:%H:%M}"


_WEEKLY_SLOT = re.compile(r"([a-z]+)\s*(\d{1,2}):(\d{2})")
_WEEKLY_HELP = "must be a day and a time like mon 09:00 (24-hour clock), or off"


def parse_weekly_slot(value: object) -> WeeklySlot | None:
    """``"mon 09:00"`` (or ``monday 9:00``) → WeeklySlot; ``""``/``off``/``none`` → None."""
    if value is None or isinstance(value, WeeklySlot):
        return value
    if not isinstance(value, str):
        raise ValueError(_WEEKLY_HELP)
    text = value.strip().lower()
    if text in {"", "off", "none", "no", "false", "-"}:
        return None
    match = _WEEKLY_SLOT.fullmatch(text)
    if match is None:
        raise ValueError(f"{_WEEKLY_HELP} (got {value!r})")
    day, hour, minute = match[1], int(match[2]), int(match[3])
    weekday = next(
        (i for i, name in enumerate(_DAY_NAMES) if len(day) >= 3 and day.startswith(name)), None
    )
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if weekday is None or not full[weekday].startswith(day):
        raise ValueError(
            f"{_WEEKLY_HELP}; days are mon, tue, wed, thu, fri, sat, sun (got {value!r})"
        )
    if hour > 23 or minute > 59:
        raise ValueError(f"hours run 00-23 and minutes 00-59 (got {value!r})")
    return WeeklySlot(weekday, time(hour, minute))


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(value: object) -> bool:
    """yes/no, true/false, on/off, 1/0 (any case) → bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be true or false (also yes/no, on/off, 1/0) (got {value!r})")


def parse_time_zone(value: object) -> str:
    """An IANA time zone name, checked against the zone database; returned stripped."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"must be an IANA time zone such as Europe/Berlin or UTC (got {value!r})"
        ) from None
    return text
