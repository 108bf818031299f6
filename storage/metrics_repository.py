"""What /metrics reads from the database at scrape time: small counts over indexed columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.stats_repository import open_and_overdue


@dataclass(frozen=True, slots=True)
class OpenCases:
    open: int
    #: Open cases past their first-response or resolution deadline (as /stats counts them).
    overdue: int


async def open_cases(engine: AsyncEngine, now: datetime) -> OpenCases:
    """Cases somebody still has to act on, and how many of them are late: /stats's statement
    without a scope, on the state index (closed cases, the bulk over time, are not read)."""
    async with engine.connect() as connection:
        row = (await connection.execute(open_and_overdue(now))).one()
    return OpenCases(open=int(row[0]), overdue=int(row[1]))
