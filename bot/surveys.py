"""Surveys go out: the jobs that send a survey, remind about it once, and close it when it is over.

`SurveyService` is the domain side of three job kinds (see `register`); the scheduler claims the
jobs and calls it, the rate limiter paces and retries every send underneath. Each handler
re-reads the survey first and acts only if it is still in the state the job was meant for, so a
job that runs twice (after a crash, or racing another job) does nothing the second time.

The life of a survey (columns on `Survey`, reasons in `state_reason`):

    scheduled ──send──► sent ──(tap: next issue)──► answered
        │                └──expire──► expired "unanswered"
        ├─► skipped "erased" | "opted_out" | "unreachable" | "cooldown"   (checked again here)
        ├─► expired "never_started" (the customer never started the bot) | "too_late"
        └─► failed "unreachable: <Telegram>" (403) | "rejected: <Telegram>" (400)
                   | "send_failed: <error>" (5xx/timeouts outlasted every retry)

Sending, and the duplicate window. Telegram has no idempotency key, so "sent" can only be
recorded after Telegram has accepted the message. The write happens straight after the answer,
before anything else, and cancellation cannot cut it off (`run_to_completion`); so a survey can
go out twice only if the process dies between Telegram's OK and that commit: at most one survey
per worker (job in flight, WORKER_CONCURRENCY) of the process that died. Fewer in practice:
only the sends answered in the last few milliseconds before the crash, as the limiter spaces
them ~34 ms apart — usually none or one. Closing that window entirely would mean one send at a
time per process, which at Telegram's round-trip times cannot reach 30/s.

Survey messages and reminders are sent inside `broadcast()`, so PAID_BROADCAST applies to them
(and to nothing else the bot sends).

Failures. 403 (blocked, never started, deactivated): the customer becomes unreachable and the
survey fails; no retry, Telegram would only refuse again. 400: the survey fails with Telegram's
description. 5xx and timeouts: the limiter retries with backoff and jitter (SEND_ATTEMPTS); if
they outlast that, the job itself is retried later by the scheduler (JOB_RETRY_DELAY, doubling),
so a Telegram outage of minutes loses nothing, and only after JOB_ATTEMPTS does the survey fail
with the reason ("send_failed: …"). Chosen over failing at once because a survey failed is a
customer never asked, while a survey late by minutes is still a good survey; the expiry job
closes it ("too_late") should it never get through in time.

The reminder is marked before it is sent, the other way round from the survey: a crash at the
wrong moment then loses a reminder rather than sending two, since a second nudge is worse than
none. A reminder that fails transiently is un-marked and retried like any job.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message, ReplyParameters
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.callbacks import score_keyboard
from bot.clock import Clock
from bot.policy import (
    SurveyPolicy,
    expires_at,
    expiry_reason,
    is_quiet,
    next_allowed,
    reminder_due_at,
    skip_reason,
)
from bot.ratelimit import broadcast
from bot.reconnect import retry_while_disconnected
from bot.scheduler import Scheduler, run_to_completion
from bot.texts import Texts
from bot.visits import EXPIRE_SURVEY, SEND_SURVEY
from storage.jobs import ClaimedJob, JobQueue
from storage.models import Customer, Survey, SurveyScale, SurveyState, Visit
from storage.survey_repository import SurveyDelivery, SurveyRepository

__all__ = [
    "EXPIRE_SURVEY",
    "SEND_SURVEY",
    "SURVEY_REMINDER",
    "FailReason",
    "MessageSender",
    "Outcome",
    "SurveyMessage",
    "SurveyService",
    "compose_survey",
    "expiry_job_key",
    "reminder_job_key",
    "survey_question",
    "visit_day",
]

log = logging.getLogger(__name__)

#: Job kind: the one reminder about a sent, unanswered survey. Payload ``{"survey_id": int}``.
SURVEY_REMINDER = "survey_reminder"

# How often `expire` re-reads a survey that changed under it before leaving it to its next job.
_EXPIRE_ROUNDS = 3


def reminder_job_key(survey_id: int, at: datetime | None = None) -> str:
    """Dedupe key of the survey's reminder job; ``at`` for one moved out of quiet hours."""
    base = f"survey:{survey_id}:remind"
    return base if at is None else f"{base}@{int(at.timestamp())}"


def expiry_job_key(survey_id: int, at: datetime) -> str:
    """Dedupe key of an expiry check at ``at``. The first check is scheduled with the survey
    (`bot.visits.expire_job_key`); sending moves the expiry later, and each later check gets a
    key of its own, since a key is used once for good."""
    return f"survey:{survey_id}:expire@{int(at.timestamp())}"


