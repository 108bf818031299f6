"""Small repositories: the queries services need, so that services and handlers never write SQL.

A repository works inside the caller's session and never commits: the service that uses it owns
the unit of work (one transaction per update or per job). Writes that can race with a duplicate
delivery of the same Telegram update are single conditional statements (`INSERT … ON CONFLICT`),
so they are idempotent on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, bindparam, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_for
from storage.models import AuditEntry, Customer, Role, RoleName, Setting, UTCDateTime


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


@dataclass(frozen=True, slots=True)
class TelegramProfile:
    """What Telegram tells about a user with each update."""

    user_id: int
    first_name: str | None = None
    username: str | None = None
    language_code: str | None = None


# Built once (every message from a customer runs it): building a statement and its cache key
# costs more CPU than running it.
_BY_TELEGRAM_ID = select(Customer).where(Customer.telegram_user_id == bindparam("telegram_user_id"))


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, customer_id: int) -> Customer | None:
        return await self._session.get(Customer, customer_id)

    async def by_telegram_id(self, telegram_user_id: int) -> Customer | None:
        return await self._session.scalar(_BY_TELEGRAM_ID, {"telegram_user_id": telegram_user_id})

    async def by_ref(self, external_ref: str) -> Customer | None:
        return await self._session.scalar(
            select(Customer).where(Customer.external_ref == external_ref)
        )

    async def get_or_create_by_telegram(
        self, profile: TelegramProfile, *, now: datetime
    ) -> tuple[Customer, bool]:
        """The customer with this Telegram user id, created if new; True when created.

        Safe against the same /start arriving twice at once: one row, both calls see it. A new
        customer takes Telegram's language; a known one keeps the language they chose, while
        their name and @username follow Telegram (people change them). `started_at` is set the
        first time, since from then on the bot may write to them.
        """
        insert = insert_for(self._session)
        created_id = await self._session.scalar(
            insert(Customer)
            .values(
                telegram_user_id=profile.user_id,
                first_name=profile.first_name,
                username=profile.username,
                language=profile.language_code,
                started_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=[Customer.telegram_user_id])
            .returning(Customer.id)
        )
        if created_id is None:
            await self._session.execute(
                update(Customer)
                .where(Customer.telegram_user_id == profile.user_id)
                .values(
                    first_name=profile.first_name,
                    username=profile.username,
                    language=func.coalesce(Customer.language, profile.language_code),
                    started_at=func.coalesce(Customer.started_at, literal(now, UTCDateTime())),
                )
                .execution_options(synchronize_session=False)
            )
        customer = await self._session.scalar(
            select(Customer)
            .where(Customer.telegram_user_id == profile.user_id)
            .execution_options(populate_existing=True)
        )
        if customer is None:  # only if someone erased the row in between: a real bug elsewhere
            raise LookupError(f"customer with telegram id {profile.user_id} vanished")
        return customer, created_id is not None


class RoleRepository:
    """Roles granted in the chat. Admins from ADMIN_IDS live in settings, not here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def has(self, user_id: int, role: RoleName) -> bool:
        found = await self._session.scalar(
            select(Role.id).where(Role.user_id == user_id, Role.role == role)
        )
        return found is not None

    async def users(self, role: RoleName) -> list[int]:
        rows = await self._session.scalars(
            select(Role.user_id).where(Role.role == role).order_by(Role.created_at, Role.id)
        )
        return list(rows)

    async def grant(
        self, user_id: int, role: RoleName, *, granted_by: int | None, now: datetime
    ) -> bool:
        """Give the role; False if the user already had it (idempotent)."""
        insert = insert_for(self._session)
        granted = await self._session.scalar(
            insert(Role)
            .values(user_id=user_id, role=role, granted_by=granted_by, created_at=now)
            .on_conflict_do_nothing(index_elements=[Role.user_id, Role.role])
            .returning(Role.id)
        )
        return granted is not None

    async def revoke(self, user_id: int, role: RoleName) -> bool:
        """Take the role away; False if the user did not have it."""
        result = await self._session.execute(
            delete(Role).where(Role.user_id == user_id, Role.role == role)
        )
        return _rowcount(result) > 0


class SettingRepository:
    """Runtime settings changed in the chat: plain strings by key; parsing is the caller's."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> dict[str, str]:
        rows = await self._session.execute(select(Setting.key, Setting.value))
        return {key: value for key, value in rows}

    async def get(self, key: str) -> str | None:
        return await self._session.scalar(select(Setting.value).where(Setting.key == key))

    async def put(self, key: str, value: str, *, updated_by: int | None, now: datetime) -> None:
        insert = insert_for(self._session)
        statement = insert(Setting).values(
            key=key, value=value, updated_by=updated_by, updated_at=now
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[Setting.key],
                set_={
                    "value": statement.excluded.value,
                    "updated_by": statement.excluded.updated_by,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )

    async def remove(self, key: str) -> bool:
        result = await self._session.execute(delete(Setting).where(Setting.key == key))
        return _rowcount(result) > 0


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        *,
        at: datetime,
        action: str,
        actor_id: int | None = None,
        actor_name: str | None = None,
        target: str | None = None,
        old: object = None,
        new: object = None,
    ) -> AuditEntry:
        """Add an entry; `old`/`new` must be JSON-serialisable (strings, numbers, dicts…)."""
        entry = AuditEntry(
            at=at,
            action=action,
            actor_id=actor_id,
            actor_name=actor_name,
            target=target,
            old_value=old,
            new_value=new,
        )
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def latest(self, limit: int = 20) -> list[AuditEntry]:
        rows = await self._session.scalars(
            select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
        )
        return list(rows)
