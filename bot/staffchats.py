"""Staff chats: where cases go (registration and routing) and who may act on them there.

`StaffChatService` registers a group as a staff chat after asking Telegram whether it can work
there, lists and removes staff chats, and follows the bot being removed from one or a group
being upgraded to a supergroup. `Routing` picks the staff chat for a case. `StaffAccess` says
whether someone pressing a case's button may act on it.

What a staff chat needs from Telegram:

- **A plain group or supergroup**: the bot must be a member that may send messages. Bots run in
  *privacy mode* by default and then see, in groups, only commands, replies to their own
  messages and mentions — not the rest of the staff's talk. That is enough: staff answer a case
  by replying to its card (a reply to the bot's message), and act with the card's buttons and
  commands. Nothing here needs the bot to read everything, and it is better that it does not.
- **A forum supergroup**: each case gets its own topic, so the bot must be an administrator with
  the right to manage topics (`can_manage_topics`); registration is refused until it is, saying
  exactly that. In a topic every message counts as a reply to the topic's first message, which
  the bot wrote when it opened the topic, so privacy mode still lets it see the case's talk.

Registration is refused (with the reason, nothing written) for: a chat the bot is not in or was
removed from (Telegram's 400/403, or status left/kicked), a private chat or channel, a chat
where the bot may not post, and a forum without topic rights. Registering again refreshes the
title and forum flag and reactivates a removed chat with its old rules.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramMigrateToChat
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.roles import Roles
from storage.models import CaseSeverity, StaffChat
from storage.repositories import AuditRepository
from storage.staff_repository import StaffRepository

__all__ = [
    "ADDED_ACTION",
    "BOT_LEFT_ACTION",
    "MOVED_ACTION",
    "REMOVED_ACTION",
    "UPDATED_ACTION",
    "Outcome",
    "Refusal",
    "Registration",
    "Routing",
    "StaffAccess",
    "StaffChatService",
    "TelegramChats",
]

log = logging.getLogger(__name__)

#: Audit actions.
ADDED_ACTION = "staff_chat.added"
UPDATED_ACTION = "staff_chat.updated"
REMOVED_ACTION = "staff_chat.removed"
BOT_LEFT_ACTION = "staff_chat.bot_left"
MOVED_ACTION = "staff_chat.moved"

#: Statuses of someone who is in a chat now (`restricted` counts when its `is_member` is true).
_PRESENT = frozenset({"creator", "administrator", "member"})
#: Telegram's "you may not look at that chat": it is unknown to the bot, or the bot is not in it.
_NO_ACCESS = (TelegramBadRequest, TelegramForbiddenError)


class TelegramChats(Protocol):
    """The part of aiogram's `Bot` this module uses (tests pass a fake)."""

    async def get_chat(self, chat_id: int) -> Any: ...

    async def get_chat_member(self, chat_id: int, user_id: int) -> Any: ...

    async def me(self) -> Any: ...


def is_present(member: Any) -> bool:
    """Whether a ChatMember is in the chat now."""
    status = member.status
    if status == "restricted":
        return bool(getattr(member, "is_member", False))
    return status in _PRESENT


class Outcome(enum.StrEnum):
    REGISTERED = "registered"  # the chat receives cases now and did not before (new or re-added)
    UPDATED = "updated"  # it received cases already; title and forum flag refreshed
    REFUSED = "refused"  # nothing changed: see `Registration.refusal`


class Refusal(enum.StrEnum):
    NOT_A_MEMBER = "not_a_member"  # the bot is not in the chat, or Telegram does not know it
    NOT_A_GROUP = "not_a_group"  # a private chat or a channel
    CANNOT_POST = "cannot_post"  # the bot is restricted from sending messages there
    NEEDS_TOPIC_RIGHTS = "needs_topic_rights"  # a forum, and the bot cannot manage topics


@dataclass(frozen=True, slots=True)
class Registration:
    outcome: Outcome
    chat_id: int
    #: The staff chat row as it is now; on a refusal, the existing row if there is one.
    chat: StaffChat | None = None
    refusal: Refusal | None = None
    #: Telegram's own words for a failed lookup (e.g. "Forbidden: bot was kicked from …").
    detail: str | None = None
    #: The chat's title as Telegram gave it (known on most refusals too).
    title: str | None = None

    @property
    def registered(self) -> bool:
        """Whether this call registered the chat or confirmed it (REGISTERED or UPDATED). A
        refusal leaves an existing row as it was: see `chat` for whether it is still active."""
        return self.outcome is not Outcome.REFUSED


def _snapshot(chat: StaffChat) -> dict[str, Any]:
    """A staff chat for the audit log."""
    return {
        "chat_id": chat.chat_id,
        "title": chat.title,
        "is_forum": chat.is_forum,
        "active": chat.active,
    }


