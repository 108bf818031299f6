"""Cases in the database: opening one for an answer, and raising it when more comes to light.

Works inside the caller's session and never commits. One case per answer (`cases.answer_id` is
unique): a later trigger on the same answer (the customer asks to be contacted after a low
score) raises the case's severity and pulls its first-response time forward rather than opening
a second case. Both are conditional statements, so repeating a call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.model_repository import CORRECTION_ACTION
from storage.models import (
    Answer,
    AnswerReason,
    AuditEntry,
    Case,
    CaseMessage,
    CaseOffer,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Customer,
    MessageDirection,
    Reason,
    StaffChat,
    Survey,
    Visit,
)

__all__ = [
    "ACTIVE",
    "SEVERITY_ORDER",
    "TRIGGER_ORDER",
    "CaseFile",
    "CaseMark",
    "CaseRepository",
]

#: A case someone still has to act on.
ACTIVE = (CaseState.OPEN, CaseState.TAKEN, CaseState.REOPENED)


def _changed(result: Result[Any]) -> bool:
    return cast(CursorResult[Any], result).rowcount > 0


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A case with everything its card shows."""

    case: Case
    answer: Answer | None
    customer: Customer | None
    visit: Visit | None
    staff_chat: StaffChat | None
    reasons: tuple[Reason, ...]
    # Reasons a model read in the words (offered ones only): shown when none were tapped.
    suggested: tuple[Reason, ...] = ()
    # Who corrected the answer's sentiment last (from the audit log), when staff did.
    corrected_by: str | None = None


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


