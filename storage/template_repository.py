"""Admins' own wording of customer texts (`Template` rows): the queries `bot.text_editor` needs.

Like the other repositories it works inside the caller's session and never commits. A text has
at most one row per language (unique on name and language), written with `INSERT … ON CONFLICT
DO UPDATE`, so a duplicate delivery of the same update or two admins at once cannot make two.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import AuditEntry, Template

__all__ = ["TemplateRepository"]


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> list[Template]:
        """Every stored wording, by name then language."""
        rows = await self._session.scalars(
            select(Template).order_by(Template.name, Template.language)
        )
        return list(rows)

    async def get(self, name: str, language: str) -> Template | None:
        return await self._session.scalar(
            select(Template).where(Template.name == name, Template.language == language)
        )

    async def put(
        self, name: str, language: str, text: str, *, by: int | None, at: datetime
    ) -> None:
        """Store ``text`` as the wording of ``name`` in ``language``, replacing any before."""
        insert = insert_for(self._session)
        statement = insert(Template).values(
            name=name, language=language, text=text, updated_by=by, updated_at=at
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[Template.name, Template.language],
                set_={"text": text, "updated_by": by, "updated_at": at},
            )
        )

    async def remove(self, name: str, language: str) -> str | None:
        """Delete the stored wording; the text it had, or None when there was none."""
        return await self._session.scalar(
            delete(Template)
            .where(Template.name == name, Template.language == language)
            .returning(Template.text)
        )

    async def last_change(self, action: str, target: str) -> AuditEntry | None:
        """The newest audit entry of ``action`` on ``target``: who set the wording in force
        (a template row keeps only the id, the audit also the name)."""
        return await self._session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.target == target)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