class StaffChatService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, bot: TelegramChats
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._bot = bot

    async def register(self, chat_id: int, *, by: int) -> Registration:
        """Make the chat a staff chat if the bot can work there (see the module docstring);
        ``by`` is the admin who asked. Idempotent: a second call refreshes and says UPDATED."""
        try:
            return await self._register(chat_id, by=by)
        except TelegramMigrateToChat as moved:  # an old group id: register its supergroup
            log.info("chat %s became %s; registering that", chat_id, moved.migrate_to_chat_id)
            return await self._register(moved.migrate_to_chat_id, by=by)

    async def _register(self, chat_id: int, *, by: int) -> Registration:
        me = await self._bot.me()
        try:
            member = await self._bot.get_chat_member(chat_id, me.id)
        except _NO_ACCESS as error:
            return await self._refused(chat_id, Refusal.NOT_A_MEMBER, detail=error.message)
        if not is_present(member):
            detail = "I was removed from it" if member.status == "kicked" else "I left it"
            return await self._refused(chat_id, Refusal.NOT_A_MEMBER, detail=detail)
        try:
            info = await self._bot.get_chat(chat_id)
        except _NO_ACCESS as error:
            return await self._refused(chat_id, Refusal.NOT_A_MEMBER, detail=error.message)
        title = info.title
        if info.type not in ("group", "supergroup"):
            return await self._refused(chat_id, Refusal.NOT_A_GROUP, title=title)
        if member.status == "restricted" and not getattr(member, "can_send_messages", False):
            return await self._refused(chat_id, Refusal.CANNOT_POST, title=title)
        is_forum = bool(info.is_forum)
        if is_forum and not (
            member.status == "administrator" and getattr(member, "can_manage_topics", False)
        ):
            return await self._refused(chat_id, Refusal.NEEDS_TOPIC_RIGHTS, title=title)

        now = self._clock.now()
        async with self._sessions.begin() as session:
            staff = StaffRepository(session)
            before = await staff.get(chat_id)
            old = _snapshot(before) if before is not None else None
            upserted = await staff.upsert(chat_id, title=title, is_forum=is_forum, by=by, now=now)
            new = _snapshot(upserted.chat)
            audit = AuditRepository(session)
            target = f"staff_chat:{chat_id}"
            if upserted.created or upserted.reactivated:
                outcome = Outcome.REGISTERED
                await audit.record(
                    at=now, action=ADDED_ACTION, actor_id=by, target=target, old=old, new=new
                )
            else:
                outcome = Outcome.UPDATED
                if old != new:
                    await audit.record(
                        at=now, action=UPDATED_ACTION, actor_id=by, target=target, old=old, new=new
                    )
        # Ids only: a group's title can name people (LOG_LEVEL=INFO carries no personal data).
        log.info("staff chat %s: %s by %s", chat_id, outcome, by)
        return Registration(outcome, chat_id, chat=upserted.chat, title=title)

    async def _refused(
        self,
        chat_id: int,
        refusal: Refusal,
        *,
        detail: str | None = None,
        title: str | None = None,
    ) -> Registration:
        async with self._sessions() as session:
            existing = await StaffRepository(session).get(chat_id)
        log.info("staff chat %s refused: %s (%s)", chat_id, refusal, detail or "-")
        return Registration(
            Outcome.REFUSED,
            chat_id,
            chat=existing,
            refusal=refusal,
            detail=detail,
            title=title or (existing.title if existing is not None else None),
        )

    async def get(self, chat_id: int) -> StaffChat | None:
        """The staff chat with this Telegram chat id, active or not."""
        async with self._sessions() as session:
            return await StaffRepository(session).get(chat_id)

    async def list(self, *, include_inactive: bool = False) -> list[StaffChat]:
        """The staff chats in the order they were first registered; the first active one is
        the default chat."""
        async with self._sessions() as session:
            return await StaffRepository(session).chats(include_inactive=include_inactive)

    async def remove(self, chat_id: int, *, by: int) -> bool:
        """No new cases go to the chat (an admin said so); False if it was not an active staff
        chat. Its cases keep their chat; its routing rules wait, unused, until it is registered
        again."""
        return await self._deactivate(chat_id, REMOVED_ACTION, by=by)

    async def bot_left(self, chat_id: int, *, by: int | None = None) -> bool:
        """The bot was removed from the chat (or left it): as `remove`, recorded as such, with
        ``by`` the person who removed it when Telegram says. Adding the bot back is not enough:
        someone sends /staff_here there again."""
        return await self._deactivate(chat_id, BOT_LEFT_ACTION, by=by)

    async def _deactivate(self, chat_id: int, action: str, *, by: int | None) -> bool:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            staff = StaffRepository(session)
            if not await staff.deactivate(chat_id):
                return False
            chat = await staff.get(chat_id)
            await AuditRepository(session).record(
                at=now,
                action=action,
                actor_id=by,
                target=f"staff_chat:{chat_id}",
                old={"active": True},
                new=_snapshot(chat) if chat is not None else None,
            )
        log.info("staff chat %s deactivated (%s by %s)", chat_id, action, by)
        return True

    async def migrated(self, old_chat_id: int, new_chat_id: int) -> bool:
        """A staff group was upgraded to a supergroup, which has a new chat id: the staff chat
        (with its rules and cases) follows. False if the old id was not a staff chat. If the new
        id was registered on its own already, the old row is deactivated instead."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            staff = StaffRepository(session)
            if await staff.get(old_chat_id) is None:
                return False
            if not await staff.move(old_chat_id, new_chat_id):
                await staff.deactivate(old_chat_id)
                return False
            await AuditRepository(session).record(
                at=now,
                action=MOVED_ACTION,
                target=f"staff_chat:{new_chat_id}",
                old={"chat_id": old_chat_id},
                new={"chat_id": new_chat_id},
            )
        log.info("staff chat %s moved to %s", old_chat_id, new_chat_id)
        return True


def _fold(value: str | None) -> str | None:
    """Text compared the way rules compare it: trimmed, case-insensitive (any script)."""
    if value is None:
        return None
    return value.strip().casefold() or None


class Routing:
    """Which staff chat a case goes to.

    Rules are tried in order (`RoutingRule.position`); the first whose matchers all match wins.
    A rule's None matcher matches anything. ``location`` matches the case's location trimmed and
    case-insensitively (a case without a location never matches a rule that names one);
    ``reason_code`` matches if it is one of the case's reasons; ``severity`` matches exactly
    that severity. Rules whose staff chat is inactive are skipped. When no rule matches, the
    case goes to the default chat, the earliest-registered active one; with no active staff
    chat at all the answer is None, and the caller tells the admins privately.

    Matching happens in Python over the (few) rules, so case-insensitivity is the same for every
    script on both backends (SQLite's lower() knows only ASCII).
    """

    async def choose(
        self,
        session: AsyncSession,
        *,
        location: str | None,
        reason_codes: Sequence[str],
        severity: CaseSeverity,
    ) -> StaffChat | None:
        staff = StaffRepository(session)
        where = _fold(location)
        codes = {_fold(code) for code in reason_codes} - {None}
        for rule in await staff.rules(active_only=True):
            if rule.location is not None and _fold(rule.location) != where:
                continue
            if rule.reason_code is not None and _fold(rule.reason_code) not in codes:
                continue
            if rule.severity is not None and rule.severity != severity:
                continue
            return rule.staff_chat
        return await staff.default_chat()


class StaffAccess:
    """Whether someone may act on a case in a staff chat: admins always; anyone else only while
    they are a member of that chat, as Telegram says (`getChatMember`).

    Answers, yes and no, are cached for ``ttl`` seconds (default 60) in a bounded LRU table, so
    a burst of button presses is one Bot API call, not one per press. The price: someone removed
    from the staff chat can still act for up to ``ttl`` seconds, and someone just added may be
    refused for as long (`forget` drops cached answers when the bot learns of a change). Admin
    status is not cached: it is read from settings and the database on each call.

    A lookup Telegram refuses (400: no such user there; 403: the bot is not in the chat) is a no.
    Other failures (network, Telegram's 5xx after the rate limiter's retries) propagate and are
    not cached: not knowing is not the same as no.
    """

    def __init__(
        self,
        bot: TelegramChats,
        roles: Roles,
        *,
        ttl: float = 60.0,
        max_entries: int = 4096,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._roles = roles
        self._ttl = ttl
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._cache: OrderedDict[tuple[int, int], tuple[float, bool]] = OrderedDict()

    async def may_act(self, chat_id: int, user_id: int) -> bool:
        key = (chat_id, user_id)
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now and cached[1]:
            self._cache.move_to_end(key)
            return True
        if await self._roles.is_admin(user_id):
            return True
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            member = await self._bot.get_chat_member(chat_id, user_id)
        except _NO_ACCESS:
            allowed = False
        else:
            allowed = is_present(member)
        self._remember(key, allowed, now)
        return allowed

    def forget(self, chat_id: int, user_id: int | None = None) -> None:
        """Drop cached answers for one person in a chat, or for everyone in it."""
        if user_id is not None:
            self._cache.pop((chat_id, user_id), None)
            return
        for key in [key for key in self._cache if key[0] == chat_id]:
            del self._cache[key]

    def _remember(self, key: tuple[int, int], allowed: bool, now: float) -> None:
        self._cache[key] = (now + self._ttl, allowed)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
