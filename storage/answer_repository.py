"""The queries of the customer's conversation: answers, their reason chips, and their step.

Works inside the caller's session and never commits (see storage.repositories). Every move of a
conversation is one conditional UPDATE on the answer's `stage` that reports whether it happened,
so a replayed or doubled tap cannot move it twice: the loser sees False.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import (
    Answer,
    AnswerReason,
    AnswerStage,
    Customer,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
)

__all__ = ["AnswerRepository", "AnswerWithContext"]


def _changed(result: Result[Any]) -> bool:
    return cast(CursorResult[Any], result).rowcount > 0


@dataclass(frozen=True, slots=True)
class AnswerWithContext:
    """An answer with who gave it and, for a survey answer, the visit it is about."""

    answer: Answer
    customer: Customer
    visit: Visit | None


class AnswerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- answering a survey ----------------------------------------------------------------

    async def answer_survey(
        self,
        survey_id: int,
        *,
        customer_id: int,
        scale: SurveyScale,
        score: int,
        stage: AnswerStage,
        now: datetime,
        sentiment_label: SentimentLabel | None = None,
    ) -> int | None:
        """sent → answered, and the answer recorded, in one go; the answer's id, or None when
        the survey was not waiting for an answer (answered already, closed, never sent)."""
        moved = await self._session.execute(
            update(Survey)
            .where(Survey.id == survey_id, Survey.state == SurveyState.SENT)
            .values(state=SurveyState.ANSWERED, answered_at=now)
            .execution_options(synchronize_session=False)
        )
        if not _changed(moved):
            return None
        insert = insert_for(self._session)
        return await self._session.scalar(
            insert(Answer)
            .values(
                survey_id=survey_id,
                customer_id=customer_id,
                unsolicited=False,
                scale=scale,
                score=score,
                stage=stage,
                sentiment_label=sentiment_label,
                created_at=now,
                updated_at=now,
            )
            # Belt and braces: the survey's state already admits one answer only.
            .on_conflict_do_nothing(index_elements=[Answer.survey_id])
            .returning(Answer.id)
        )

    async def add_unsolicited(self, customer_id: int, *, now: datetime, **values: object) -> int:
        """Feedback with no survey, finished at once; ``values``: comment, media, sentiment."""
        answer = Answer(
            customer_id=customer_id,
            unsolicited=True,
            stage=AnswerStage.DONE,
            completed_at=now,
            created_at=now,
            updated_at=now,
            **values,
        )
        self._session.add(answer)
        await self._session.flush()
        return answer.id

    # -- reading -----------------------------------------------------------------------------

    async def with_context(self, answer_id: int) -> AnswerWithContext | None:
        """The answer as it is now (not from the session's identity map), its customer and
        its visit."""
        row = (
            await self._session.execute(
                select(Answer, Customer, Visit)
                .join(Customer, Customer.id == Answer.customer_id)
                .outerjoin(Survey, Survey.id == Answer.survey_id)
                .outerjoin(Visit, Visit.id == Survey.visit_id)
                .where(Answer.id == answer_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        if row is None:
            return None
        return AnswerWithContext(answer=row[0], customer=row[1], visit=row[2])

    async def latest_open(
        self, customer_id: int, *, since: datetime, stages: Iterable[AnswerStage]
    ) -> int | None:
        """The customer's most recent answer touched since ``since`` and at one of ``stages``."""
        return await self._session.scalar(
            select(Answer.id)
            .where(
                Answer.customer_id == customer_id,
                Answer.stage.in_(tuple(stages)),
                Answer.updated_at >= since,
            )
            .order_by(Answer.updated_at.desc(), Answer.id.desc())
            .limit(1)
        )

    async def has_pending_survey(self, customer_id: int) -> bool:
        """Is a survey of the customer out, waiting for a tap?"""
        found = await self._session.scalar(
            select(Survey.id)
            .where(Survey.customer_id == customer_id, Survey.state == SurveyState.SENT)
            .limit(1)
        )
        return found is not None

    # -- reasons -----------------------------------------------------------------------------

    async def chosen_reasons(self, answer_id: int) -> list[Reason]:
        rows = await self._session.scalars(
            select(Reason)
            .join(AnswerReason, AnswerReason.reason_id == Reason.id)
            .where(AnswerReason.answer_id == answer_id)
            .order_by(Reason.position, Reason.id)
        )
        return list(rows)

    async def toggle_reason(self, answer_id: int, reason_id: int) -> bool:
        """Select the reason, or clear it if it was selected; True when it is selected now."""
        insert = insert_for(self._session)
        added = await self._session.execute(
            insert(AnswerReason)
            .values(answer_id=answer_id, reason_id=reason_id)
            .on_conflict_do_nothing()
        )
        if _changed(added):
            return True
        await self._session.execute(
            delete(AnswerReason).where(
                AnswerReason.answer_id == answer_id, AnswerReason.reason_id == reason_id
            )
        )
        return False

    # -- moving on ---------------------------------------------------------------------------

    async def move(
        self,
        answer_id: int,
        *,
        from_stage: AnswerStage,
        to_stage: AnswerStage,
        now: datetime,
        **values: object,
    ) -> bool:
        """Move the answer from one step to the next, with ``values``; False when it was not at
        ``from_stage`` (a stale or repeated button)."""
        if to_stage is AnswerStage.DONE:
            values.setdefault("completed_at", now)
            values.setdefault("prompt_message_id", None)
        result = await self._session.execute(
            update(Answer)
            .where(Answer.id == answer_id, Answer.stage == from_stage)
            .values(stage=to_stage, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def update(self, answer_id: int, *, now: datetime, **values: object) -> None:
        await self._session.execute(
            update(Answer)
            .where(Answer.id == answer_id)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )

    async def correct_sentiment(self, answer_id: int, label: SentimentLabel) -> bool:
        """Staff's reading of the answer's sentiment, kept beside the bot's; False when it was
        already so (a repeated tap). `updated_at` is left alone: it says when the customer last
        answered, and words soon after that add to the answer."""
        result = await self._session.execute(
            update(Answer)
            .where(
                Answer.id == answer_id,
                or_(Answer.sentiment_corrected.is_(None), Answer.sentiment_corrected != label),
            )
            .values(sentiment_corrected=label)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def set_prompt(self, answer_id: int, *, stage: AnswerStage, message_id: int) -> None:
        """The bot message holding the buttons of the answer's current step (if still there)."""
        await self._session.execute(
            update(Answer)
            .where(Answer.id == answer_id, Answer.stage == stage)
            .values(prompt_message_id=message_id)
            .execution_options(synchronize_session=False)
        )
