"""Service-level deadlines: working days and hours, parsed once, and deadlines counted in them.

Beside the worked examples, `WorkingTime` is checked against a brute-force reference that
walks time in small steps and asks the local wall clock at each one, over many seeded random
working weeks, zones (with and without daylight saving time), starts and amounts.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.sla import (
    DEFAULT_SLA_RESOLUTION,
    DEFAULT_WORKING_DAYS,
    DEFAULT_WORKING_HOURS,
    WorkingTime,
    due_at,
    format_working_days,
    format_working_hours,
    parse_sla_resolution,
    parse_working_days,
    parse_working_hours,
    reminder_at,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def office() -> WorkingTime:
    return WorkingTime.parse(DEFAULT_WORKING_DAYS, DEFAULT_WORKING_HOURS, BERLIN)


# 2026-01-09 is a Friday; no clock change anywhere near.
FRIDAY, SATURDAY, MONDAY, TUESDAY, WEDNESDAY = 9, 10, 12, 13, 14

# ------------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon-sat", {0, 1, 2, 3, 4, 5}),
        ("mon,wed,fri", {0, 2, 4}),
        ("sun-thu", {6, 0, 1, 2, 3}),
        ("fri-mon", {4, 5, 6, 0}),
        ("mon-sun", set(range(7))),
        ("sun-sat", set(range(7))),
        ("  MON - Fri ", {0, 1, 2, 3, 4}),
        ("Monday-Friday", {0, 1, 2, 3, 4}),
        ("mon-wed, fri", {0, 1, 2, 4}),
        ("sat", {5}),
        ("wed-wed", {2}),
        ("mon-thu,tue-fri", {0, 1, 2, 3, 4}),
    ],
)
def test_working_days_are_read(text: str, expected: set[int]) -> None:
    assert parse_working_days(text) == frozenset(expected)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "mon-", "-fri", "mon,,fri", "monday-fryday", "1-5", "mon-wed-fri", "weekdays"],
)
def test_bad_working_days_say_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="must be weekdays such as mon-fri or mon,wed,fri"):
        parse_working_days(text)


def test_working_days_pass_through_checked() -> None:
    assert parse_working_days(frozenset({0, 6})) == frozenset({0, 6})
    assert parse_working_days([1, 2]) == frozenset({1, 2})
    for bad in (frozenset(), {7}, [-1], [True], 5):
        with pytest.raises(ValueError, match="must be weekdays"):
            parse_working_days(bad)


@pytest.mark.parametrize(
    "text", ["mon-fri", "mon,wed,fri", "sun-thu", "fri-mon", "mon-sun", "sat", "mon-wed,fri-sat"]
)
def test_working_days_print_the_way_they_are_typed(text: str) -> None:
    assert format_working_days(parse_working_days(text)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-18:00", (time(9), time(18))),
        ("9:30 - 17:45", (time(9, 30), time(17, 45))),
        ("00:00-24:00", (time(0), time(0))),
        ("18:00-24:00", (time(18), time(0))),
        ("00:00-00:01", (time(0), time(0, 1))),
        ("23:59-24:00", (time(23, 59), time(0))),
        ("18:00-00:00", (time(18), time(0))),
    ],
)
def test_working_hours_are_read(text: str, expected: tuple[time, time]) -> None:
    assert parse_working_hours(text) == expected
    typed = text.replace(" ", "").replace("9:30", "09:30").replace("-00:00", "-24:00")
    assert format_working_hours(*expected) == typed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("22:00-06:00", "cannot run past midnight"),
        ("18:00-09:00", "cannot run past midnight"),
        ("09:00-09:00", "the end must come after the start"),
        ("00:00-00:00", "the end must come after the start"),
        ("24:00-24:00", "hours run 00-23"),
        ("09:00-24:30", "hours run 00-23"),
        ("09:00-25:00", "hours run 00-23"),
        ("09:60-18:00", "hours run 00-23"),
        ("9-18", ""),
        ("", ""),
        ("09:00", ""),
        ("nine to five", ""),
    ],
)
def test_bad_working_hours_say_what_is_allowed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"must be HH:MM-HH:MM within one day, e\.g\. 09:00") as e:
        parse_working_hours(text)
    assert reason in str(e.value)


def test_working_hours_pass_through_checked() -> None:
    assert parse_working_hours((time(8), time(0))) == (time(8), time(0))
    with pytest.raises(ValueError, match="cannot run past midnight"):
        parse_working_hours((time(22), time(6)))
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_working_hours(("09:00", "18:00"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("4h", timedelta(hours=4)),
        ("1d4h", timedelta(days=1, hours=4)),
        ("23h59m", timedelta(hours=23, minutes=59)),
        ("2D 3H", timedelta(days=2, hours=3)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_sla_resolution_keeps_typed_days_and_hours_apart(text: str, expected: timedelta) -> None:
    assert parse_sla_resolution(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("36h", "write e.g. 4d or 1d12h"),
        ("24h", "write e.g. 4d or 1d12h"),
        ("1d30h", "write e.g. 4d or 1d12h"),
        ("0", "more than 0"),
        ("0d", "more than 0"),
        ("3", "a number needs a unit"),
        ("3 days", "must be a duration like"),
        ("", "must be a duration like"),
    ],
)
def test_bad_sla_resolution_says_what_is_allowed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="must be working time like 3d") as e:
        parse_sla_resolution(text)
    assert reason in str(e.value)


def test_defaults_parse() -> None:
    working = office()
    assert working.days == frozenset(range(5))
    assert (working.start, working.end) == (time(9), time(18))
    assert parse_sla_resolution(DEFAULT_SLA_RESOLUTION) == timedelta(days=3)
    assert str(working) == "mon-fri 09:00-18:00 Europe/Berlin"


def test_working_time_checks_itself() -> None:
    assert WorkingTime.parse("mon", "00:00-24:00", "UTC").round_the_clock
    assert not office().round_the_clock
    with pytest.raises(ValueError, match="must be weekdays"):
        WorkingTime(frozenset(), time(9), time(18), UTC)
    with pytest.raises(ValueError, match="cannot run past midnight"):
        WorkingTime(frozenset({0}), time(22), time(6), UTC)
    with pytest.raises(ValueError, match="IANA time zone"):
        WorkingTime.parse("mon-fri", "09:00-18:00", "Mars/Olympus")
    with pytest.raises(ValueError, match="zone must be a tzinfo"):
        WorkingTime(frozenset({0}), time(9), time(18), "UTC")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- edges


def test_is_working_at_the_edges() -> None:
    working = office()
    assert working.is_working(berlin(2026, 1, FRIDAY, 9, 0))
    assert not working.is_working(berlin(2026, 1, FRIDAY, 8, 59, 59, 999999))
    assert working.is_working(berlin(2026, 1, FRIDAY, 17, 59, 59, 999999))
    assert not working.is_working(berlin(2026, 1, FRIDAY, 18, 0))
    assert not working.is_working(berlin(2026, 1, SATURDAY, 12, 0))
    assert not working.is_working(berlin(2026, 1, MONDAY, 0, 0))
    # The same instant written in another zone: 08:30 UTC is 09:30 in Berlin.
    assert working.is_working(datetime(2026, 1, FRIDAY, 8, 30, tzinfo=UTC))
    assert not working.is_working(datetime(2026, 1, FRIDAY, 17, 30, tzinfo=UTC))


def test_next_working_at_the_edges() -> None:
    working = office()
    opening = berlin(2026, 1, MONDAY, 9, 0)
    assert working.next_working(berlin(2026, 1, FRIDAY, 18, 0)) == opening
    assert working.next_working(berlin(2026, 1, SATURDAY, 11, 0)) == opening
    assert working.next_working(opening) == opening
    assert working.next_working(berlin(2026, 1, MONDAY, 8, 59)) == opening
    during = berlin(2026, 1, FRIDAY, 17, 59)
    assert working.next_working(during) == during
    assert working.next_working(during).tzinfo is UTC
    assert working.next_working(berlin(2026, 1, FRIDAY, 7, 0)) == berlin(2026, 1, FRIDAY, 9, 0)


# ------------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(
    ("opened", "amount", "due"),
    [
        # Three working days at the same time of day.
        (berlin(2026, 1, FRIDAY, 17, 30), "3d", berlin(2026, 1, WEDNESDAY, 17, 30)),
        # Counting starts Monday 09:00: by the end of the third working day.
        (berlin(2026, 1, SATURDAY, 11, 0), "3d", berlin(2026, 1, WEDNESDAY, 18, 0)),
        (berlin(2026, 1, MONDAY, 9, 0), "3d", berlin(2026, 1, WEDNESDAY, 18, 0)),
        (berlin(2026, 1, MONDAY, 8, 0), "1d", berlin(2026, 1, MONDAY, 18, 0)),
        (berlin(2026, 1, FRIDAY, 18, 0), "1d", berlin(2026, 1, MONDAY, 18, 0)),
        # Two hours on Friday, two on Monday.
        (berlin(2026, 1, FRIDAY, 16, 0), "4h", berlin(2026, 1, MONDAY, 11, 0)),
        # Exactly at the close stays at the close.
        (berlin(2026, 1, FRIDAY, 16, 0), "2h", berlin(2026, 1, FRIDAY, 18, 0)),
        (berlin(2026, 1, FRIDAY, 16, 0), "2h1m", berlin(2026, 1, MONDAY, 9, 1)),
        (berlin(2026, 1, FRIDAY, 17, 30), "1d4h", berlin(2026, 1, TUESDAY, 12, 30)),
        (berlin(2026, 1, SATURDAY, 11, 0), "9h", berlin(2026, 1, MONDAY, 18, 0)),
        (berlin(2026, 1, SATURDAY, 11, 0), "10h", berlin(2026, 1, TUESDAY, 10, 0)),
        # Five working days are one calendar week.
        (berlin(2026, 1, WEDNESDAY, 10, 15), "5d", berlin(2026, 1, WEDNESDAY + 7, 10, 15)),
        (berlin(2026, 1, WEDNESDAY, 10, 15), "10d", berlin(2026, 1, WEDNESDAY + 14, 10, 15)),
        (berlin(2026, 1, WEDNESDAY, 10, 15), "0", berlin(2026, 1, WEDNESDAY, 10, 15)),
    ],
)
def test_resolution_deadlines(opened: datetime, amount: str, due: datetime) -> None:
    working = office()
    result = due_at(
        opened, parse_sla_resolution(amount) if amount != "0" else timedelta(0), working
    )
    assert result == due
    assert result.tzinfo is UTC


def test_elapsed_counts_only_working_time() -> None:
    working = office()
    assert working.elapsed(berlin(2026, 1, SATURDAY, 11, 0), berlin(2026, 1, WEDNESDAY, 18)) == (
        timedelta(hours=27)
    )
    assert working.elapsed(berlin(2026, 1, FRIDAY, 17, 30), berlin(2026, 1, WEDNESDAY, 17, 30)) == (
        timedelta(hours=27)
    )
    assert working.elapsed(berlin(2026, 1, FRIDAY, 16), berlin(2026, 1, MONDAY, 11)) == timedelta(
        hours=4
    )
    assert working.elapsed(berlin(2026, 1, SATURDAY, 1), berlin(2026, 1, SATURDAY, 23)) == (
        timedelta(0)
    )
    assert working.elapsed(berlin(2026, 1, MONDAY, 11), berlin(2026, 1, FRIDAY, 16)) == -timedelta(
        hours=4
    )


def test_round_the_clock() -> None:
    weekdays = WorkingTime.parse("mon-fri", "00:00-24:00", BERLIN)
    assert weekdays.is_working(berlin(2026, 1, FRIDAY, 23, 59))
    assert not weekdays.is_working(berlin(2026, 1, SATURDAY, 0, 0))
    assert weekdays.is_working(berlin(2026, 1, MONDAY, 0, 0))
    assert weekdays.next_working(berlin(2026, 1, SATURDAY, 11)) == berlin(2026, 1, MONDAY, 0, 0)
    assert weekdays.add(berlin(2026, 1, FRIDAY, 22), timedelta(hours=4)) == berlin(
        2026, 1, MONDAY, 2
    )
    # From Saturday, one working day is all of Monday.
    assert weekdays.add(berlin(2026, 1, SATURDAY, 11), timedelta(days=1)) == berlin(
        2026, 1, TUESDAY, 0
    )
    assert weekdays.add(berlin(2026, 1, FRIDAY, 17, 30), timedelta(days=3)) == berlin(
        2026, 1, WEDNESDAY, 17, 30
    )
    assert weekdays.elapsed(berlin(2026, 1, FRIDAY, 12), berlin(2026, 1, MONDAY, 12)) == (
        timedelta(hours=24)
    )


def test_seven_day_week() -> None:
    every_day = WorkingTime.parse("mon-sun", "09:00-18:00", BERLIN)
    assert every_day.is_working(berlin(2026, 1, SATURDAY, 11))
    assert every_day.add(berlin(2026, 1, SATURDAY, 11), timedelta(days=3)) == berlin(
        2026, 1, TUESDAY, 11
    )
    assert every_day.add(berlin(2026, 1, SATURDAY, 20), timedelta(days=3)) == berlin(
        2026, 1, TUESDAY, 18
    )
    always = WorkingTime.parse("mon-sun", "00:00-24:00", UTC)
    start = datetime(2026, 1, FRIDAY, 17, 30, tzinfo=UTC)
    assert always.add(start, timedelta(days=3, hours=4)) == start + timedelta(days=3, hours=4)
    assert always.elapsed(start, start + timedelta(days=10)) == timedelta(days=10)
    assert always.next_working(start) == start


def test_sun_thu_week() -> None:
    working = WorkingTime.parse("sun-thu", "08:00-17:00", ZoneInfo("Asia/Jerusalem"))
    thursday = datetime(2026, 1, 8, 16, 30, tzinfo=working.zone)
    # Sunday, Monday, Tuesday.
    assert working.add(thursday, timedelta(days=3)) == datetime(
        2026, 1, 13, 16, 30, tzinfo=working.zone
    )
    assert working.add(thursday, timedelta(hours=1)) == datetime(
        2026, 1, 11, 8, 30, tzinfo=working.zone
    )


# ------------------------------------------------------------------------------- daylight saving


def test_spring_forward_in_working_hours() -> None:
    # Berlin moves from 02:00 CET to 03:00 CEST on Sunday 2026-03-29.
    office_hours = office()
    friday = berlin(2026, 3, 27, 17, 0)
    assert office_hours.add(friday, timedelta(hours=2)) == berlin(2026, 3, 30, 10, 0)
    assert office_hours.add(friday, timedelta(hours=2)) == datetime(2026, 3, 30, 8, tzinfo=UTC)
    assert office_hours.add(friday, timedelta(days=3)) == berlin(2026, 4, 1, 17, 0)
    assert office_hours.elapsed(friday, berlin(2026, 4, 1, 17, 0)) == timedelta(hours=27)

    always = WorkingTime.parse("mon-sun", "00:00-24:00", BERLIN)
    saturday_noon = berlin(2026, 3, 28, 12, 0)
    sunday_noon = berlin(2026, 3, 29, 12, 0)
    assert always.elapsed(saturday_noon, sunday_noon) == timedelta(hours=23)
    assert always.elapsed(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)) == timedelta(
        hours=23
    )
    # A working day is a day on the wall clock; working hours are real hours.
    assert always.add(saturday_noon, timedelta(days=1)) == sunday_noon
    assert always.add(saturday_noon, timedelta(hours=23)) == sunday_noon
    # 02:30 does not exist that Sunday: the day after 02:30 Saturday is the change itself.
    assert always.add(berlin(2026, 3, 28, 2, 30), timedelta(days=1)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # Working hours that start inside the skipped hour start at the change.
    early = WorkingTime.parse("sun", "02:30-10:00", BERLIN)
    assert early.next_working(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert early.elapsed(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 29, 23, 0)) == timedelta(
        hours=7
    )


def test_fall_back_in_working_hours() -> None:
    # Berlin moves from 03:00 CEST back to 02:00 CET on Sunday 2026-10-25.
    office_hours = office()
    friday = berlin(2026, 10, 23, 17, 0)
    assert office_hours.add(friday, timedelta(days=3)) == berlin(2026, 10, 28, 17, 0)
    assert office_hours.add(friday, timedelta(days=3)) == datetime(2026, 10, 28, 16, tzinfo=UTC)
    assert office_hours.elapsed(friday, berlin(2026, 10, 28, 17, 0)) == timedelta(hours=27)
    assert office_hours.add(friday, timedelta(hours=3)) == berlin(2026, 10, 26, 11, 0)

    always = WorkingTime.parse("mon-sun", "00:00-24:00", BERLIN)
    assert always.elapsed(berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 26, 0, 0)) == timedelta(
        hours=25
    )
    # 02:30 happens twice that Sunday: a day after 02:30 Saturday is the first of them.
    assert always.add(berlin(2026, 10, 24, 2, 30), timedelta(days=1)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second time
    assert always.is_working(second)
    assert always.add(second, timedelta(days=1)) == berlin(2026, 10, 26, 2, 30)


# ------------------------------------------------------------------------------- deadlines


def test_due_at_in_plain_time() -> None:
    opened = berlin(2026, 1, SATURDAY, 23, 0)
    assert due_at(opened, timedelta(hours=24), None) == berlin(2026, 1, SATURDAY + 1, 23, 0)
    assert due_at(opened, timedelta(hours=1), None) == datetime(2026, 1, SATURDAY, 23, tzinfo=UTC)
    assert due_at(opened, timedelta(hours=1), None).tzinfo is UTC
    # Plain time is real time, also across a clock change.
    assert due_at(berlin(2026, 3, 28, 12), timedelta(hours=24), None) == berlin(2026, 3, 29, 13)


def test_reminder_at_80_percent() -> None:
    opened = berlin(2026, 1, SATURDAY, 11, 0)
    plain_due = due_at(opened, timedelta(hours=24), None)
    assert reminder_at(opened, plain_due, None) == opened + timedelta(hours=19, minutes=12)

    working = office()
    due = due_at(opened, timedelta(days=3), working)
    # 27 working hours, 80 % of them 21h36m: Monday, Tuesday, then 3h36m on Wednesday.
    assert reminder_at(opened, due, working) == berlin(2026, 1, WEDNESDAY, 12, 36)
    friday = berlin(2026, 1, FRIDAY, 16, 0)
    due = due_at(friday, timedelta(hours=4), working)
    assert reminder_at(friday, due, working) == berlin(2026, 1, MONDAY, 10, 12)
    assert reminder_at(friday, due, working, share=0.5) == berlin(2026, 1, FRIDAY, 18, 0)
    assert reminder_at(friday, due, working, share=0) == friday
    assert reminder_at(friday, due, working, share=1) == due
    assert reminder_at(friday, due, working).tzinfo is UTC


def test_reminder_at_refuses_nonsense() -> None:
    opened = berlin(2026, 1, FRIDAY, 16, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        reminder_at(opened, opened + timedelta(hours=1), None, share=1.5)
    with pytest.raises(ValueError, match="must not come before start"):
        reminder_at(opened, opened - timedelta(hours=1), office())


def test_naive_datetimes_and_negative_amounts_are_refused() -> None:
    working = office()
    naive = datetime(2026, 1, FRIDAY, 12, 0)
    aware = berlin(2026, 1, FRIDAY, 12, 0)
    calls = [
        lambda: working.is_working(naive),
        lambda: working.next_working(naive),
        lambda: working.add(naive, timedelta(hours=1)),
        lambda: working.elapsed(naive, aware),
        lambda: working.elapsed(aware, naive),
        lambda: due_at(naive, timedelta(hours=1), None),
        lambda: due_at(naive, timedelta(hours=1), working),
        lambda: reminder_at(naive, aware, None),
        lambda: reminder_at(aware, naive, working),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="must be timezone-aware"):
            call()
    with pytest.raises(ValueError, match="must not be negative"):
        working.add(aware, -timedelta(minutes=1))
    with pytest.raises(ValueError, match="must not be negative"):
        due_at(aware, -timedelta(minutes=1), None)


def test_long_amounts_finish() -> None:
    working = office()
    opened = berlin(2026, 1, FRIDAY, 17, 30)
    due = working.add(opened, timedelta(days=3650))
    # 730 whole weeks, at the same time of day.
    assert due == berlin(2040, 1, 6, 17, 30)
    assert working.elapsed(opened, due) == timedelta(hours=9 * 3650)
    assert working.add(opened, timedelta(hours=23)) == berlin(2026, 1, WEDNESDAY, 13, 30)


# ------------------------------------------------------------------------------- reference


def reference_working(working: WorkingTime, at: datetime) -> bool:
    """Working time by the wall clock alone: a working weekday, at or past start, before end."""
    local = at.astimezone(working.zone)
    wall = local.time()
    return (
        local.weekday() in working.days
        and wall >= working.start
        and (working.end == time(0) or wall < working.end)
    )


def reference_elapsed(working: WorkingTime, start: datetime, end: datetime, step: timedelta):
    total, at = timedelta(0), start
    while at < end:
        if reference_working(working, at):
            total += step
        at += step
    return total


def reference_next_working(working: WorkingTime, start: datetime, step: timedelta) -> datetime:
    at = start
    while not reference_working(working, at):
        at += step
    return at


def reference_add(
    working: WorkingTime, start: datetime, amount: timedelta, step: timedelta
) -> datetime:
    """`WorkingTime.add` spelled out step by step from the module docstring's rules."""
    days, rest = amount.days, amount - timedelta(days=amount.days)
    at = start
    if days:
        at = reference_next_working(working, at, step)
        local = at.astimezone(working.zone)
        wall, day = local.time(), local.date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            counted += day.weekday() in working.days
        # The first moment the local clock shows that day and time, or later.
        at = datetime.combine(day - timedelta(days=1), time(20), tzinfo=working.zone).astimezone(
            UTC
        )
        while (at.astimezone(working.zone).date(), at.astimezone(working.zone).time()) < (
            day,
            wall,
        ):
            at += step
        # At an opening (or in a gap): back to the close of the last working period.
        while not reference_working(working, at - step):
            at -= step
    while rest > timedelta(0):
        if reference_working(working, at):
            rest -= step
        at += step
    return at


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
# Windows around clock changes in 2026: Berlin Mar 29 / Oct 25, New York Mar 8 / Nov 1,
# Sydney Apr 5 / Oct 4.
WINDOWS = [date(2026, 3, 1), date(2026, 3, 20), date(2026, 9, 28), date(2026, 10, 18)]


