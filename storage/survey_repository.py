"""The queries survey delivery needs: load a survey with its visit and customer, move it on.

Like the other repositories it works inside the caller's session and never commits. Every state
change is one conditional UPDATE (`… WHERE state IN (…)`) that reports whether it happened, so
two jobs racing over one survey (the send and the expiry, or a job re-run after a crash) cannot
both move it: the loser sees False and leaves it alone. This is also what SQLite needs: its
transactions are not isolated before their first write (see storage.db), so a read-then-write
would act on a stale reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Customer, Survey, SurveyState, Visit

__all__ = ["SurveyDelivery", "SurveyRepository"]


def _changed(result: Result[Any]) -> bool:
    return cast(CursorResult[Any], result).rowcount > 0


@dataclass(frozen=True, slots=True)
class SurveyDelivery:
    """A survey with what its message needs: the visit it asks about, the customer it goes to."""

    survey: Survey
    visit: Visit
    customer: Customer


# Built once: building a statement and its cache key costs more CPU than running it, and a tap
# on a score runs this one.
_FOR_DELIVERY = (
    select(Survey, Visit, Customer)
    .join(Visit, Visit.id == Survey.visit_id)
    .join(Customer, Customer.id == Survey.customer_id)
    .where(Survey.id == bindparam("survey_id"))
    .execution_options(populate_existing=True)
)


class SurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_delivery(self, survey_id: int) -> SurveyDelivery | None:
        """The survey, its visit and its customer as they are now; None if there is no such
        survey. Rows already in the session are refreshed, not served from its identity map."""
        row = (await self._session.execute(_FOR_DELIVERY, {"survey_id": survey_id})).first()
        if row is None:
            return None
        return SurveyDelivery(survey=row[0], visit=row[1], customer=row[2])

    async def mark_sent(
        self,
        survey_id: int,
        *,
        sent_at: datetime,
        chat_id: int,
        message_id: int,
        expires_at: datetime,
    ) -> bool:
        """scheduled → sent, remembering where the message went; False if it was not scheduled
        any more."""
        return await self._move(
            survey_id,
            (SurveyState.SCHEDULED,),
            state=SurveyState.SENT,
            sent_at=sent_at,
            chat_id=chat_id,
            message_id=message_id,
            expires_at=expires_at,
        )

    async def close(
        self,
        survey_id: int,
        state: SurveyState,
        reason: str,
        *,
        now: datetime,
        from_states: Iterable[SurveyState],
    ) -> bool:
        """End the survey (skipped, expired or failed) with the reason, if it is still in one of
        ``from_states``; False otherwise. The reason is cut to the column's 512 characters."""
        if state not in (SurveyState.SKIPPED, SurveyState.EXPIRED, SurveyState.FAILED):
            raise ValueError(f"{state} does not close a survey")
        return await self._move(
            survey_id,
            tuple(from_states),
            state=state,
            state_reason=reason[:512],
            closed_at=now,
        )

    async def mark_reminded(self, survey_id: int, *, at: datetime) -> bool:
        """Record the one reminder; False if the survey is not waiting for an answer any more
        or was reminded already."""
        result = await self._session.execute(
            update(Survey)
            .where(
                Survey.id == survey_id,
                Survey.state == SurveyState.SENT,
                Survey.reminder_sent_at.is_(None),
            )
            .values(reminder_sent_at=at)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def unmark_reminded(self, survey_id: int) -> None:
        """Undo `mark_reminded` after a reminder that could not be sent, so it can be retried."""
        await self._session.execute(
            update(Survey)
            .where(Survey.id == survey_id, Survey.state == SurveyState.SENT)
            .values(reminder_sent_at=None)
            .execution_options(synchronize_session=False)
        )

    async def mark_customer_surveyed(self, customer_id: int, *, at: datetime) -> None:
        """The customer was asked at ``at``: the cooldown counts from here."""
        await self._session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(last_surveyed_at=at)
            .execution_options(synchronize_session=False)
        )

    async def mark_customer_unreachable(self, customer_id: int, *, at: datetime) -> bool:
        """Telegram refused to deliver to the customer (403): no more surveys until they start
        the bot again. Keeps the first such moment; False if they were marked already."""
        result = await self._session.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.unreachable_at.is_(None))
            .values(unreachable_at=at)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def _move(
        self, survey_id: int, from_states: tuple[SurveyState, ...], **values: Any
    ) -> bool:
        result = await self._session.execute(
            update(Survey)
            .where(Survey.id == survey_id, Survey.state.in_(from_states))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)