# Built once (every comment runs it): building a statement and its cache key costs more CPU
# than running it.
_FOR_ANSWER = (
    select(Case)
    .where(Case.answer_id == bindparam("answer_id"))
    .execution_options(populate_existing=True)
)


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
        return await self._session.scalar(_FOR_ANSWER, {"answer_id": answer_id})

    async def _execute_where(
        self, answer_id: int, *conditions: object, now: datetime, **values: object
    ) -> None:
        await self._session.execute(
            update(Case)
            .where(Case.answer_id == answer_id, *conditions)  # type: ignore[arg-type]
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )

    # -- reading -------------------------------------------------------------------------------

    async def file(self, case_id: int) -> CaseFile | None:
        """The case as it is now, with its answer, customer, visit, staff chat and reasons."""
        row = (
            await self._session.execute(
                select(Case, Answer, Customer, Visit, StaffChat)
                .outerjoin(Answer, Answer.id == Case.answer_id)
                .outerjoin(Customer, Customer.id == Case.customer_id)
                .outerjoin(Survey, Survey.id == Answer.survey_id)
                .outerjoin(Visit, Visit.id == Survey.visit_id)
                .outerjoin(StaffChat, StaffChat.id == Case.staff_chat_id)
                .where(Case.id == case_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        if row is None:
            return None
        case, answer = row[0], row[1]
        reasons: tuple[Reason, ...] = ()
        suggested: tuple[Reason, ...] = ()
        corrected_by = None
        if answer is not None:
            reasons = tuple(
                await self._session.scalars(
                    select(Reason)
                    .join(AnswerReason, AnswerReason.reason_id == Reason.id)
                    .where(AnswerReason.answer_id == answer.id)
                    .order_by(Reason.position, Reason.id)
                )
            )
            if not reasons and answer.suggested_reasons:
                suggested = tuple(
                    await self._session.scalars(
                        select(Reason)
                        .where(Reason.code.in_(answer.suggested_reasons), Reason.hidden.is_(False))
                        .order_by(Reason.position, Reason.id)
                    )
                )
            if answer.sentiment_corrected is not None:
                corrected_by = await self.corrected_by(case)
        return CaseFile(case, answer, row[2], row[3], row[4], reasons, suggested, corrected_by)

    async def corrected_by(self, case: Case) -> str | None:
        """Who last corrected the sentiment of the case's answer. The audit log is read from
        the case's opening on, so its index on time keeps this short."""
        return await self._session.scalar(
            select(AuditEntry.actor_name)
            .where(
                AuditEntry.at >= case.created_at,
                AuditEntry.action == CORRECTION_ACTION,
                AuditEntry.target == f"case:{case.id}",
            )
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(1)
        )

    async def has_card(self, case_id: int) -> bool:
        card = await self._session.scalar(select(Case.card_message_id).where(Case.id == case_id))
        return card is not None

    async def in_thread(self, staff_chat_id: int, thread_id: int) -> Case | None:
        """The case whose forum topic this is."""
        return await self._session.scalar(
            select(Case)
            .where(Case.staff_chat_id == staff_chat_id, Case.thread_id == thread_id)
            .order_by(Case.id.desc())
            .limit(1)
        )

    async def for_staff_message(self, staff_chat_id: int, message_id: int) -> Case | None:
        """The case a message in a plain group belongs to: its card, or a message of its
        thread (relayed, a note, a prompt)."""
        by_card = await self._session.scalar(
            select(Case).where(
                Case.staff_chat_id == staff_chat_id, Case.card_message_id == message_id
            )
        )
        if by_card is not None:
            return by_card
        return await self._session.scalar(
            select(Case)
            .join(CaseMessage, CaseMessage.case_id == Case.id)
            .where(
                CaseMessage.staff_chat_id == staff_chat_id,
                CaseMessage.staff_message_id == message_id,
            )
            .limit(1)
        )

    async def active_with_card(self, customer_id: int) -> Case | None:
        """The customer's latest case still being worked on whose card is posted."""
        return await self._session.scalar(
            select(Case)
            .where(
                Case.customer_id == customer_id,
                Case.state.in_((*ACTIVE, CaseState.RESOLVED)),
                Case.card_message_id.is_not(None),
            )
            .order_by(Case.id.desc())
            .limit(1)
        )

    # -- moving a case on ------------------------------------------------------------------------

    async def posted(
        self,
        case_id: int,
        *,
        staff_chat_id: int | None,
        thread_id: int | None,
        card_message_id: int | None,
        now: datetime,
    ) -> None:
        await self._set(
            case_id,
            (),
            now=now,
            staff_chat_id=staff_chat_id,
            thread_id=thread_id,
            card_message_id=card_message_id,
        )

    async def take(self, case_id: int, *, user_id: int, name: str, now: datetime) -> bool:
        return await self._set(
            case_id,
            (CaseState.OPEN, CaseState.REOPENED, CaseState.TAKEN),
            now=now,
            state=CaseState.TAKEN,
            taken_by=user_id,
            taken_by_name=name,
            taken_at=now,
        )

    async def resolve(self, case_id: int, *, user_id: int, offer: CaseOffer, now: datetime) -> bool:
        return await self._set(
            case_id,
            ACTIVE,
            now=now,
            state=CaseState.RESOLVED,
            resolved_at=now,
            resolved_by=user_id,
            offer=offer,
        )

    async def reopen(self, case_id: int, *, now: datetime, recovered: bool | None = None) -> bool:
        values: dict[str, object] = {
            "state": CaseState.REOPENED,
            "reopened_count": Case.reopened_count + 1,
            "closed_at": None,
        }
        if recovered is not None:
            values["recovered"] = recovered
        return await self._set(
            case_id, (CaseState.RESOLVED, CaseState.CONFIRMED), now=now, **values
        )

    async def confirm(self, case_id: int, *, now: datetime) -> bool:
        return await self._set(
            case_id,
            (CaseState.RESOLVED,),
            now=now,
            state=CaseState.CONFIRMED,
            recovered=True,
            closed_at=now,
        )

    async def note(self, case_id: int, note: str, *, now: datetime) -> None:
        await self._set(case_id, (), now=now, resolution_note=note)

    async def resolution_due(self, case_id: int, due: datetime, *, now: datetime) -> None:
        await self._set(case_id, (), now=now, resolution_due_at=due)

    async def followup_sent(self, case_id: int, *, now: datetime) -> bool:
        return await self._set(case_id, (CaseState.RESOLVED,), now=now, followup_sent_at=now)

    async def followup_unsent(self, case_id: int, *, now: datetime) -> None:
        await self._set(case_id, (CaseState.RESOLVED,), now=now, followup_sent_at=None)

    async def responded(self, case_id: int, *, now: datetime) -> bool:
        """The first staff message reached the customer (kept once)."""
        result = await self._session.execute(
            update(Case)
            .where(Case.id == case_id, Case.first_responded_at.is_(None))
            .values(first_responded_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def add_message(
        self,
        case_id: int,
        direction: MessageDirection,
        *,
        now: datetime,
        author_user_id: int | None = None,
        text: str | None = None,
        media_kind: str | None = None,
        media_file_id: str | None = None,
        staff_chat_id: int | None = None,
        staff_message_id: int | None = None,
        customer_message_id: int | None = None,
    ) -> None:
        self._session.add(
            CaseMessage(
                case_id=case_id,
                direction=direction,
                author_user_id=author_user_id,
                text=text,
                media_kind=media_kind,
                media_file_id=media_file_id,
                staff_chat_id=staff_chat_id,
                staff_message_id=staff_message_id,
                customer_message_id=customer_message_id,
                created_at=now,
            )
        )
        await self._session.flush()

    async def _set(
        self, case_id: int, states: tuple[CaseState, ...], *, now: datetime, **values: object
    ) -> bool:
        conditions = [Case.id == case_id]
        if states:
            conditions.append(Case.state.in_(states))
        result = await self._session.execute(
            update(Case)
            .where(*conditions)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)