def random_working_time(rng: random.Random, zone: str) -> WorkingTime:
    shape = rng.random()
    if shape < 0.3:
        days = frozenset(range(5))
    elif shape < 0.45:
        days = frozenset(range(7))
    else:
        days = frozenset(d for d in range(7) if rng.random() < 0.5) or frozenset({rng.randrange(7)})
    # Whole hours, so that every clock change and edge falls on the reference's step.
    if rng.random() < 0.2:
        start, end = time(0), time(0)
    else:
        first = rng.randrange(24)
        last = rng.randrange(first + 1, 25)
        start, end = time(first), time(last % 24)
    return WorkingTime(days, start, end, ZoneInfo(zone))


@pytest.mark.parametrize("seed", range(8))
def test_against_brute_force_reference(seed: int) -> None:
    rng = random.Random(seed)
    step = timedelta(minutes=15)
    for _ in range(60):
        working = random_working_time(rng, rng.choice(ZONES))
        base = datetime.combine(rng.choice(WINDOWS), time(0), tzinfo=UTC)
        start = base + step * rng.randrange(20 * 24 * 4)
        days = 0 if rng.random() < 0.4 else rng.randrange(1, 6)
        amount = timedelta(days=days) + step * rng.randrange(24 * 4)
        context = f"{working} start={start.isoformat()} amount={amount}"

        assert working.is_working(start) == reference_working(working, start), context
        assert working.next_working(start) == reference_next_working(working, start, step), context

        due = working.add(start, amount)
        assert due == reference_add(working, start, amount, step), context
        assert due.tzinfo is UTC
        assert working.elapsed(start, due) == reference_elapsed(working, start, due, step), context
        if not days:
            assert working.elapsed(start, due) == amount, context
        middle = start + (due - start) * rng.random()
        assert working.elapsed(start, middle) + working.elapsed(middle, due) == (
            working.elapsed(start, due)
        ), context

        reminder = reminder_at(start, due, working)
        assert start <= reminder <= due
        assert working.elapsed(start, reminder) == working.elapsed(start, due) * 0.8, context


