"""Who is an admin: the ADMIN_IDS setting, plus admins granted in the chat (`Role` rows).

The first admins come from settings and cannot be taken away in the chat (they are not rows);
admins granted with /admins add are rows with `RoleName.ADMIN`, and /admins remove takes them
away again, never the last admin: a bot nobody may configure would need a restart to recover.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from storage.models import Role, RoleName
from storage.repositories import AuditRepository, RoleRepository

__all__ = ["GRANT_ACTION", "REVOKE_ACTION", "Revocation", "Roles"]

GRANT_ACTION = "admin.add"
REVOKE_ACTION = "admin.remove"


class Revocation(enum.StrEnum):
    REMOVED = "removed"
    NOT_AN_ADMIN = "not_an_admin"
    CONFIGURED = "configured"  # from ADMIN_IDS: only the environment can take it away
    LAST_ADMIN = "last_admin"


class Roles:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        admin_ids: Iterable[int],
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        # A tuple keeps the settings' order for `admins()`; dict.fromkeys drops repeats.
        self._configured = tuple(dict.fromkeys(admin_ids))

    @property
    def configured_admins(self) -> tuple[int, ...]:
        """The admins from ADMIN_IDS, in their order."""
        return self._configured

    async def is_admin(self, user_id: int) -> bool:
        if user_id in self._configured:
            return True
        async with self._sessions() as session:
            return await RoleRepository(session).has(user_id, RoleName.ADMIN)

    async def admins(self) -> list[int]:
        """Every admin's Telegram user id: ADMIN_IDS first, then those granted in the chat in
        the order they were granted; each once."""
        async with self._sessions() as session:
            granted = await RoleRepository(session).users(RoleName.ADMIN)
        return list(dict.fromkeys([*self._configured, *granted]))

    async def grant(self, user_id: int, *, by: int, by_name: str | None) -> bool:
        """Make ``user_id`` an admin; False if they already were one."""
        if user_id in self._configured:
            return False
        async with self._sessions.begin() as session:
            now = self._clock.now()
            if not await RoleRepository(session).grant(
                user_id, RoleName.ADMIN, granted_by=by, now=now
            ):
                return False
            await AuditRepository(session).record(
                at=now,
                action=GRANT_ACTION,
                actor_id=by,
                actor_name=by_name,
                target=str(user_id),
                new="admin",
            )
        return True

    async def revoke(self, user_id: int, *, by: int, by_name: str | None) -> Revocation:
        if user_id in self._configured:
            return Revocation.CONFIGURED
        async with self._sessions.begin() as session:
            # Lock the admin rows first (PostgreSQL; SQLite writes one at a time anyway), so two
            # admins removing each other at once cannot both succeed and leave nobody.
            granted = list(
                await session.scalars(
                    select(Role.user_id).where(Role.role == RoleName.ADMIN).with_for_update()
                )
            )
            if user_id not in granted:
                return Revocation.NOT_AN_ADMIN
            if len(self._configured) + len(set(granted)) <= 1:
                return Revocation.LAST_ADMIN
            await RoleRepository(session).revoke(user_id, RoleName.ADMIN)
            await AuditRepository(session).record(
                at=self._clock.now(),
                action=REVOKE_ACTION,
                actor_id=by,
                actor_name=by_name,
                target=str(user_id),
                old="admin",
            )
        return Revocation.REMOVED
