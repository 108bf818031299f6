"""When to ask, whether to ask at all, and when to give up: the survey policy as pure functions.

Every function takes what it needs explicitly — instants, the customer's time zone, and a
`SurveyPolicy` built once from settings — and reads no clock and touches no storage, so the
scheduler, the API and the tests all get the same answer for the same inputs.

Instants in and out are timezone-aware datetimes; results are in UTC, and durations (delay,
cooldown, expiry, reminder) are elapsed time. Quiet hours are local wall-clock hours of the
customer ("not after 21:00 where they are"), so moving a survey out of them goes through the
customer's zone, where a day can have 23 or 25 hours:

- in a spring-forward gap the skipped wall-clock times never happen, so quiet hours that end
  inside the gap end when the gap does;
- in a fall-back overlap an hour happens twice: quiet hours end the first time their end comes
  round, and if the clock falls back out of quiet hours, the moment it does is allowed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.values import QuietHours

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "ExpiryReason",
    "SkipReason",
    "SurveyPolicy",
    "expires_at",
    "expiry_reason",
    "is_quiet",
    "next_allowed",
    "reminder_due_at",
    "skip_reason",
    "survey_due_at",
]


class SkipReason(enum.StrEnum):
    """Why a survey was not sent at all. The values are stored: never rename them."""

    ERASED = "erased"  # the customer asked to be forgotten (/forget)
    OPTED_OUT = "opted_out"  # the customer said /stop
    UNREACHABLE = "unreachable"  # Telegram answered 403: blocked the bot
    COOLDOWN = "cooldown"  # surveyed less than SURVEY_COOLDOWN before


class ExpiryReason(enum.StrEnum):
    """Why a survey ended without an answer. The values are stored: never rename them."""

    UNANSWERED = "unanswered"  # sent, and no answer within SURVEY_EXPIRY
    NEVER_STARTED = "never_started"  # the customer never started the bot in time to be asked
    TOO_LATE = "too_late"  # could not be sent within SURVEY_EXPIRY of its due time


_EVENINGS_AND_NIGHTS = QuietHours(time(21, 0), time(9, 0))
_UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class SurveyPolicy:
    """The numbers of the survey policy; defaults are the settings' defaults."""

    delay: timedelta = timedelta(hours=2)
    quiet_hours: QuietHours = _EVENINGS_AND_NIGHTS
    #: The zone of customers whose own is unknown (the TIMEZONE setting).
    time_zone: tzinfo = _UTC_ZONE
    cooldown: timedelta = timedelta(days=30)
    expiry: timedelta = timedelta(hours=72)
    #: Zero means no reminder.
    reminder: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> SurveyPolicy:
        return cls(
            delay=settings.survey_delay,
            quiet_hours=settings.quiet_hours,
            time_zone=settings.zone,
            cooldown=settings.survey_cooldown,
            expiry=settings.survey_expiry,
            reminder=settings.survey_reminder,
        )

    def zone_for(self, name: str | None) -> tzinfo:
        """The customer's zone by IANA name; TIMEZONE when it is unknown or not a real zone.

        A bad stored name falls back rather than failing: a survey at a slightly wrong hour is
        better than none, and names are validated where they come in.
        """
        if not name:
            return self.time_zone
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return self.time_zone


# ----------------------------------------------------------------------------- quiet hours


def is_quiet(quiet_hours: QuietHours, moment: datetime, zone: tzinfo) -> bool:
    """Whether ``moment`` falls inside quiet hours on the wall clock of ``zone``."""
    return _utc(moment, "moment").astimezone(zone).time() in quiet_hours


