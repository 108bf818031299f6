"""Cases in the database: opening one for an answer, and raising it when more comes to light.

Works inside the caller's session and never commits. One case per answer (`cases.answer_id` is
unique): a later trigger on the same answer (the customer asks to be contacted after a low
score) raises the case's severity and pulls its first-response time forward rather than opening
a second case. Both are conditional statements, so repeating a call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import Case, CaseSeverity, CaseState, CaseTrigger

__all__ = ["SEVERITY_ORDER", "TRIGGER_ORDER", "CaseMark", "CaseRepository"]

#: Weakest first.
SEVERITY_ORDER = (CaseSeverity.LOW, CaseSeverity.MEDIUM, CaseSeverity.HIGH, CaseSeverity.CRITICAL)
#: Why a case was opened, weakest first: a case shows its strongest reason.
TRIGGER_ORDER = (
    CaseTrigger.UNSOLICITED,
    CaseTrigger.NEGATIVE_COMMENT,
    CaseTrigger.MIXED,
    CaseTrigger.LOW_SCORE,
    CaseTrigger.CONTACT_REQUESTED,
)


@dataclass(frozen=True, slots=True)
class CaseMark:
    case_id: int
    created: bool
    severity: CaseSeverity
    first_response_due_at: datetime | None


class CaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def mark(
        self,
        *,
        answer_id: int,
        customer_id: int | None,
        trigger: CaseTrigger,
        severity: CaseSeverity,
        first_response_due_at: datetime,
        now: datetime,
    ) -> CaseMark:
        """Open a case for the answer, or raise the one it has; the case as it is after."""
        insert = insert_for(self._session)
        created_id = await self._session.scalar(
            insert(Case)
            .values(
                answer_id=answer_id,
                customer_id=customer_id,
                state=CaseState.OPEN,
                severity=severity,
                trigger=trigger,
                first_response_due_at=first_response_due_at,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[Case.answer_id])
            .returning(Case.id)
        )
        if created_id is None:
            weaker_severity = SEVERITY_ORDER[: SEVERITY_ORDER.index(severity)]
            if weaker_severity:
                await self._execute_where(
                    answer_id, Case.severity.in_(weaker_severity), severity=severity, now=now
                )
            weaker_trigger = TRIGGER_ORDER[: TRIGGER_ORDER.index(trigger)]
            if weaker_trigger:
                await self._execute_where(
                    answer_id, Case.trigger.in_(weaker_trigger), trigger=trigger, now=now
                )
            # Sooner wins; a case already answered keeps its record as it is.
            await self._execute_where(
                answer_id,
                Case.first_responded_at.is_(None),
                Case.first_response_due_at > first_response_due_at,
                first_response_due_at=first_response_due_at,
                now=now,
            )
        case = await self._session.scalar(
            select(Case)
            .where(Case.answer_id == answer_id)
            .execution_options(populate_existing=True)
        )
        if case is None:  # pragma: no cover - the row was written above
            raise LookupError(f"case of answer {answer_id} vanished")
        return CaseMark(
            case_id=case.id,
            created=created_id is not None,
            severity=case.severity,
            first_response_due_at=case.first_response_due_at,
        )

    async def for_answer(self, answer_id: int) -> Case | None:
        return await self._session.scalar(
            select(Case)
            .where(Case.answer_id == answer_id)
            .execution_options(populate_existing=True)
        )

    async def _execute_where(
        self, answer_id: int, *conditions: object, now: datetime, **values: object
    ) -> None:
        await self._session.execute(
            update(Case)
            .where(Case.answer_id == answer_id, *conditions)  # type: ignore[arg-type]
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
