"""Reason chips: the ones offered to customers, the defaults put in on first start, and the
changes admins make (add, rename, reorder, hide). A reason is never deleted: answers point at it,
and a hidden one keeps its history and statistics.

Like the other repositories it works inside the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import AnswerReason, Reason

__all__ = ["ReasonRepository"]


def _changed(result: Result[Any]) -> bool:
    return cast(CursorResult[Any], result).rowcount > 0


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

    # -- what admins see and change --------------------------------------------------------------

    async def listed(self) -> list[Reason]:
        """Every reason: the offered ones in their order, then the hidden ones."""
        rows = await self._session.scalars(
            select(Reason)
            .order_by(Reason.hidden, Reason.position, Reason.id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def answer_counts(self) -> dict[int, int]:
        """How many answers chose each reason, by reason id (reasons never chosen are absent)."""
        rows = await self._session.execute(
            select(AnswerReason.reason_id, func.count()).group_by(AnswerReason.reason_id)
        )
        return {reason_id: count for reason_id, count in rows}

    async def add(self, *, code: str, label: str, now: datetime) -> Reason | None:
        """A new offered reason, last in the order; None if the code is taken (the caller tries
        another: two admins may pick the same code at once)."""
        position = (
            await self._session.scalar(select(func.coalesce(func.max(Reason.position), 0))) or 0
        ) + 1
        insert = insert_for(self._session)
        reason_id = await self._session.scalar(
            insert(Reason)
            .values(code=code, label=label, position=position, hidden=False, created_at=now)
            .on_conflict_do_nothing(index_elements=[Reason.code])
            .returning(Reason.id)
        )
        if reason_id is None:
            return None
        return await self._get(reason_id)

    async def rename(self, reason_id: int, label: str) -> bool:
        result = await self._session.execute(
            update(Reason)
            .where(Reason.id == reason_id)
            .values(label=label)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def set_hidden(self, reason_id: int, hidden: bool) -> bool:
        """Hide a reason, or offer it again (last in the order); False if it already was so."""
        values: dict[str, Any] = {"hidden": hidden}
        if not hidden:
            values["position"] = select(
                func.coalesce(func.max(Reason.position), 0) + 1
            ).scalar_subquery()
        result = await self._session.execute(
            update(Reason)
            .where(Reason.id == reason_id, Reason.hidden.is_(not hidden))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def reorder(self, reason_ids: Sequence[int]) -> None:
        """Give these reasons the positions 1, 2, 3… in the order given (one statement)."""
        if not reason_ids:
            return
        await self._session.execute(
            update(Reason)
            .where(Reason.id.in_(reason_ids))
            .values(
                position=case(
                    {reason_id: n for n, reason_id in enumerate(reason_ids, start=1)},
                    value=Reason.id,
                )
            )
            .execution_options(synchronize_session=False)
        )

    async def _get(self, reason_id: int) -> Reason | None:
        return await self._session.scalar(
            select(Reason).where(Reason.id == reason_id).execution_options(populate_existing=True)
        )