class Outcome(enum.StrEnum):
    """What a survey job did (returned for tests and logs; the scheduler only needs it to
    return)."""

    SENT = "sent"
    REMINDED = "reminded"
    WAITING = "waiting"  # the customer has not started the bot yet
    SKIPPED = "skipped"
    EXPIRED = "expired"
    FAILED = "failed"
    RESCHEDULED = "rescheduled"  # checked too early: another job checks again later
    NOTHING = "nothing"  # the survey had moved on already


class FailReason(enum.StrEnum):
    """Why a survey failed: stored as ``"<reason>: <detail>"``. Never rename the values."""

    UNREACHABLE = "unreachable"  # Telegram answered 403
    REJECTED = "rejected"  # Telegram answered 400
    SEND_FAILED = "send_failed"  # 5xx or timeouts outlasted every retry, or another error


class MessageSender(Protocol):
    """What the service needs of aiogram's `Bot` (a fake in service tests)."""

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        reply_parameters: ReplyParameters | None = None,
    ) -> Message: ...


# ------------------------------------------------------------------------------ the message


@dataclass(frozen=True, slots=True)
class SurveyMessage:
    text: str
    keyboard: InlineKeyboardMarkup


def visit_day(occurred_at: datetime, now: datetime, zone: tzinfo, words: Texts, locale: str) -> str:
    """When the visit was, as the customer says it where they are: "today", "yesterday",
    "on Monday" within the week, else "on 3 January"."""
    visited = occurred_at.astimezone(zone).date()
    days = (now.astimezone(zone).date() - visited).days
    if days <= 0:
        return words.render(texts.SURVEY_TODAY, locale)
    if days == 1:
        return words.render(texts.SURVEY_YESTERDAY, locale)
    if days < 7:
        return words.render(texts.SURVEY_ON_WEEKDAY, locale, weekday=words.weekday(visited, locale))
    return words.render(texts.SURVEY_ON_DATE, locale, date=words.date(visited, locale))


def survey_question(
    visit: Visit, customer: Customer, *, words: Texts, now: datetime, zone: tzinfo
) -> str:
    """The question, in the customer's language: their first name, the place or service, and
    the day of the visit."""
    locale = words.locale_for(customer.language)
    values = {
        "name": words.name(customer.first_name, locale),
        "location": (visit.location or "").strip(),
        "service": (visit.service or "").strip(),
        "when": visit_day(visit.occurred_at, now, zone, words, locale),
    }
    if values["location"] and values["service"]:
        question = texts.SURVEY_SERVICE_AT_LOCATION
    elif values["location"]:
        question = texts.SURVEY_AT_LOCATION
    elif values["service"]:
        question = texts.SURVEY_SERVICE
    else:
        question = texts.SURVEY_AT_BUSINESS
    return words.render(question, locale, **values)


def compose_survey(
    survey_id: int,
    scale: SurveyScale,
    visit: Visit,
    customer: Customer,
    *,
    words: Texts,
    now: datetime,
    zone: tzinfo,
) -> SurveyMessage:
    """The survey message: the question, the hint of the survey's scale, the score buttons."""
    locale = words.locale_for(customer.language)
    question = survey_question(visit, customer, words=words, now=now, zone=zone)
    hint = texts.SURVEY_HINT_NPS if scale is SurveyScale.NPS else texts.SURVEY_HINT_CSAT
    text = f"{question}\n\n{words.render(hint, locale)}"
    return SurveyMessage(text=text, keyboard=score_keyboard(survey_id, scale))


# ------------------------------------------------------------------------------ the service


