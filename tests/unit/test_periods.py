"""Periods as managers type them after /stats and /export: calendar words are local days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.periods import Period, PeriodError, looks_like_period, parse_period

BERLIN = ZoneInfo("Europe/Berlin")
# A Monday morning in Berlin (UTC+1 in November).
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def local(period: Period) -> tuple[str, str]:
    return (
        period.start.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M"),
        period.end.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M"),
    )


def test_nothing_means_the_last_30_days_up_to_now() -> None:
    period = parse_period(None, NOW, BERLIN)
    assert period.end == NOW
    assert period.length == timedelta(days=30)
    assert period.label == "the last 30 days"
    assert parse_period("  ", NOW, BERLIN) == period


@pytest.mark.parametrize(
    ("text", "back", "label"),
    [
        ("7d", timedelta(days=7), "the last 7 days"),
        ("1d", timedelta(days=1), "the last day"),
        ("4w", timedelta(weeks=4), "the last 4 weeks"),
        ("2 weeks", timedelta(weeks=2), "the last 2 weeks"),
        ("1y", timedelta(days=365), "the last year"),
    ],
)
def test_relative_periods_end_now(text: str, back: timedelta, label: str) -> None:
    period = parse_period(text, NOW, BERLIN)
    assert (period.start, period.end, period.label) == (NOW - back, NOW, label)


def test_months_back_are_calendar_months() -> None:
    period = parse_period("3m", NOW, BERLIN)
    assert period.start.astimezone(BERLIN).date().isoformat() == "2026-08-23"
    assert period.label == "the last 3 months"


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("today", "2026-11-23 00:00", "2026-11-24 00:00", "today"),
        ("Yesterday", "2026-11-22 00:00", "2026-11-23 00:00", "yesterday"),
        ("week", "2026-11-23 00:00", "2026-11-24 00:00", "this week"),
        ("lastweek", "2026-11-16 00:00", "2026-11-23 00:00", "the week of 16 Nov 2026"),
        ("month", "2026-11-01 00:00", "2026-11-24 00:00", "November 2026 so far"),
        ("lastmonth", "2026-10-01 00:00", "2026-11-01 00:00", "October 2026"),
        ("2026-11", "2026-11-01 00:00", "2026-12-01 00:00", "November 2026"),
        ("2026-11-05", "2026-11-05 00:00", "2026-11-06 00:00", "5 Nov 2026"),
        (
            "2026-11-01..2026-11-20",
            "2026-11-01 00:00",
            "2026-11-21 00:00",
            "1 Nov 2026 – 20 Nov 2026",
        ),
        ("2025", "2025-01-01 00:00", "2026-01-01 00:00", "2025"),
    ],
)
def test_calendar_periods_are_whole_local_days(text: str, start: str, end: str, label: str) -> None:
    period = parse_period(text, NOW, BERLIN)
    assert local(period) == (start, end)
    assert period.label == label


def test_a_local_day_when_the_clocks_go_back_is_25_hours() -> None:
    # Berlin moved its clocks back on 25 Oct 2026.
    period = parse_period("2026-10-25", NOW, BERLIN)
    assert period.length == timedelta(hours=25)
    assert NOW not in period and period.start in period


def test_all_reaches_back_before_any_feedback() -> None:
    period = parse_period("all", NOW, BERLIN)
    assert period.start.year == 2000 and period.end == NOW


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("bogus", "is not a period I know. Try one of: 7d"),
        ("Downtown", "is not a period I know"),
        ("0d", "is no time at all"),
        ("9999d", "more than ten years"),
        ("2026-02-30", "a date that does not exist"),
        ("2026-13", "a date that does not exist"),
        ("2026-11-20..2026-11-01", "ends before it starts"),
        ("1999", "not a year"),
    ],
)
def test_what_is_not_a_period_is_refused_with_what_is(text: str, says: str) -> None:
    with pytest.raises(PeriodError, match=says):
        parse_period(text, NOW, BERLIN)


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_period("7d", NOW.replace(tzinfo=None), BERLIN)


@pytest.mark.parametrize("word", ["7d", "week", "2026-11", "all", "LASTMONTH"])
def test_periods_are_told_apart_from_locations(word: str) -> None:
    assert looks_like_period(word)


@pytest.mark.parametrize("word", ["Downtown", "Airport", "7 Dials", "北京"])
def test_locations_are_not_periods(word: str) -> None:
    assert not looks_like_period(word)