# Local clock changes of 2026, as (zone, the instant of the change).
CHANGES = [
    ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 4, 16, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 10, 3, 16, tzinfo=UTC)),
]


def test_the_clock_changes_are_where_the_tests_think() -> None:
    for zone, change in CHANGES:
        before = (change - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).utcoffset()
        assert before != change.astimezone(ZoneInfo(zone)).utcoffset()


@pytest.mark.parametrize("seed", range(3))
def test_against_brute_force_reference_around_clock_changes(seed: int) -> None:
    """Hours through the night, and starts near the change or a day or two before it."""
    rng = random.Random(1000 + seed)
    step = timedelta(minutes=15)
    for _ in range(80):
        zone, change = rng.choice(CHANGES)
        first = rng.randrange(4)
        working = WorkingTime(
            frozenset(range(7)) if rng.random() < 0.7 else frozenset({5, 6, 0}),
            time(first),
            time(rng.choice([h for h in (first + 1, 3, 4, 6, 12) if h > first] + [0])),
            ZoneInfo(zone),
        )
        start = change - timedelta(days=rng.randrange(3)) + step * rng.randrange(-8, 8)
        amount = timedelta(days=rng.randrange(3)) + step * rng.randrange(8 * 4)
        context = f"{working} start={start.isoformat()} amount={amount}"
        due = working.add(start, amount)
        assert due == reference_add(working, start, amount, step), context
        assert working.elapsed(start, due) == reference_elapsed(working, start, due, step), context
        assert working.next_working(start) == reference_next_working(working, start, step), context


def test_against_brute_force_reference_to_the_minute() -> None:
    rng = random.Random(2026)
    step = timedelta(minutes=1)
    for _ in range(60):
        days = frozenset(d for d in range(7) if rng.random() < 0.6) or frozenset({0})
        first = rng.randrange(0, 22 * 60)
        last = rng.randrange(first + 60, 24 * 60 + 1)
        working = WorkingTime(
            days,
            time(first // 60, first % 60),
            time((last // 60) % 24, last % 60),
            timezone(timedelta(hours=rng.randrange(-12, 13))),
        )
        start = datetime(2026, 1, 1, tzinfo=UTC) + step * rng.randrange(14 * 24 * 60)
        amount = timedelta(days=rng.choice([0, 0, 1, 2])) + step * rng.randrange(10 * 60)
        context = f"{working} start={start.isoformat()} amount={amount}"
        due = working.add(start, amount)
        assert due == reference_add(working, start, amount, step), context
        assert working.elapsed(start, due) == reference_elapsed(working, start, due, step), context
