"""Reason chips: the ones offered to customers, and the defaults put in on first start."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import Reason

__all__ = ["ReasonRepository"]


class ReasonRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def offered(self) -> list[Reason]:
        """The chips customers are offered, in the admins' order (hidden ones left out)."""
        rows = await self._session.scalars(
            select(Reason).where(Reason.hidden.is_(False)).order_by(Reason.position, Reason.id)
        )
        return list(rows)

    async def ensure_defaults(self, defaults: Sequence[tuple[str, str]], *, now: datetime) -> int:
        """Put in the default chips (code, label) when there are no reasons at all; how many.
        Once any reason exists, the admins' list is left as it is, hidden ones included."""
        if await self._session.scalar(select(func.count()).select_from(Reason)):
            return 0
        insert = insert_for(self._session)
        for position, (code, label) in enumerate(defaults, start=1):
            # Two workers starting at once may both find none: the code is unique.
            await self._session.execute(
                insert(Reason)
                .values(code=code, label=label, position=position, hidden=False, created_at=now)
                .on_conflict_do_nothing(index_elements=[Reason.code])
            )
        return len(defaults)
