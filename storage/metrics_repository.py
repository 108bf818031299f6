"""What /metrics reads from the database at scrape time: small counts over indexed columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Case
from storage.stats_repository import OPEN_CASE_STATES


@dataclass(frozen=True, slots=True)
class OpenCases:
    open: int
    #: Open cases past their first-response or resolution deadline (as /stats counts them).
    overdue: int


async def open_cases(engine: AsyncEngine, now: datetime) -> OpenCases:
    """Cases somebody still has to act on, and how many of them are late; one query on the
    state index (closed cases, the bulk over time, are not read)."""
    overdue = or_(
        and_(Case.first_responded_at.is_(None), Case.first_response_due_at < now),
        Case.resolution_due_at < now,
    )
    statement = select(func.count(), func.count().filter(overdue)).where(
        Case.state.in_(OPEN_CASE_STATES)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).one()
    return OpenCases(open=int(row[0]), overdue=int(row[1]))
