"""The queries of the customer's conversation: answers, their reason chips, and their step.

Works inside the caller's session and never commits (see storage.repositories). Every move of a
conversation is one conditional UPDATE on the answer's `stage` that reports whether it happened,
so a replayed or doubled tap cannot move it twice: the loser sees False.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Update, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for, insert_for_dialect
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

    async def _dml(self, statement: Any, parameters: dict[str, Any]) -> Result[Any]:
        """A prebuilt INSERT or UPDATE below the statements at the end of this module, run on
        the session's connection: past the ORM's bulk-statement machinery, which they do not
        use (they synchronize no loaded objects), at a fraction of its CPU."""
        session = self._session
        if session.new or session.dirty or session.deleted:
            await session.flush()  # what Session.execute would have done first
        connection = await self._session.connection()
        return await connection.execute(statement, parameters)

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
        moved = await self._dml(_ANSWERED, {"survey_id": survey_id, "now": now})
        if not _changed(moved):
            return None
        inserted = await self._dml(
            _answer_insert(self._session.get_bind().dialect.name),
            {
                "v_survey_id": survey_id,
                "v_customer_id": customer_id,
                "v_scale": scale,
                "v_score": score,
                "v_stage": stage,
                "v_sentiment_label": sentiment_label,
                "now": now,
            },
        )
        return inserted.scalar()

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
        row = (await self._session.execute(_WITH_CONTEXT, {"answer_id": answer_id})).first()
        if row is None:
            return None
        return AnswerWithContext(answer=row[0], customer=row[1], visit=row[2])

    async def latest_open(
        self, customer_id: int, *, since: datetime, stages: Iterable[AnswerStage]
    ) -> int | None:
        """The customer's most recent answer touched since ``since`` and at one of ``stages``."""
        return await self._session.scalar(
            _LATEST_OPEN, {"customer_id": customer_id, "stages": list(stages), "since": since}
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
        result = await self._dml(
            _answer_update(tuple(sorted(values)), moving=True),
            {
                "answer_id": answer_id,
                "from_stage": from_stage,
                "v_stage": to_stage,
                "now": now,
                **{f"v_{name}": value for name, value in values.items()},
            },
        )
        return _changed(result)

    async def update(self, answer_id: int, *, now: datetime, **values: object) -> None:
        await self._dml(
            _answer_update(tuple(sorted(values)), moving=False),
            {
                "answer_id": answer_id,
                "now": now,
                **{f"v_{name}": value for name, value in values.items()},
            },
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
        await self._dml(
            _SET_PROMPT, {"answer_id": answer_id, "at_stage": stage, "v_message_id": message_id}
        )


# -- the conversation's statements, built once ---------------------------------------------------
#
# Every tap and comment runs these. Building a statement and its cache key costs SQLAlchemy more
# CPU than SQLite takes to run it, so they are built once with bound parameters. (A parameter may
# not share a column's name in VALUES or SET: those are "v_<column>".)

_ANSWERED = (
    update(Survey)
    .where(Survey.id == bindparam("survey_id"), Survey.state == SurveyState.SENT)
    .values(state=SurveyState.ANSWERED, answered_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)

_WITH_CONTEXT = (
    select(Answer, Customer, Visit)
    .join(Customer, Customer.id == Answer.customer_id)
    .outerjoin(Survey, Survey.id == Answer.survey_id)
    .outerjoin(Visit, Visit.id == Survey.visit_id)
    .where(Answer.id == bindparam("answer_id"))
    .execution_options(populate_existing=True)
)

_LATEST_OPEN = (
    select(Answer.id)
    .where(
        Answer.customer_id == bindparam("customer_id"),
        Answer.stage.in_(bindparam("stages", expanding=True)),
        Answer.updated_at >= bindparam("since"),
    )
    .order_by(Answer.updated_at.desc(), Answer.id.desc())
    .limit(1)
)

_SET_PROMPT = (
    update(Answer)
    .where(Answer.id == bindparam("answer_id"), Answer.stage == bindparam("at_stage"))
    .values(prompt_message_id=bindparam("v_message_id"))
    .execution_options(synchronize_session=False)
)


def _value(name: str) -> Any:
    """The bound parameter for column ``name`` of answers, with the column's type."""
    return bindparam(f"v_{name}", type_=Answer.__table__.c[name].type)


@cache
def _answer_insert(dialect: str) -> Any:
    """The INSERT of a survey's answer for this dialect (both have ON CONFLICT)."""
    insert = insert_for_dialect(dialect)
    columns = ("survey_id", "customer_id", "scale", "score", "stage", "sentiment_label")
    return (
        insert(Answer)
        .values(
            {
                **{name: _value(name) for name in columns},
                "unsolicited": False,
                "created_at": bindparam("now", type_=Answer.__table__.c.created_at.type),
                "updated_at": bindparam("now", type_=Answer.__table__.c.updated_at.type),
            }
        )
        # Belt and braces: the survey's state already admits one answer only.
        .on_conflict_do_nothing(index_elements=[Answer.survey_id])
        .returning(Answer.id)
    )


@cache
def _answer_update(names: tuple[str, ...], *, moving: bool) -> Update:
    """The UPDATE of an answer setting these columns (and `updated_at`); ``moving``: also its
    stage, only from the stage it is expected at."""
    where = [Answer.id == bindparam("answer_id")]
    values = {name: _value(name) for name in names}
    if moving:
        where.append(Answer.stage == bindparam("from_stage"))
        values["stage"] = _value("stage")
    return (
        update(Answer)
        .where(*where)
        .values(
            {**values, "updated_at": bindparam("now", type_=Answer.__table__.c.updated_at.type)}
        )
        .execution_options(synchronize_session=False)
    )
