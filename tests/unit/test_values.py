"""Setting values: what people type is read one way only, and a wrong value says what is allowed."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.settings import ConfigurationError, Settings, load_settings
from bot.values import (
    Duration,
    QuietHours,
    WeeklySlot,
    format_duration,
    parse_bool,
    parse_duration,
    parse_quiet_hours,
    parse_time_zone,
    parse_weekly_slot,
)

# ------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("30d", timedelta(days=30)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("72h", timedelta(hours=72)),
        ("0", timedelta(0)),
        ("0h", timedelta(0)),
        ("0s", timedelta(0)),
        ("  2H  ", timedelta(hours=2)),
        ("10M", timedelta(minutes=10)),
        ("3650d", timedelta(days=3650)),
    ],
)
def test_durations_are_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2",  # a bare number: seconds? minutes? refuse rather than guess
        "30",
        "2 hours",
        "2hrs",
        "1.5h",
        "-2h",
        "+2h",
        "h",
        "30m1h",  # units in falling order only
        "1h1h",
        "1h30",  # a trailing number without its unit
        "2w",
        "PT2H",
        "01:00:00",
        "3651d",
    ],
)
def test_wrong_durations_are_refused_with_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be a duration like 2h, 30m or 30d|at most 3650d"):
        parse_duration(text)


def test_a_bare_number_is_told_it_needs_a_unit() -> None:
    with pytest.raises(ValueError, match="a number needs a unit") as caught:
        parse_duration("30")
    assert "(got '30')" in str(caught.value)


def test_a_duration_far_too_long_is_refused_not_overflowed() -> None:
    with pytest.raises(ValueError, match="at most 3650d"):
        parse_duration("99999999999999999999d")


def test_timedeltas_pass_through_checked() -> None:
    assert parse_duration(timedelta(minutes=5)) == timedelta(minutes=5)
    with pytest.raises(ValueError, match="negative"):
        parse_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="at most"):
        parse_duration(timedelta(days=4000))


@pytest.mark.parametrize("value", [7200, 2.0, None, ["2h"]])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=30), "30d"),
        (timedelta(hours=72), "3d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "0.25s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_durations_are_written_the_way_they_are_read(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_parsed_durations_print_the_way_they_are_typed() -> None:
    delay = parse_duration("90m")
    assert isinstance(delay, Duration)
    assert str(delay) == "1h30m"
    assert str(parse_duration("0")) == "0"
    assert str(parse_duration(timedelta(hours=2))) == "2h"
    assert delay * 2 == timedelta(hours=3)  # arithmetic as usual


def test_settings_show_durations_and_quiet_hours_as_typed() -> None:
    settings = Settings(_env_file=None)
    shown = [str(settings.survey_delay), str(settings.survey_cooldown), str(settings.quiet_hours)]
    assert shown == ["2h", "30d", "21:00-09:00"]
    assert str(Settings(_env_file=None, survey_reminder="36h").survey_reminder) == "1d12h"


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 61, 3599, 3600, 86399, 86400, 90061, 10**8])
def test_formatting_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


# ----------------------------------------------------------------------------- quiet hours


def test_quiet_hours_that_wrap_midnight() -> None:
    quiet = parse_quiet_hours("21:00-09:00")
    assert quiet == QuietHours(time(21, 0), time(9, 0))
    assert quiet.enabled and quiet.wraps_midnight
    assert str(quiet) == "21:00-09:00"
    assert time(21, 0) in quiet  # the start is quiet
    assert time(23, 59, 59) in quiet
    assert time(0, 0) in quiet
    assert time(8, 59, 59) in quiet
    assert time(9, 0) not in quiet  # the end is the first allowed minute
    assert time(12, 0) not in quiet
    assert time(20, 59, 59) not in quiet


def test_quiet_hours_within_one_day() -> None:
    quiet = parse_quiet_hours("12:30-14:00")
    assert not quiet.wraps_midnight
    assert time(12, 29, 59) not in quiet
    assert time(12, 30) in quiet
    assert time(13, 59) in quiet
    assert time(14, 0) not in quiet
    assert time(0, 0) not in quiet


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_quiet_hours_turn_them_off(text: str) -> None:
    quiet = parse_quiet_hours(text)
    assert quiet == QuietHours.off()
    assert not quiet.enabled
    assert str(quiet) == ""
    assert all(time(hour, minute) not in quiet for hour in range(24) for minute in (0, 30, 59))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("9:00-17:30", time(9, 0), time(17, 30)),
        (" 22:15 - 06:45 ", time(22, 15), time(6, 45)),
        ("00:00-06:00", time(0, 0), time(6, 0)),
        ("21:00-24:00", time(21, 0), time(0, 0)),  # "until midnight"
        ("23:59-00:00", time(23, 59), time(0, 0)),
    ],
)
def test_quiet_hours_forms(text: str, start: time, end: time) -> None:
    assert parse_quiet_hours(text) == QuietHours(start, end)


@pytest.mark.parametrize("text", ["09:00-09:00", "00:00-24:00", "21:00-21:00"])
def test_quiet_hours_that_start_where_they_end_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="start and end must differ"):
        parse_quiet_hours(text)


@pytest.mark.parametrize(
    "text",
    ["21-9", "21:00", "21:00-", "9pm-9am", "21.00-09.00", "21:00–09:00", "21:0-09:00", "x"],
)
def test_quiet_hours_of_the_wrong_shape_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be quiet hours like 21:00-09:00") as caught:
        parse_quiet_hours(text)
    assert "or empty for none" in str(caught.value)


@pytest.mark.parametrize("text", ["25:00-09:00", "21:60-09:00", "21:00-24:30", "24:00-09:00"])
def test_quiet_hours_outside_the_clock_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="hours run 00-23 and minutes 00-59"):
        parse_quiet_hours(text)


def test_quiet_hours_value_checks_itself() -> None:
    with pytest.raises(ValueError, match="both a start and an end"):
        QuietHours(time(21, 0), None)
    with pytest.raises(ValueError, match="whole minutes"):
        QuietHours(time(21, 0, 30), time(9, 0))
    with pytest.raises(ValueError, match="start and end must differ"):
        QuietHours(time(9, 0), time(9, 0))
    quiet = QuietHours(time(21, 0), time(9, 0))
    assert parse_quiet_hours(quiet) is quiet
    with pytest.raises(ValueError, match="must be quiet hours"):
        parse_quiet_hours(2100)


def test_quiet_hours_round_trip_through_text() -> None:
    for text in ["21:00-09:00", "09:05-17:55", "00:00-00:01", ""]:
        assert str(parse_quiet_hours(text)) == text


# ------------------------------------------------------------------------ booleans, zones


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "on", "1", " Yes "])
def test_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["false", "False", "no", "off", "0"])
def test_false(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "y"])
def test_other_yes_no_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be true or false"):
        parse_bool(text)


def test_bools_pass_through() -> None:
    assert parse_bool(True) is True
    assert parse_bool(False) is False


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", " Asia/Shanghai ", "America/Los_Angeles"])
def test_time_zones(name: str) -> None:
    assert parse_time_zone(name) == name.strip()


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "CEST+2", "../etc/passwd", None])
def test_unknown_time_zones_are_refused(name: object) -> None:
    with pytest.raises(ValueError, match="must be an IANA time zone such as Europe/Berlin"):
        parse_time_zone(name)


# ------------------------------------------------------------------ through the settings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Only what a test sets counts: no developer .env, no variables from the shell."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        ("SURVEY_DELAY", "2 hours", "must be a duration like 2h, 30m or 30d, or 0 (got '2 hours')"),
        ("SURVEY_COOLDOWN", "30", "a number needs a unit"),
        ("SURVEY_EXPIRY", "0", "must be longer than 0"),
        ("SURVEY_REMINDER", "-1h", "must be a duration like 2h"),
        ("QUIET_HOURS", "09:00-09:00", "start and end must differ"),
        ("QUIET_HOURS", "9pm-9am", "must be quiet hours like 21:00-09:00"),
        ("PAID_BROADCAST", "maybe", "must be true or false (also yes/no, on/off, 1/0)"),
        ("SEND_ATTEMPTS", "0", "greater than or equal to 1"),
    ],
)
def test_wrong_survey_settings_name_the_variable_and_what_is_allowed(
    clean_environment: pytest.MonkeyPatch, variable: str, value: str, explanation: str
) -> None:
    clean_environment.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"{variable}: " in str(caught.value)
    assert explanation in str(caught.value)


def test_survey_settings_from_the_environment(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("SURVEY_DELAY", "1h30m")
    clean_environment.setenv("QUIET_HOURS", "")
    clean_environment.setenv("SURVEY_REMINDER", "0")
    clean_environment.setenv("PAID_BROADCAST", "yes")
    settings = Settings()
    assert settings.survey_delay == timedelta(hours=1, minutes=30)
    assert not settings.quiet_hours.enabled
    assert settings.survey_reminder == timedelta(0)
    assert settings.paid_broadcast is True


# --- weekly slots (WEEKLY_DIGEST) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weekday", "at"),
    [
        ("mon 09:00", 0, time(9, 0)),
        ("Monday 9:00", 0, time(9, 0)),
        ("tues 10:30", 1, time(10, 30)),
        ("  SUN 23:59 ", 6, time(23, 59)),
        ("fri17:00", 4, time(17, 0)),
    ],
)
def test_weekly_slots_are_read(text: str, weekday: int, at: time) -> None:
    assert parse_weekly_slot(text) == WeeklySlot(weekday, at)


@pytest.mark.parametrize("text", ["", "off", "OFF", "none", "-"])
def test_a_weekly_slot_can_be_turned_off(text: str) -> None:
    assert parse_weekly_slot(text) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mo 09:00", "days are mon, tue"),
        ("funday 09:00", "days are mon, tue"),
        ("mon", "like mon 09:00"),
        ("mon 24:00", "hours run 00-23"),
        ("mon 9:60", "minutes 00-59"),
        ("09:00", "like mon 09:00"),
    ],
)
def test_wrong_weekly_slots_say_what_is_allowed(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_weekly_slot(text)


def test_a_weekly_slot_prints_the_way_it_is_typed() -> None:
    assert str(parse_weekly_slot("Wednesday 7:05")) == "wed 07:05"
    assert parse_weekly_slot(str(WeeklySlot(2, time(7, 5)))) == WeeklySlot(2, time(7, 5))