def next_allowed(quiet_hours: QuietHours, moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` itself when it is outside quiet hours in ``zone``; else the first instant
    after it that is not quiet — normally the minute quiet hours end. In UTC.

    Between two clock changes the wall clock runs evenly, so from a quiet instant the end of
    quiet hours is reached after a computable time, unless the zone's offset changes first.
    Then the walk restarts at the change: after a jump forward the wall clock may be past the
    end already; after a jump back it may have fallen out of quiet hours (quiet 02:30-06:00 is
    left at 03:00 summer time, which becomes 02:00 winter time).
    """
    result = _utc(moment, "moment")
    start, end = quiet_hours.start, quiet_hours.end
    if start is None or end is None:
        return result
    # Each round either answers or moves to the next clock change; real zones change at most
    # twice a day (Samoa skipped a whole day in 2011: two rounds), so a few rounds suffice.
    for _ in range(8):
        local = result.astimezone(zone)
        if local.time() not in quiet_hours:
            return result
        end_date = local.date()
        if quiet_hours.wraps_midnight and local.time() >= start:
            end_date += timedelta(days=1)
        offset = local.utcoffset()
        if offset is None:
            raise ValueError(f"{zone!r} gives no UTC offset")
        wall_end = datetime.combine(end_date, end)
        reached = (wall_end - offset).replace(tzinfo=UTC)  # if the offset holds until then
        change = _offset_change(zone, offset, result, reached)
        if change is None:
            return reached
        result = change
    return result


def _offset_change(
    zone: tzinfo, offset: timedelta, after: datetime, until: datetime
) -> datetime | None:
    """The first instant in (after, until] at which ``zone``'s UTC offset is no longer
    ``offset``, or None if it is unchanged at ``until`` (zones do not change and change back
    within hours). Found to the second: time zone data uses whole seconds."""
    if until.astimezone(zone).utcoffset() == offset:
        return None
    low, high = math.floor(after.timestamp()), math.ceil(until.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


# --------------------------------------------------------------------------------- surveys


def survey_due_at(
    policy: SurveyPolicy, occurred_at: datetime, zone: tzinfo | None = None
) -> datetime:
    """When to ask about a visit: SURVEY_DELAY (elapsed time) after it, moved out of the
    customer's quiet hours (``zone``; TIMEZONE when None)."""
    due = _utc(occurred_at, "occurred_at") + policy.delay
    return next_allowed(policy.quiet_hours, due, _zone(policy, zone))


def skip_reason(
    policy: SurveyPolicy,
    *,
    due_at: datetime,
    last_surveyed_at: datetime | None,
    opted_out: bool = False,
    unreachable: bool = False,
    erased: bool = False,
) -> SkipReason | None:
    """Why this survey must not be sent, or None when it may.

    ``last_surveyed_at``: when the customer's previous survey — not this one — was sent, or is
    due if not sent yet; leave out surveys that were skipped or never delivered, since those did
    not ask the customer anything. Surveys less than SURVEY_COOLDOWN apart on either side count,
    so a visit imported late does not slip in before one already scheduled. Checked when the
    survey is scheduled and again just before it is sent, because the customer may have opted
    out or blocked the bot in between. The most lasting reason wins.
    """
    due = _utc(due_at, "due_at")
    if erased:
        return SkipReason.ERASED
    if opted_out:
        return SkipReason.OPTED_OUT
    if unreachable:
        return SkipReason.UNREACHABLE
    if last_surveyed_at is not None:
        last = _utc(last_surveyed_at, "last_surveyed_at")
        if abs(due - last) < policy.cooldown:
            return SkipReason.COOLDOWN
    return None


def expires_at(
    policy: SurveyPolicy, *, due_at: datetime, sent_at: datetime | None = None
) -> datetime:
    """When an unanswered survey ends: SURVEY_EXPIRY after it was sent, or — while it waits for
    a customer who has not started the bot — SURVEY_EXPIRY after it was due."""
    if sent_at is not None:
        return _utc(sent_at, "sent_at") + policy.expiry
    return _utc(due_at, "due_at") + policy.expiry


def expiry_reason(
    policy: SurveyPolicy,
    *,
    now: datetime,
    due_at: datetime,
    sent_at: datetime | None = None,
    started: bool = True,
) -> ExpiryReason | None:
    """Why a survey that has no answer is over at ``now``, or None while it is still open.

    ``started``: whether the customer has started the bot (only then can a survey be sent).
    The expiry instant itself counts as expired.
    """
    if _utc(now, "now") < expires_at(policy, due_at=due_at, sent_at=sent_at):
        return None
    if sent_at is not None:
        return ExpiryReason.UNANSWERED
    return ExpiryReason.TOO_LATE if started else ExpiryReason.NEVER_STARTED


def reminder_due_at(
    policy: SurveyPolicy, *, sent_at: datetime, zone: tzinfo | None = None
) -> datetime | None:
    """When to send the one reminder: SURVEY_REMINDER after the survey, moved out of quiet
    hours. None when reminders are off (0) or when that would be at or after expiry."""
    sent = _utc(sent_at, "sent_at")
    if not policy.reminder:
        return None
    at = next_allowed(policy.quiet_hours, sent + policy.reminder, _zone(policy, zone))
    if at >= expires_at(policy, due_at=sent, sent_at=sent):
        return None
    return at


def _zone(policy: SurveyPolicy, zone: tzinfo | None) -> tzinfo:
    return policy.time_zone if zone is None else zone


def _utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC. All arithmetic and comparison happens there: Python adds and compares
    datetimes that share a zone by their wall clocks, which is off by an hour across a DST
    change. A naive datetime is a bug upstream (time comes from the injected clock, which is
    aware), and guessing its zone would move surveys by hours unnoticed, so it is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)
