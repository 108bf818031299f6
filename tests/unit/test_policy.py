"""Survey policy: the right moment in the customer's own day, the cooldown, expiry and reminder.

Every case is explicit instants in and out. Zones: UTC; Asia/Shanghai (UTC+8, no DST);
America/Los_Angeles (DST on 8 March and 1 November 2026); Europe/Berlin (DST on 29 March and
25 October 2026, at 01:00 UTC both times).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.policy import (
    ExpiryReason,
    SkipReason,
    SurveyPolicy,
    expires_at,
    expiry_reason,
    is_quiet,
    next_allowed,
    reminder_due_at,
    skip_reason,
    survey_due_at,
)
from bot.settings import Settings
from bot.values import QuietHours, parse_quiet_hours

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
APIA = ZoneInfo("Pacific/Apia")

POLICY = SurveyPolicy()  # 2h delay, quiet 21:00-09:00, UTC, 30d cooldown, 72h expiry, 24h reminder
NO_QUIET = SurveyPolicy(quiet_hours=QuietHours.off())


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def local(zone: tzinfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)


# ------------------------------------------------------------------------ the policy value


def test_defaults_are_the_settings_defaults() -> None:
    assert SurveyPolicy.from_settings(Settings(_env_file=None)) == SurveyPolicy()
    assert POLICY.delay == timedelta(hours=2)
    assert str(POLICY.quiet_hours) == "21:00-09:00"
    assert POLICY.cooldown == timedelta(days=30)
    assert POLICY.expiry == timedelta(hours=72)
    assert POLICY.reminder == timedelta(hours=24)


def test_policy_follows_the_settings() -> None:
    settings = Settings(
        _env_file=None,
        survey_delay="90m",
        quiet_hours="",
        timezone="Europe/Berlin",
        survey_cooldown="0",
        survey_expiry="2d",
        survey_reminder="0",
    )
    assert SurveyPolicy.from_settings(settings) == SurveyPolicy(
        delay=timedelta(minutes=90),
        quiet_hours=QuietHours.off(),
        time_zone=BERLIN,
        cooldown=timedelta(0),
        expiry=timedelta(days=2),
        reminder=timedelta(0),
    )


def test_the_customers_zone_or_the_default() -> None:
    policy = SurveyPolicy(time_zone=BERLIN)
    assert policy.zone_for("Asia/Shanghai") == SHANGHAI
    assert policy.zone_for(None) == BERLIN
    assert policy.zone_for("") == BERLIN
    assert policy.zone_for("Mars/Olympus") == BERLIN  # a bad stored name: still ask, at home time
    assert policy.zone_for("../../etc/passwd") == BERLIN


def test_reasons_have_stable_stored_values() -> None:
    assert {reason.value for reason in SkipReason} == {
        "erased",
        "opted_out",
        "unreachable",
        "cooldown",
    }
    assert {reason.value for reason in ExpiryReason} == {
        "unanswered",
        "never_started",
        "too_late",
    }
    assert SkipReason.COOLDOWN == "cooldown"
    assert f"{ExpiryReason.UNANSWERED}" == "unanswered"


# --------------------------------------------------------------------- when a survey is due


@pytest.mark.parametrize(
    ("visit", "due"),
    [
        (utc(2026, 1, 5, 10, 0), utc(2026, 1, 5, 12, 0)),  # plain: two hours later
        (utc(2026, 1, 5, 18, 59), utc(2026, 1, 5, 20, 59)),  # last minute before quiet hours
        (utc(2026, 1, 5, 18, 59, 59), utc(2026, 1, 5, 20, 59, 59)),
        (utc(2026, 1, 5, 19, 0), utc(2026, 1, 6, 9, 0)),  # lands on 21:00: quiet, next morning
        (utc(2026, 1, 5, 21, 30), utc(2026, 1, 6, 9, 0)),  # wraps past midnight
        (utc(2026, 1, 5, 23, 0), utc(2026, 1, 6, 9, 0)),  # 01:00 next day: same morning
        (utc(2026, 1, 6, 6, 59, 30), utc(2026, 1, 6, 9, 0)),  # 08:59:30: to the next minute
        (utc(2026, 1, 6, 7, 0), utc(2026, 1, 6, 9, 0)),  # exactly 09:00: allowed as it is
        (utc(2026, 1, 6, 7, 0, 1), utc(2026, 1, 6, 9, 0, 1)),
        (utc(2026, 12, 31, 20, 0), utc(2027, 1, 1, 9, 0)),  # across a year end
        (utc(2028, 2, 28, 22, 0), utc(2028, 2, 29, 9, 0)),  # into a leap day
    ],
)
def test_due_two_hours_after_the_visit_outside_quiet_hours(visit: datetime, due: datetime) -> None:
    assert survey_due_at(POLICY, visit) == due


def test_result_is_utc_whatever_zone_the_visit_came_in() -> None:
    visit = local(BERLIN, 2026, 1, 5, 11, 0)
    due = survey_due_at(POLICY, visit, BERLIN)
    assert due.tzinfo is UTC
    assert due == utc(2026, 1, 5, 12, 0)


def test_with_quiet_hours_off_the_delay_is_all() -> None:
    assert survey_due_at(NO_QUIET, utc(2026, 1, 5, 19, 0)) == utc(2026, 1, 5, 21, 0)
    assert survey_due_at(NO_QUIET, utc(2026, 1, 5, 23, 30)) == utc(2026, 1, 6, 1, 30)


def test_no_delay_and_no_quiet_hours_means_now() -> None:
    policy = SurveyPolicy(delay=timedelta(0), quiet_hours=QuietHours.off())
    moment = utc(2026, 1, 5, 3, 17, 11)
    assert survey_due_at(policy, moment) == moment


def test_quiet_hours_within_the_day() -> None:
    lunch = SurveyPolicy(quiet_hours=parse_quiet_hours("12:00-14:00"))
    assert survey_due_at(lunch, utc(2026, 1, 5, 9, 59)) == utc(2026, 1, 5, 11, 59)
    assert survey_due_at(lunch, utc(2026, 1, 5, 10, 0)) == utc(2026, 1, 5, 14, 0)
    assert survey_due_at(lunch, utc(2026, 1, 5, 11, 59)) == utc(2026, 1, 5, 14, 0)
    assert survey_due_at(lunch, utc(2026, 1, 5, 12, 0)) == utc(2026, 1, 5, 14, 0)
    assert survey_due_at(lunch, utc(2026, 1, 5, 22, 0)) == utc(2026, 1, 6, 0, 0)


def test_the_same_instant_is_evening_in_one_zone_and_morning_in_another() -> None:
    visit = utc(2026, 1, 5, 12, 0)  # due 14:00 UTC
    # Shanghai: 22:00 there, quiet: 09:00 next morning there, which is 01:00 UTC.
    assert survey_due_at(POLICY, visit, SHANGHAI) == utc(2026, 1, 6, 1, 0)
    # Los Angeles: 06:00 there, quiet: 09:00 the same morning there (UTC-8 in January).
    assert survey_due_at(POLICY, visit, LOS_ANGELES) == utc(2026, 1, 5, 17, 0)
    # UTC itself: 14:00, fine.
    assert survey_due_at(POLICY, visit, UTC) == utc(2026, 1, 5, 14, 0)


def test_an_unknown_zone_means_the_timezone_setting() -> None:
    policy = SurveyPolicy(time_zone=SHANGHAI)
    visit = utc(2026, 1, 5, 12, 0)
    assert survey_due_at(policy, visit) == utc(2026, 1, 6, 1, 0)
    assert survey_due_at(policy, visit, policy.zone_for(None)) == utc(2026, 1, 6, 1, 0)
    assert survey_due_at(policy, visit, policy.zone_for("Europe/Berlin")) == utc(2026, 1, 5, 14, 0)


def test_los_angeles_in_summer_time() -> None:
    # 21:00 PDT (UTC-7) on 1 July is 04:00 UTC on 2 July; 09:00 PDT is 16:00 UTC.
    visit = local(LOS_ANGELES, 2026, 7, 1, 19, 30)
    assert survey_due_at(POLICY, visit, LOS_ANGELES) == utc(2026, 7, 2, 16, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="occurred_at must be timezone-aware"):
        survey_due_at(POLICY, datetime(2026, 1, 5, 12, 0))
    with pytest.raises(ValueError, match="moment must be timezone-aware"):
        next_allowed(POLICY.quiet_hours, datetime(2026, 1, 5, 12, 0), UTC)


# ---------------------------------------------------------------- daylight saving, Berlin


def test_the_morning_after_clocks_go_forward_is_one_hour_earlier_in_utc() -> None:
    # 22:00 CET (UTC+1) on Saturday 28 March; the morning of the 29th is already CEST (UTC+2).
    visit = local(BERLIN, 2026, 3, 28, 20, 0)
    assert survey_due_at(POLICY, visit, BERLIN) == local(BERLIN, 2026, 3, 29, 9, 0)
    assert survey_due_at(POLICY, visit, BERLIN) == utc(2026, 3, 29, 7, 0)


def test_the_morning_after_clocks_go_back_is_one_hour_later_in_utc() -> None:
    visit = local(BERLIN, 2026, 10, 24, 21, 0)  # due 23:00 CEST
    assert survey_due_at(POLICY, visit, BERLIN) == utc(2026, 10, 25, 8, 0)  # 09:00 CET


def test_the_delay_is_elapsed_time_not_wall_clock_time() -> None:
    # 01:30 CET + 2 real hours = 04:30 CEST: the clock jumped an hour on the way.
    visit = local(BERLIN, 2026, 3, 29, 1, 30)
    assert survey_due_at(NO_QUIET, visit, BERLIN) == local(BERLIN, 2026, 3, 29, 4, 30)
    # 01:30 CEST + 2 real hours = 02:30 CET: the clock went back an hour on the way.
    visit = local(BERLIN, 2026, 10, 25, 1, 30)
    due = survey_due_at(NO_QUIET, visit, BERLIN)
    assert due == utc(2026, 10, 25, 1, 30)
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)


NIGHT_TO_0230 = parse_quiet_hours("22:00-02:30")


def test_quiet_hours_ending_inside_the_spring_gap_end_when_the_gap_does() -> None:
    # 02:30 does not exist on 29 March in Berlin: 01:59:59 CET is followed by 03:00:00 CEST.
    moment = local(BERLIN, 2026, 3, 29, 1, 30)
    allowed = next_allowed(NIGHT_TO_0230, moment, BERLIN)
    assert allowed == utc(2026, 3, 29, 1, 0)
    assert allowed.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)


def test_quiet_hours_ending_inside_the_autumn_overlap_end_at_the_first_occurrence() -> None:
    # 02:30 happens twice on 25 October: at 00:30 UTC (CEST) and at 01:30 UTC (CET).
    moment = local(BERLIN, 2026, 10, 25, 1, 0)  # 01:00 CEST, quiet
    assert next_allowed(NIGHT_TO_0230, moment, BERLIN) == utc(2026, 10, 25, 0, 30)


def test_during_the_repeated_hour_the_later_occurrence_is_the_next_one() -> None:
    # (Python never calls an ambiguous local time equal to a UTC one, hence astimezone.)
    second_pass = local(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    assert second_pass.astimezone(UTC) == utc(2026, 10, 25, 1, 10)  # 02:10 CET
    assert next_allowed(NIGHT_TO_0230, second_pass, BERLIN) == utc(2026, 10, 25, 1, 30)
    after_both = local(BERLIN, 2026, 10, 25, 2, 40, fold=1)
    assert next_allowed(NIGHT_TO_0230, after_both, BERLIN) == after_both.astimezone(UTC)


def test_falling_back_out_of_quiet_hours_is_allowed_until_they_come_round_again() -> None:
    early = parse_quiet_hours("02:30-06:00")
    # 02:40 CEST is quiet; at 01:00 UTC the clock falls back from 03:00 CEST to 02:00 CET,
    # outside 02:30-06:00, so that is the next allowed moment...
    moment = local(BERLIN, 2026, 10, 25, 2, 40)
    assert next_allowed(early, moment, BERLIN) == utc(2026, 10, 25, 1, 0)
    # ...and from 02:30 CET it is quiet again until 06:00 CET.
    assert next_allowed(early, utc(2026, 10, 25, 1, 29), BERLIN) == utc(2026, 10, 25, 1, 29)
    assert next_allowed(early, utc(2026, 10, 25, 1, 30), BERLIN) == utc(2026, 10, 25, 5, 0)


def test_quiet_hours_starting_inside_the_spring_gap() -> None:
    early = parse_quiet_hours("02:30-06:00")
    # 01:59 CET is before them; the next minute on the wall is 03:00 CEST, already quiet.
    assert next_allowed(early, local(BERLIN, 2026, 3, 29, 1, 59), BERLIN) == utc(2026, 3, 29, 0, 59)
    assert next_allowed(early, utc(2026, 3, 29, 1, 0), BERLIN) == local(BERLIN, 2026, 3, 29, 6, 0)
    assert next_allowed(early, utc(2026, 3, 29, 1, 0), BERLIN) == utc(2026, 3, 29, 4, 0)


def test_los_angeles_gap_and_overlap() -> None:
    early = parse_quiet_hours("00:00-02:30")
    # 8 March: 02:00 PST jumps to 03:00 PDT at 10:00 UTC.
    assert next_allowed(early, utc(2026, 3, 8, 9, 0), LOS_ANGELES) == utc(2026, 3, 8, 10, 0)
    # 1 November: 01:00-01:59 happens twice; 02:30 PST (once) is 10:30 UTC.
    assert next_allowed(early, utc(2026, 11, 1, 8, 30), LOS_ANGELES) == utc(2026, 11, 1, 10, 30)


def test_a_day_that_never_happened() -> None:
    # Samoa skipped 30 December 2011: 23:59:59 on the 29th (UTC-10) was followed by 00:00 on
    # the 31st (UTC+14), which is quiet again, so the survey waits for 09:00 on the 31st.
    moment = local(APIA, 2011, 12, 29, 22, 0)
    allowed = next_allowed(POLICY.quiet_hours, moment, APIA)
    assert allowed.astimezone(APIA).replace(tzinfo=None) == datetime(2011, 12, 31, 9, 0)
    assert allowed == utc(2011, 12, 30, 19, 0)


QUIET_VARIANTS = ["21:00-09:00", "22:00-02:30", "02:30-06:00", "00:00-06:00", "12:00-14:00", ""]
SWEEPS = [
    (BERLIN, utc(2026, 3, 27, 0, 0)),
    (BERLIN, utc(2026, 10, 23, 0, 0)),
    (LOS_ANGELES, utc(2026, 3, 6, 0, 0)),
    (LOS_ANGELES, utc(2026, 10, 30, 0, 0)),
    (SHANGHAI, utc(2026, 6, 1, 0, 0)),
    (APIA, utc(2011, 12, 28, 0, 0)),
    (ZoneInfo("Asia/Kathmandu"), utc(2026, 1, 5, 0, 0)),  # UTC+05:45
]


@pytest.mark.parametrize("quiet_text", QUIET_VARIANTS)
@pytest.mark.parametrize(("zone", "start"), SWEEPS, ids=[f"{z}-{s:%Y-%m}" for z, s in SWEEPS])
def test_next_allowed_is_the_first_instant_outside_quiet_hours(
    quiet_text: str, zone: tzinfo, start: datetime
) -> None:
    """Every 7 minutes over four days around each transition: the answer is not quiet, it is
    not before the moment, and nothing between the two is allowed (checked every 5 minutes
    and one second before the answer)."""
    quiet = parse_quiet_hours(quiet_text)
    moment = start
    while moment < start + timedelta(days=4):
        allowed = next_allowed(quiet, moment, zone)
        assert allowed >= moment
        assert not is_quiet(quiet, allowed, zone)
        if allowed > moment:
            assert is_quiet(quiet, moment, zone)
            assert is_quiet(quiet, allowed - timedelta(seconds=1), zone)
            probe = moment
            while probe < allowed:
                assert is_quiet(quiet, probe, zone), (moment, probe, allowed)
                probe += timedelta(minutes=5)
        else:
            assert allowed == moment
        moment += timedelta(minutes=7)


# ---------------------------------------------------------------------- skipping a survey

DUE = utc(2026, 2, 1, 12, 0)


def test_a_customer_never_surveyed_is_asked() -> None:
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=None) is None


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (DUE - timedelta(days=30), None),  # exactly the cooldown ago: allowed again
        (DUE - timedelta(days=30, seconds=1), None),
        (DUE - timedelta(days=30) + timedelta(seconds=1), SkipReason.COOLDOWN),
        (DUE - timedelta(days=1), SkipReason.COOLDOWN),
        (DUE, SkipReason.COOLDOWN),  # two visits, the same due time
        (DUE + timedelta(days=3), SkipReason.COOLDOWN),  # an older visit imported late
        (DUE + timedelta(days=30), None),
        (DUE - timedelta(days=365), None),
    ],
)
def test_cooldown_edges(last: datetime, reason: SkipReason | None) -> None:
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=last) == reason


def test_cooldown_compares_instants_not_wall_clocks() -> None:
    last = local(SHANGHAI, 2026, 1, 2, 20, 0)  # 12:00 UTC on 2 January
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=last) is None  # 30 days exactly
    last = local(SHANGHAI, 2026, 1, 2, 20, 0, 1)
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=last) == SkipReason.COOLDOWN


def test_later_visits_in_the_window_are_skipped_with_that_reason() -> None:
    clock = FakeClock(utc(2026, 3, 2, 10, 0))
    first_due = survey_due_at(POLICY, clock.now())
    assert skip_reason(POLICY, due_at=first_due, last_surveyed_at=None) is None
    for days in (1, 7, 29):
        clock.set(utc(2026, 3, 2, 10, 0) + timedelta(days=days))
        due = survey_due_at(POLICY, clock.now())
        assert skip_reason(POLICY, due_at=due, last_surveyed_at=first_due) == SkipReason.COOLDOWN
    clock.set(utc(2026, 4, 1, 10, 0))
    due = survey_due_at(POLICY, clock.now())
    assert skip_reason(POLICY, due_at=due, last_surveyed_at=first_due) is None


def test_no_cooldown_when_it_is_zero() -> None:
    policy = SurveyPolicy(cooldown=timedelta(0))
    assert skip_reason(policy, due_at=DUE, last_surveyed_at=DUE) is None


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"opted_out": True}, SkipReason.OPTED_OUT),
        ({"unreachable": True}, SkipReason.UNREACHABLE),
        ({"erased": True}, SkipReason.ERASED),
        ({"erased": True, "opted_out": True, "unreachable": True}, SkipReason.ERASED),
        ({"opted_out": True, "unreachable": True}, SkipReason.OPTED_OUT),
    ],
)
def test_who_is_never_asked(flags: dict[str, bool], reason: SkipReason) -> None:
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=None, **flags) == reason
    # The lasting reason wins over a cooldown that would also apply.
    assert skip_reason(POLICY, due_at=DUE, last_surveyed_at=DUE, **flags) == reason


def test_skip_needs_aware_instants() -> None:
    with pytest.raises(ValueError, match="last_surveyed_at"):
        skip_reason(POLICY, due_at=DUE, last_surveyed_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="due_at"):
        skip_reason(POLICY, due_at=datetime(2026, 1, 1), last_surveyed_at=None)


# --------------------------------------------------------------------------------- expiry

SENT = utc(2026, 2, 1, 12, 0)


def test_a_sent_survey_expires_after_the_expiry_time() -> None:
    assert expires_at(POLICY, due_at=SENT, sent_at=SENT) == utc(2026, 2, 4, 12, 0)
    assert expires_at(POLICY, due_at=SENT - timedelta(hours=5), sent_at=SENT) == utc(
        2026, 2, 4, 12, 0
    )


def test_a_waiting_survey_expires_after_the_expiry_time_from_when_it_was_due() -> None:
    assert expires_at(POLICY, due_at=SENT) == utc(2026, 2, 4, 12, 0)


@pytest.mark.parametrize(
    ("now", "sent_at", "started", "reason"),
    [
        (SENT + timedelta(hours=72) - timedelta(microseconds=1), SENT, True, None),
        (SENT + timedelta(hours=72), SENT, True, ExpiryReason.UNANSWERED),
        (SENT + timedelta(days=10), SENT, True, ExpiryReason.UNANSWERED),
        (SENT + timedelta(hours=71), None, False, None),
        (SENT + timedelta(hours=72), None, False, ExpiryReason.NEVER_STARTED),
        (SENT + timedelta(hours=72), None, True, ExpiryReason.TOO_LATE),
        (SENT - timedelta(hours=1), None, True, None),
    ],
)
def test_expiry_reasons(
    now: datetime, sent_at: datetime | None, started: bool, reason: ExpiryReason | None
) -> None:
    got = expiry_reason(POLICY, now=now, due_at=SENT, sent_at=sent_at, started=started)
    assert got == reason


def test_a_survey_through_its_life_on_a_fake_clock() -> None:
    policy = SurveyPolicy(time_zone=BERLIN)
    clock = FakeClock(local(BERLIN, 2026, 3, 27, 19, 30))  # Friday 19:30 CET, a late visit
    due = survey_due_at(policy, clock.now())
    assert due == local(BERLIN, 2026, 3, 28, 9, 0)  # 21:30 is quiet: Saturday morning
    clock.set(due)
    sent = clock.now()
    reminder = reminder_due_at(policy, sent_at=sent)
    # 24 elapsed hours: the clocks went forward overnight, so it is 10:00 on Sunday.
    assert reminder == local(BERLIN, 2026, 3, 29, 10, 0)
    assert reminder is not None
    clock.set(reminder)
    assert expiry_reason(policy, now=clock.now(), due_at=due, sent_at=sent) is None
    clock.advance(hours=48)
    assert clock.now() == expires_at(policy, due_at=due, sent_at=sent)
    assert clock.now() == local(BERLIN, 2026, 3, 31, 10, 0)
    reason = expiry_reason(policy, now=clock.now(), due_at=due, sent_at=sent)
    assert reason == ExpiryReason.UNANSWERED


# ------------------------------------------------------------------------------- reminder


def test_one_reminder_a_day_later() -> None:
    assert reminder_due_at(POLICY, sent_at=SENT) == utc(2026, 2, 2, 12, 0)


def test_the_reminder_waits_for_the_morning() -> None:
    sent = utc(2026, 2, 1, 20, 30)  # reminder 20:30 next day: fine
    assert reminder_due_at(POLICY, sent_at=sent) == utc(2026, 2, 2, 20, 30)
    sent = utc(2026, 2, 1, 21, 30)  # 21:30 next day is quiet: the morning after
    assert reminder_due_at(POLICY, sent_at=sent) == utc(2026, 2, 3, 9, 0)


def test_the_reminder_respects_the_customers_zone() -> None:
    sent = local(SHANGHAI, 2026, 2, 1, 20, 0)
    assert reminder_due_at(POLICY, sent_at=sent, zone=SHANGHAI) == local(
        SHANGHAI, 2026, 2, 2, 20, 0
    )
    sent = local(SHANGHAI, 2026, 2, 1, 22, 0)  # sent late (quiet hours were off for a while)
    assert reminder_due_at(POLICY, sent_at=sent, zone=SHANGHAI) == local(SHANGHAI, 2026, 2, 3, 9, 0)


def test_no_reminder_when_turned_off() -> None:
    assert reminder_due_at(SurveyPolicy(reminder=timedelta(0)), sent_at=SENT) is None


def test_no_reminder_at_or_after_expiry() -> None:
    assert reminder_due_at(SurveyPolicy(reminder=timedelta(hours=72)), sent_at=SENT) is None
    assert reminder_due_at(SurveyPolicy(reminder=timedelta(hours=80)), sent_at=SENT) is None
    just_before = SurveyPolicy(reminder=timedelta(hours=72) - timedelta(seconds=1))
    assert reminder_due_at(just_before, sent_at=SENT) == SENT + just_before.reminder


def test_no_reminder_when_quiet_hours_push_it_past_expiry() -> None:
    policy = SurveyPolicy(reminder=timedelta(hours=25), expiry=timedelta(hours=30))
    sent = utc(2026, 2, 1, 20, 30)  # 21:30 next day is quiet; 09:00 after is 36.5 h: too late
    assert reminder_due_at(policy, sent_at=sent) is None
    sent = utc(2026, 2, 1, 19, 30)  # 20:30 next day: fine
    assert reminder_due_at(policy, sent_at=sent) == utc(2026, 2, 2, 20, 30)


def test_is_quiet_uses_local_time() -> None:
    assert is_quiet(POLICY.quiet_hours, utc(2026, 1, 5, 14, 0), SHANGHAI)  # 22:00 there
    assert not is_quiet(POLICY.quiet_hours, utc(2026, 1, 5, 14, 0), UTC)
    assert not is_quiet(QuietHours.off(), utc(2026, 1, 5, 23, 0), UTC)
    assert is_quiet(QuietHours(time(21, 0), time(9, 0)), utc(2026, 1, 5, 21, 0), UTC)
