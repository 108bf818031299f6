"""A customer's say over their data: /stop (no more questions), /start again (questions back on)
and /forget (erase what is personal, keep the anonymous scores).

`PrivacyService` is the domain side of those commands; the handlers ask for confirmation, call
it and word the reply. Each call is one transaction.

No job is cancelled by any of them. The survey jobs (`bot.surveys`) re-read the survey and its
customer before they act: a send re-checks the policy (`skip_reason`: erased, opted out) and
only sends a survey still scheduled; a reminder goes only for a survey still sent and a customer
neither opted out nor erased; an expiry only closes a survey still scheduled or sent. So /stop
closes the scheduled surveys at once (for the statistics, with the reason), leaves sent ones to
expire unreminded, and their pending jobs find nothing to do.

/forget, in one transaction, for the customer with that Telegram id (not erased before):

- customer row: Telegram id, business ref, name, @username, language and time zone cleared,
  `erased_at` set. The row stays as the anonymous owner of the visits, surveys and answers, so
  the scores keep counting; a later /start from the same person makes a new customer, since
  nothing links them to the old row any more.
- answers: comment, voice note/photo, and the reasons suggested from the comment cleared; score,
  scale, tapped reasons, sentiment, "contact me" and times kept (numbers and choices, no words).
- cases: the text and media of every message (staff replies quote and address the customer),
  the customer as the author of their messages, and the resolution note cleared; the cases with
  their states and times kept (response-time and recovery statistics).
- surveys: a scheduled one is skipped, a sent unanswered one expires, both with reason "erased";
  the chat and message id they went to are forgotten (a private chat's id is the user's id).
- visits: a deep-link visit's id embeds the Telegram user id (`bot.arrivals.link_visit_id`), so
  it becomes ``erased:<row id>``; API/CSV visits keep the business's own id (see
  `PrivacyRepository.rename_link_visits` for why).
- personal links of the customer's ref are deleted: those links stop working.
- an audit entry "customer.erased" names the row (``customer:<id>``) and the counts, nothing
  personal.

What it cannot reach: messages already in Telegram (the customer's chat, case cards and topics in
staff chats) and copies outside the database (logs, backups, the business's own systems).
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.policy import SkipReason
from storage.models import SurveyState
from storage.privacy_repository import PrivacyRepository
from storage.repositories import AuditRepository
from storage.survey_repository import SurveyRepository

__all__ = ["ERASED_ACTION", "ERASED_REASON", "PrivacyService", "StopOutcome"]

log = logging.getLogger(__name__)

#: The audit action of an erasure.
ERASED_ACTION = "customer.erased"
#: Why the surveys of an erased customer closed (skipped when scheduled, expired when sent).
ERASED_REASON = SkipReason.ERASED.value


class StopOutcome(enum.StrEnum):
    STOPPED = "stopped"
    ALREADY = "already"  # had opted out before (the first moment is kept)
    UNKNOWN = "unknown"  # no such (unerased) customer


class PrivacyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def stop(self, telegram_user_id: int) -> StopOutcome:
        """The customer said /stop: no more surveys. Their scheduled surveys are skipped now
        ("opted_out"); sent ones are left to expire, without a reminder."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            privacy = PrivacyRepository(session)
            customer_id = await privacy.opt_out(telegram_user_id, at=now)
            outcome = StopOutcome.STOPPED
            if customer_id is None:
                customer_id = await privacy.customer_id(telegram_user_id)
                if customer_id is None:
                    return StopOutcome.UNKNOWN
                outcome = StopOutcome.ALREADY
            # Also when stopped before: a visit recorded while the /stop was being written may
            # have scheduled one more. (Its send job would skip it anyway; this keeps the
            # statistics right at once.)
            closed = await _close_surveys(
                session,
                customer_id,
                {SurveyState.SCHEDULED: SurveyState.SKIPPED},
                SkipReason.OPTED_OUT.value,
                now,
            )
        log.info("Customer %d opted out (%s); %d surveys skipped", customer_id, outcome, closed)
        return outcome

    async def resume(self, telegram_user_id: int) -> bool:
        """The customer said /start after /stop: surveys again from now on. True if they had
        opted out; surveys skipped meanwhile stay skipped."""
        async with self._sessions.begin() as session:
            resumed = await PrivacyRepository(session).opt_in(telegram_user_id)
        if resumed:
            log.info("A customer opted in again")
        return resumed

    async def forget(self, telegram_user_id: int) -> bool:
        """Erase the customer's personal data, keeping anonymous scores (see the module
        docstring); True if something was erased, False (and nothing changed) for an unknown or
        already erased customer."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            privacy = PrivacyRepository(session)
            target = await privacy.claim_for_erasure(telegram_user_id, at=now)
            if target is None:
                return False
            customer_id = target.customer_id
            closed = await _close_surveys(
                session,
                customer_id,
                {
                    SurveyState.SCHEDULED: SurveyState.SKIPPED,
                    SurveyState.SENT: SurveyState.EXPIRED,
                },
                ERASED_REASON,
                now,
            )
            await privacy.forget_survey_chats(customer_id)
            answers = await privacy.scrub_answers(customer_id)
            messages = await privacy.scrub_cases(target)
            visits = await privacy.rename_link_visits(customer_id)
            links = await privacy.delete_personal_links(target.external_ref)
            await privacy.clear_customer(customer_id)
            await AuditRepository(session).record(
                at=now,
                action=ERASED_ACTION,
                target=f"customer:{customer_id}",
                # Counts only: the entry must not bring back what was just erased.
                new={
                    "surveys_closed": closed,
                    "answers": answers,
                    "case_messages": messages,
                    "link_visits": visits,
                    "personal_links": links,
                },
            )
        log.info("Customer %d erased", customer_id)
        return True


async def _close_surveys(
    session: AsyncSession,
    customer_id: int,
    moves: dict[SurveyState, SurveyState],
    reason: str,
    now: datetime,
) -> int:
    """Close the customer's surveys that are in a state of ``moves`` (from → to) with the
    reason; how many were closed. Each is one conditional write per move, tried in order, so a
    survey sent meanwhile is still caught by a later move (scheduled → sent), and one answered
    meanwhile is left alone."""
    privacy, surveys = PrivacyRepository(session), SurveyRepository(session)
    closed = 0
    for survey_id in await privacy.survey_ids(customer_id, moves):
        for state_from, state_to in moves.items():
            if await surveys.close(survey_id, state_to, reason, now=now, from_states=(state_from,)):
                closed += 1
                break
    return closed
