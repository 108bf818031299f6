"""The queries of the CSV export (`bot.export`): surveys page by page, with all they led to.

Works inside the caller's session and never commits (see storage.repositories). Pages are taken
by survey id (keyset: `id > after ORDER BY id LIMIT n`), never by OFFSET, so each page costs the
same however deep into the table it is, and a page's read transaction stays short while the bot
keeps writing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    AnswerReason,
    Case,
    CaseSeverity,
    CaseState,
    Customer,
    Reason,
    SentimentLabel,
    Survey,
    SurveyScale,
    SurveyState,
    Visit,
)
from storage.test_visits import is_test_visit_id

__all__ = ["ExportRepository", "SurveyRecord"]


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """One survey with its visit, its answer and the answer's case (plain values, no ORM)."""

    survey_id: int
    visit_id: str
    occurred_at: datetime
    location: str | None
    staff: str | None
    service: str | None
    state: SurveyState
    sent_at: datetime | None
    answered_at: datetime | None
    scale: SurveyScale
    customer_erased: bool
    # The answer (None when the survey was never answered)
    answer_id: int | None
    score: int | None
    comment: str | None
    sentiment_label: SentimentLabel | None
    sentiment_corrected: SentimentLabel | None
    suggested_reasons: list[str] | None
    contact_requested: bool | None
    # The case (None when the answer opened none)
    case_id: int | None
    case_state: CaseState | None
    case_severity: CaseSeverity | None
    case_opened_at: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    recovered: bool | None


_COLUMNS = (
    Survey.id,
    Visit.external_id,
    Visit.occurred_at,
    Visit.location,
    Visit.staff,
    Visit.service,
    Survey.state,
    Survey.sent_at,
    Survey.answered_at,
    Survey.scale,
    Customer.erased_at,
    Answer.id,
    Answer.score,
    Answer.comment,
    Answer.sentiment_label,
    Answer.sentiment_corrected,
    Answer.suggested_reasons,
    Answer.contact_requested,
    Case.id,
    Case.state,
    Case.severity,
    Case.created_at,
    Case.first_responded_at,
    Case.resolved_at,
    Case.recovered,
)


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def reason_labels(self) -> dict[str, str]:
        """Every reason's label by code, hidden ones too (old answers still carry them)."""
        rows = await self._session.execute(select(Reason.code, Reason.label))
        return {code: label for code, label in rows}

    async def surveys(
        self,
        *,
        visited_from: datetime,
        visited_until: datetime,
        after: int,
        limit: int,
    ) -> list[SurveyRecord]:
        """The next ``limit`` surveys by id after ``after`` whose visit occurred in
        [visited_from, visited_until), except admins' test surveys (storage.test_visits)."""
        query = (
            select(*_COLUMNS)
            .join(Visit, Visit.id == Survey.visit_id)
            .join(Customer, Customer.id == Survey.customer_id)
            .outerjoin(Answer, Answer.survey_id == Survey.id)
            .outerjoin(Case, Case.answer_id == Answer.id)
            .where(
                Survey.id > after,
                Visit.occurred_at >= visited_from,
                Visit.occurred_at < visited_until,
                ~is_test_visit_id(Visit.external_id),
            )
            .order_by(Survey.id)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        return [
            SurveyRecord(
                survey_id=row[0],
                visit_id=row[1],
                occurred_at=row[2],
                location=row[3],
                staff=row[4],
                service=row[5],
                state=row[6],
                sent_at=row[7],
                answered_at=row[8],
                scale=row[9],
                customer_erased=row[10] is not None,
                answer_id=row[11],
                score=row[12],
                comment=row[13],
                sentiment_label=row[14],
                sentiment_corrected=row[15],
                suggested_reasons=row[16],
                contact_requested=row[17],
                case_id=row[18],
                case_state=row[19],
                case_severity=row[20],
                case_opened_at=row[21],
                first_responded_at=row[22],
                resolved_at=row[23],
                recovered=row[24],
            )
            for row in rows
        ]

    async def tapped_reasons(self, answer_ids: Sequence[int]) -> dict[int, list[str]]:
        """The labels of the chips tapped in these answers, by answer id, in the customers' chip
        order. By the answers' ids (the primary key's first column), not by a range of survey
        ids: PostgreSQL answered a range with a scan of every tapped chip, page after page.
        A page's ids stay far below SQLite's limit of 32,766 bound parameters."""
        if not answer_ids:
            return {}
        rows = await self._session.execute(
            select(AnswerReason.answer_id, Reason.label)
            .join(Reason, Reason.id == AnswerReason.reason_id)
            .where(AnswerReason.answer_id.in_(answer_ids))
            .order_by(AnswerReason.answer_id, Reason.position, Reason.id)
        )
        labels: dict[int, list[str]] = defaultdict(list)
        for answer_id, label in rows:
            labels[answer_id].append(label)
        return labels
