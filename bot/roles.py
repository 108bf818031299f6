"""Who is an admin: the ADMIN_IDS setting, plus admins granted in the chat (`Role` rows).

The first admins come from settings and cannot be taken away in the chat (they are not rows);
admins granted later are rows with `RoleName.ADMIN`. A later issue adds /admins commands on top.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import RoleName
from storage.repositories import RoleRepository

__all__ = ["Roles"]


class Roles:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], admin_ids: Iterable[int]
    ) -> None:
        self._sessions = sessions
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