class SurveyService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        policy: SurveyPolicy,
        clock: Clock,
        bot: MessageSender,
        *,
        words: Texts,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self.policy = policy
        self._clock = clock
        self._bot = bot
        self._words = words

    def register(self, scheduler: Scheduler) -> None:
        """Give the scheduler this service's job kinds."""
        scheduler.register(SEND_SURVEY, self.handle_send, on_give_up=self.send_gave_up)
        scheduler.register(SURVEY_REMINDER, self.handle_reminder)
        scheduler.register(EXPIRE_SURVEY, self.handle_expiry)

    # -- job handlers: payload {"survey_id": int} ---------------------------------------------

    async def handle_send(self, job: ClaimedJob) -> Outcome:
        return await self.send(_survey_id(job))

    async def handle_reminder(self, job: ClaimedJob) -> Outcome:
        return await self.remind(_survey_id(job))

    async def handle_expiry(self, job: ClaimedJob) -> Outcome:
        return await self.expire(_survey_id(job))

    async def send_gave_up(self, job: ClaimedJob, error: BaseException) -> None:
        """The send job failed for the last time: the survey fails with the reason."""
        detail = error.message if isinstance(error, TelegramAPIError) else str(error)
        reason = f"{FailReason.SEND_FAILED}: {type(error).__name__}"
        if detail:
            reason += f": {detail}"
        survey_id = _survey_id(job)
        async with self._sessions.begin() as session:
            closed = await SurveyRepository(session).close(
                survey_id,
                SurveyState.FAILED,
                reason,
                now=self._clock.now(),
                from_states=(SurveyState.SCHEDULED,),
            )
        if closed:
            log.warning("Survey %d failed: %s", survey_id, FailReason.SEND_FAILED)

    # -- the work ------------------------------------------------------------------------------

    async def send(self, survey_id: int) -> Outcome:
        """Send a scheduled survey, if it still should go; see the module docstring."""
        now = self._clock.now()
        found = await self._load(survey_id)
        if found is None or found.survey.state is not SurveyState.SCHEDULED:
            return Outcome.NOTHING
        survey, visit, customer = found.survey, found.visit, found.customer
        # The customer may have opted out, blocked the bot or been surveyed since scheduling.
        skip = skip_reason(
            self.policy,
            due_at=now,
            last_surveyed_at=customer.last_surveyed_at,
            opted_out=customer.opted_out_at is not None,
            unreachable=customer.unreachable_at is not None,
            erased=customer.erased_at is not None,
        )
        if skip is not None:
            return await self._close(survey, SurveyState.SKIPPED, skip.value, now)
        started = customer.telegram_user_id is not None and customer.started_at is not None
        late = expiry_reason(self.policy, now=now, due_at=survey.due_at, started=started)
        if late is not None:
            return await self._close(survey, SurveyState.EXPIRED, late.value, now)
        if not started or customer.telegram_user_id is None:
            # Waits for /start (whose code schedules a new send); the expiry job closes it
            # ("never_started") if that does not come in time.
            return Outcome.WAITING
        zone = self.policy.zone_for(customer.timezone)
        message = compose_survey(
            survey.id, survey.scale, visit, customer, words=self._words, now=now, zone=zone
        )
        try:
            with broadcast():
                sent = await self._bot.send_message(
                    customer.telegram_user_id, message.text, reply_markup=message.keyboard
                )
        except TelegramForbiddenError as error:
            reason = f"{FailReason.UNREACHABLE}: {error.message}"
            if not await self._unreachable(customer, now, survey=survey, reason=reason):
                return Outcome.NOTHING
            log.info("Survey %d failed: %s", survey.id, FailReason.UNREACHABLE)
            return Outcome.FAILED
        except TelegramBadRequest as error:
            reason = f"{FailReason.REJECTED}: {error.message}"
            return await self._close(survey, SurveyState.FAILED, reason, now)
        # Anything else (5xx or timeouts past the limiter's tries, the database) propagates:
        # the scheduler retries the job later, and fails the survey via send_gave_up at last.
        # Waits out a database restart: failing here would send the survey again.
        await run_to_completion(
            retry_while_disconnected(
                lambda: self._record_sent(survey, customer, sent, zone), what="recording a survey"
            )
        )
        return Outcome.SENT

    async def remind(self, survey_id: int) -> Outcome:
        """Send the one reminder, as a reply to the survey, while it is still unanswered."""
        now = self._clock.now()
        found = await self._load(survey_id)
        if found is None:
            return Outcome.NOTHING
        survey, customer = found.survey, found.customer
        if (
            survey.state is not SurveyState.SENT
            or survey.reminder_sent_at is not None
            or survey.sent_at is None
            or survey.chat_id is None
            or survey.message_id is None
            or customer.opted_out_at is not None
            or customer.unreachable_at is not None
            or customer.erased_at is not None
        ):
            return Outcome.NOTHING
        until = expires_at(self.policy, due_at=survey.due_at, sent_at=survey.sent_at)
        if now >= until:
            return Outcome.NOTHING
        zone = self.policy.zone_for(customer.timezone)
        if is_quiet(self.policy.quiet_hours, now, zone):
            # Due outside quiet hours, but it ran late (a backlog, a restart): wait again.
            at = next_allowed(self.policy.quiet_hours, now, zone)
            if at >= until:
                return Outcome.NOTHING
            await self._jobs.schedule(
                SURVEY_REMINDER,
                at,
                {"survey_id": survey.id},
                dedupe_key=reminder_job_key(survey.id, at),
            )
            return Outcome.RESCHEDULED
        async with self._sessions.begin() as session:
            if not await SurveyRepository(session).mark_reminded(survey.id, at=now):
                return Outcome.NOTHING
        locale = self._words.locale_for(customer.language)
        name = self._words.name(customer.first_name, locale)
        text = self._words.render(texts.SURVEY_REMINDER, locale, name=name)
        reply = ReplyParameters(message_id=survey.message_id, allow_sending_without_reply=True)
        try:
            with broadcast():
                await self._bot.send_message(survey.chat_id, text, reply_parameters=reply)
        except TelegramForbiddenError:
            await self._unreachable(customer, now)
            return Outcome.FAILED
        except TelegramBadRequest as error:
            log.warning("Reminder for survey %d refused by Telegram: %s", survey.id, error.message)
            return Outcome.FAILED
        except Exception:
            # Not sent, as far as we can tell: free the mark so that the retry can send it.
            # (Cancelled at shutdown instead, it may have gone: then the mark stays.)
            await run_to_completion(self._unmark_reminded(survey.id))
            raise
        return Outcome.REMINDED

    async def expire(self, survey_id: int) -> Outcome:
        """Close the survey if its time is up (with the reason); else check again when it will
        be, as sending moves the expiry later."""
        for _ in range(_EXPIRE_ROUNDS):
            now = self._clock.now()
            found = await self._load(survey_id)
            if found is None or found.survey.state not in (SurveyState.SCHEDULED, SurveyState.SENT):
                return Outcome.NOTHING
            survey, customer = found.survey, found.customer
            started = customer.telegram_user_id is not None and customer.started_at is not None
            reason = expiry_reason(
                self.policy,
                now=now,
                due_at=survey.due_at,
                sent_at=survey.sent_at,
                started=started,
            )
            if reason is None:
                at = expires_at(self.policy, due_at=survey.due_at, sent_at=survey.sent_at)
                await self._jobs.schedule(
                    EXPIRE_SURVEY,
                    at,
                    {"survey_id": survey.id},
                    dedupe_key=expiry_job_key(survey.id, at),
                )
                return Outcome.RESCHEDULED
            async with self._sessions.begin() as session:
                if await SurveyRepository(session).close(
                    survey.id,
                    SurveyState.EXPIRED,
                    reason.value,
                    now=now,
                    from_states=(survey.state,),
                ):
                    return Outcome.EXPIRED
            # It changed under us (sent or answered just now): look again.
        return Outcome.NOTHING

    # -- inside ---------------------------------------------------------------------------------

    async def _load(self, survey_id: int) -> SurveyDelivery | None:
        # A read-only session of its own, closed before any send: no transaction or pooled
        # connection is held while the message waits for the rate limiter.
        async with self._sessions() as session:
            return await SurveyRepository(session).for_delivery(survey_id)

    async def _record_sent(
        self, survey: Survey, customer: Customer, sent: Message, zone: tzinfo
    ) -> None:
        """Telegram accepted the survey: record it at once, with its reminder, in one
        transaction. (Its expiry moved to sent_at + SURVEY_EXPIRY; the expiry job, due
        earlier, finds that and checks again then.)"""
        sent_at = self._clock.now()
        until = expires_at(self.policy, due_at=survey.due_at, sent_at=sent_at)
        async with self._sessions.begin() as session:
            repository = SurveyRepository(session)
            recorded = await repository.mark_sent(
                survey.id,
                sent_at=sent_at,
                chat_id=sent.chat.id,
                message_id=sent.message_id,
                expires_at=until,
            )
            if not recorded:
                # Closed meanwhile by a racing job (it expired this very moment): the message
                # is out, but the survey stays closed.
                log.info("Survey %d was closed while its message was on the way", survey.id)
                return
            await repository.mark_customer_surveyed(customer.id, at=sent_at)
            remind_at = reminder_due_at(self.policy, sent_at=sent_at, zone=zone)
            if remind_at is not None:
                await self._jobs.schedule(
                    SURVEY_REMINDER,
                    remind_at,
                    {"survey_id": survey.id},
                    dedupe_key=reminder_job_key(survey.id),
                    session=session,
                )

    async def _close(
        self, survey: Survey, state: SurveyState, reason: str, now: datetime
    ) -> Outcome:
        async with self._sessions.begin() as session:
            closed = await SurveyRepository(session).close(
                survey.id, state, reason, now=now, from_states=(SurveyState.SCHEDULED,)
            )
        if not closed:
            return Outcome.NOTHING
        # The reason's code only: what follows the colon is Telegram's text.
        log.info("Survey %d %s: %s", survey.id, state.value, reason.split(":", 1)[0])
        return Outcome(state.value)

    async def _unreachable(
        self, customer: Customer, now: datetime, *, survey: Survey | None = None, reason: str = ""
    ) -> bool:
        """Telegram answered 403: the customer is unreachable, and ``survey`` (if given) fails
        with ``reason``, in one transaction. True if the survey was failed."""
        async with self._sessions.begin() as session:
            repository = SurveyRepository(session)
            await repository.mark_customer_unreachable(customer.id, at=now)
            if survey is None:
                return False
            return await repository.close(
                survey.id,
                SurveyState.FAILED,
                reason,
                now=now,
                from_states=(SurveyState.SCHEDULED,),
            )

    async def _unmark_reminded(self, survey_id: int) -> None:
        async with self._sessions.begin() as session:
            await SurveyRepository(session).unmark_reminded(survey_id)


def _survey_id(job: ClaimedJob) -> int:
    return int(job.payload["survey_id"])
