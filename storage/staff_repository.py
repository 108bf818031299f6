"""Staff chats and routing rules in the database: the queries `bot.staffchats` needs.

Like the other repositories it works inside the caller's session and never commits. Writes are
conditional statements (`INSERT … ON CONFLICT`, `UPDATE … WHERE active`), so a duplicate
delivery of the same Telegram update, or two admins at once, cannot register a chat twice or
deactivate it twice; each call reports whether it changed anything.

A staff chat is known by Telegram's chat id (`StaffChat.chat_id`, unique) to the outside and by
its row id (`StaffChat.id`) to rules and cases, so a chat that moves to a new Telegram id (a group
upgraded to a supergroup) keeps its rules and its cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from storage.db import insert_for
from storage.models import CaseSeverity, RoutingRule, StaffChat

__all__ = ["ChatUpsert", "StaffRepository", "clean_matcher"]


def _changed(result: Result[Any]) -> bool:
    return cast(CursorResult[Any], result).rowcount > 0


def clean_matcher(value: str | None) -> str | None:
    """A rule's text matcher as stored: trimmed, and None when nothing is left."""
    if value is None:
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True, slots=True)
class ChatUpsert:
    """A staff chat after `StaffRepository.upsert`, and what the call did to it."""

    chat: StaffChat
    created: bool  # a new row
    reactivated: bool  # an existing row that was inactive and is active again


class StaffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- staff chats ---------------------------------------------------------------------------

    async def get(self, chat_id: int) -> StaffChat | None:
        """The staff chat with this Telegram chat id (active or not), as it is now."""
        return await self._session.scalar(
            select(StaffChat)
            .where(StaffChat.chat_id == chat_id)
            .execution_options(populate_existing=True)
        )

    async def upsert(
        self, chat_id: int, *, title: str | None, is_forum: bool, by: int | None, now: datetime
    ) -> ChatUpsert:
        """Register the chat, or refresh its title and forum flag and make it active again.

        A reactivated chat keeps its row (its rules and old cases) and its `created_at`, and
        `added_by` becomes whoever registered it this time.
        """
        title = title[:256] if title else title
        insert = insert_for(self._session)
        created_id = await self._session.scalar(
            insert(StaffChat)
            .values(
                chat_id=chat_id,
                title=title,
                is_forum=is_forum,
                active=True,
                added_by=by,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=[StaffChat.chat_id])
            .returning(StaffChat.id)
        )
        reactivated = False
        if created_id is None:
            reactivated = _changed(
                await self._session.execute(
                    update(StaffChat)
                    .where(StaffChat.chat_id == chat_id, StaffChat.active.is_(False))
                    .values(title=title, is_forum=is_forum, active=True, added_by=by)
                    .execution_options(synchronize_session=False)
                )
            )
            if not reactivated:
                await self._session.execute(
                    update(StaffChat)
                    .where(StaffChat.chat_id == chat_id)
                    .values(title=title, is_forum=is_forum)
                    .execution_options(synchronize_session=False)
                )
        chat = await self.get(chat_id)
        if chat is None:  # pragma: no cover - written just above
            raise LookupError(f"staff chat {chat_id} vanished")
        return ChatUpsert(chat=chat, created=created_id is not None, reactivated=reactivated)

    async def deactivate(self, chat_id: int) -> bool:
        """Stop routing cases to the chat; False if it was not an active staff chat. The row
        stays: old cases keep their chat, and its rules come back if it is registered again."""
        result = await self._session.execute(
            update(StaffChat)
            .where(StaffChat.chat_id == chat_id, StaffChat.active.is_(True))
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def move(self, old_chat_id: int, new_chat_id: int) -> bool:
        """The chat got a new Telegram id (a group upgraded to a supergroup): the row follows,
        with its rules and cases. False if there is no such row, or the new id is registered
        already (then the old row is left as it is, for the caller to deactivate)."""
        taken = select(StaffChat.id).where(StaffChat.chat_id == new_chat_id).exists()
        result = await self._session.execute(
            update(StaffChat)
            .where(StaffChat.chat_id == old_chat_id, ~taken)
            .values(chat_id=new_chat_id)
            .execution_options(synchronize_session=False)
        )
        return _changed(result)

    async def chats(self, *, include_inactive: bool = False) -> list[StaffChat]:
        """Staff chats in the order they were first registered (the first active one is the
        default chat)."""
        query = select(StaffChat).order_by(StaffChat.created_at, StaffChat.id)
        if not include_inactive:
            query = query.where(StaffChat.active.is_(True))
        rows = await self._session.scalars(query.execution_options(populate_existing=True))
        return list(rows)

    async def default_chat(self) -> StaffChat | None:
        """Where cases go when no rule matches: the earliest-registered active staff chat."""
        return await self._session.scalar(
            select(StaffChat)
            .where(StaffChat.active.is_(True))
            .order_by(StaffChat.created_at, StaffChat.id)
            .limit(1)
            .execution_options(populate_existing=True)
        )

    # -- routing rules -------------------------------------------------------------------------

    async def rules(self, *, active_only: bool = False) -> list[RoutingRule]:
        """The rules in the order they are tried, each with its staff chat loaded;
        ``active_only``: only those whose chat is active (the ones routing uses)."""
        query = (
            select(RoutingRule)
            .join(RoutingRule.staff_chat)
            .options(contains_eager(RoutingRule.staff_chat))
            .order_by(RoutingRule.position, RoutingRule.id)
        )
        if active_only:
            query = query.where(StaffChat.active.is_(True))
        rows = await self._session.scalars(query.execution_options(populate_existing=True))
        return list(rows)

    async def add_rule(
        self,
        *,
        staff_chat_id: int,
        location: str | None = None,
        reason_code: str | None = None,
        severity: CaseSeverity | None = None,
        created_by: int | None,
        now: datetime,
        place: int | None = None,
    ) -> RoutingRule:
        """Add a rule sending matching cases to the staff chat with row id ``staff_chat_id``.

        By default the rule goes last; ``place`` (1-based, as `rules()` lists them) puts it
        there instead, moving that rule and the ones after it down by one. Text matchers are
        stored trimmed (an empty one matches anything, like None).
        """
        if place is not None and place < 1:
            raise ValueError("a rule's place counts from 1")
        position: int | None = None
        if place is not None:
            position = await self._session.scalar(
                select(RoutingRule.position)
                .order_by(RoutingRule.position, RoutingRule.id)
                .offset(place - 1)
                .limit(1)
            )
        if position is None:  # last (also when ``place`` is past the end)
            position = (
                await self._session.scalar(select(func.coalesce(func.max(RoutingRule.position), 0)))
                or 0
            ) + 1
        else:
            await self._session.execute(
                update(RoutingRule)
                .where(RoutingRule.position >= position)
                .values(position=RoutingRule.position + 1)
                .execution_options(synchronize_session=False)
            )
        rule = RoutingRule(
            position=position,
            location=clean_matcher(location),
            reason_code=clean_matcher(reason_code),
            severity=severity,
            staff_chat_id=staff_chat_id,
            created_by=created_by,
            created_at=now,
        )
        self._session.add(rule)
        await self._session.flush()
        return rule

    async def remove_rule(self, n: int) -> RoutingRule | None:
        """Delete the ``n``-th rule (1-based, in the order `rules()` lists them); the removed
        rule, or None if there are fewer rules. The others keep their order."""
        if n < 1:
            return None
        listed = await self.rules()
        if n > len(listed):
            return None
        rule = listed[n - 1]
        await self._session.execute(delete(RoutingRule).where(RoutingRule.id == rule.id))
        return rule
