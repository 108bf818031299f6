"""Staff chats, routing and staff access as services, on a real database with a fake clock and a
fake Telegram that answers getChat / getChatMember the way Telegram does (including its 400 and
403 refusals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
)
from aiogram.methods import GetChat, GetChatMember
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from bot.roles import Roles
from bot.staffchats import (
    ADDED_ACTION,
    BOT_LEFT_ACTION,
    MOVED_ACTION,
    REMOVED_ACTION,
    UPDATED_ACTION,
    Outcome,
    Refusal,
    Routing,
    StaffAccess,
    StaffChatService,
)
from storage.models import AuditEntry, CaseSeverity, RoleName, RoutingRule, StaffChat
from storage.repositories import RoleRepository
from storage.staff_repository import StaffRepository

BOT_ID = 7_000_000_001
ADMIN = 111  # from ADMIN_IDS
GRANTED = 222  # an admin granted in the chat (a Role row)
STAFF = 333
STRANGER = 444

GROUP = -4_000_000_001
SUPERGROUP = -1_002_000_000_001
FORUM = -1_002_000_000_002


# ------------------------------------------------------------------------------------ fakes


def member(status: str, **rights: Any) -> SimpleNamespace:
    return SimpleNamespace(status=status, **rights)


def chat(chat_type: str, title: str | None, *, forum: bool = False) -> SimpleNamespace:
    return SimpleNamespace(type=chat_type, title=title, is_forum=forum or None)


def not_found(chat_id: int) -> TelegramBadRequest:
    return TelegramBadRequest(GetChat(chat_id=chat_id), "Bad Request: chat not found")


@dataclass
class FakeTelegram:
    """getMe, getChat and getChatMember over a small world; every call is recorded."""

    chats: dict[int, Any] = field(default_factory=dict)
    members: dict[tuple[int, int], Any] = field(default_factory=dict)
    calls: list[tuple[str, int, int | None]] = field(default_factory=list)

    async def me(self) -> SimpleNamespace:
        return SimpleNamespace(id=BOT_ID, username="hearback_bot")

    async def get_chat(self, chat_id: int) -> Any:
        self.calls.append(("getChat", chat_id, None))
        found = self.chats.get(chat_id)
        if found is None:
            raise not_found(chat_id)
        if isinstance(found, Exception):
            raise found
        return found

    async def get_chat_member(self, chat_id: int, user_id: int) -> Any:
        self.calls.append(("getChatMember", chat_id, user_id))
        found = self.members.get((chat_id, user_id))
        if isinstance(found, Exception):
            raise found
        if found is None:
            if chat_id not in self.chats:
                raise not_found(chat_id)
            return member("left")
        return found

    def group(self, chat_id: int, title: str | None, *, bot: Any, forum: bool = False) -> None:
        kind = "group" if chat_id > -1_000_000_000_000 else "supergroup"
        self.chats[chat_id] = chat(kind, title, forum=forum)
        self.members[(chat_id, BOT_ID)] = bot

    def member_calls(self) -> int:
        return sum(1 for call in self.calls if call[0] == "getChatMember")


@pytest.fixture
def telegram() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
def service(session_factory, clock, telegram) -> StaffChatService:
    return StaffChatService(session_factory, clock, telegram)


@pytest.fixture
def roles(session_factory) -> Roles:
    return Roles(session_factory, [ADMIN])


async def audit_actions(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, Any]]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(entry.action, entry.actor_id) for entry in entries]


async def staff_rows(sessions: async_sessionmaker[AsyncSession]) -> list[StaffChat]:
    async with sessions() as session:
        return list(await session.scalars(select(StaffChat).order_by(StaffChat.id)))


# ------------------------------------------------------------------------------ registration


async def test_a_plain_group_where_the_bot_is_a_member_is_registered_and_audited(
    service, telegram, session_factory, clock
) -> None:
    telegram.group(GROUP, "Front desk", bot=member("member"))

    registration = await service.register(GROUP, by=ADMIN)

    assert registration.outcome is Outcome.REGISTERED
    assert registration.registered
    assert registration.refusal is None
    assert registration.chat is not None
    [row] = await staff_rows(session_factory)
    assert (row.chat_id, row.title, row.is_forum, row.active) == (GROUP, "Front desk", False, True)
    assert row.added_by == ADMIN
    assert row.created_at == clock.now()
    assert registration.chat.id == row.id
    async with session_factory() as session:
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None
    assert (entry.action, entry.actor_id, entry.target) == (
        ADDED_ACTION,
        ADMIN,
        f"staff_chat:{GROUP}",
    )
    assert entry.old_value is None
    assert entry.new_value == {
        "chat_id": GROUP,
        "title": "Front desk",
        "is_forum": False,
        "active": True,
    }
    # Membership first, then the chat itself.
    assert telegram.calls == [("getChatMember", GROUP, BOT_ID), ("getChat", GROUP, None)]


async def test_a_plain_supergroup_needs_no_admin_rights(service, telegram) -> None:
    telegram.group(SUPERGROUP, "Kitchen", bot=member("member"))
    registration = await service.register(SUPERGROUP, by=ADMIN)
    assert registration.outcome is Outcome.REGISTERED
    assert registration.chat is not None
    assert registration.chat.is_forum is False


@pytest.mark.parametrize(
    ("setup", "detail"),
    [
        ("unknown", "Bad Request: chat not found"),
        ("forbidden", "Forbidden: bot is not a member of the supergroup chat"),
        ("left", "I left it"),
        ("kicked", "I was removed from it"),
        ("restricted_out", "I left it"),
    ],
)
async def test_a_chat_the_bot_is_not_in_is_refused_with_the_reason(
    service, telegram, session_factory, setup: str, detail: str
) -> None:
    if setup == "forbidden":
        telegram.chats[SUPERGROUP] = chat("supergroup", "Kitchen")
        telegram.members[(SUPERGROUP, BOT_ID)] = TelegramForbiddenError(
            GetChatMember(chat_id=SUPERGROUP, user_id=BOT_ID),
            "Forbidden: bot is not a member of the supergroup chat",
        )
    elif setup == "restricted_out":
        telegram.group(SUPERGROUP, "Kitchen", bot=member("restricted", is_member=False))
    elif setup != "unknown":
        telegram.group(SUPERGROUP, "Kitchen", bot=member(setup))

    registration = await service.register(SUPERGROUP, by=ADMIN)

    assert registration.outcome is Outcome.REFUSED
    assert not registration.registered
    assert registration.refusal is Refusal.NOT_A_MEMBER
    assert registration.detail == detail
    assert registration.chat is None
    assert await staff_rows(session_factory) == []
    assert await audit_actions(session_factory) == []


async def test_a_forum_needs_the_bot_as_an_administrator_who_manages_topics(
    service, telegram, session_factory
) -> None:
    telegram.group(FORUM, "Cases", bot=member("member"), forum=True)
    refused = await service.register(FORUM, by=ADMIN)
    assert refused.outcome is Outcome.REFUSED
    assert refused.refusal is Refusal.NEEDS_TOPIC_RIGHTS
    assert refused.title == "Cases"

    # An administrator, but without the right to manage topics: still refused.
    telegram.members[(FORUM, BOT_ID)] = member(
        "administrator", can_manage_topics=False, can_post_messages=None
    )
    refused = await service.register(FORUM, by=ADMIN)
    assert refused.refusal is Refusal.NEEDS_TOPIC_RIGHTS
    assert await staff_rows(session_factory) == []

    telegram.members[(FORUM, BOT_ID)] = member("administrator", can_manage_topics=True)
    registration = await service.register(FORUM, by=ADMIN)
    assert registration.outcome is Outcome.REGISTERED
    [row] = await staff_rows(session_factory)
    assert (row.chat_id, row.is_forum, row.active) == (FORUM, True, True)


async def test_private_chats_and_channels_are_not_staff_chats(service, telegram) -> None:
    telegram.chats[STAFF] = chat("private", None)
    telegram.members[(STAFF, BOT_ID)] = member("member")
    telegram.chats[-1_003_000_000_001] = chat("channel", "News")
    telegram.members[(-1_003_000_000_001, BOT_ID)] = member("administrator")

    for chat_id in (STAFF, -1_003_000_000_001):
        registration = await service.register(chat_id, by=ADMIN)
        assert registration.refusal is Refusal.NOT_A_GROUP


async def test_a_chat_where_the_bot_may_not_post_is_refused(service, telegram) -> None:
    telegram.group(
        SUPERGROUP, "Kitchen", bot=member("restricted", is_member=True, can_send_messages=False)
    )
    registration = await service.register(SUPERGROUP, by=ADMIN)
    assert registration.refusal is Refusal.CANNOT_POST

    telegram.members[(SUPERGROUP, BOT_ID)] = member(
        "restricted", is_member=True, can_send_messages=True
    )
    assert (await service.register(SUPERGROUP, by=ADMIN)).outcome is Outcome.REGISTERED


async def test_registering_again_refreshes_and_is_said_to_be_an_update(
    service, telegram, session_factory, clock
) -> None:
    telegram.group(SUPERGROUP, "Kitchen", bot=member("member"))
    first = await service.register(SUPERGROUP, by=ADMIN)
    registered_at = clock.now()

    clock.advance(hours=1)
    again = await service.register(SUPERGROUP, by=GRANTED)
    assert again.outcome is Outcome.UPDATED
    assert again.registered
    # Nothing changed: nothing more in the audit log.
    assert await audit_actions(session_factory) == [(ADDED_ACTION, ADMIN)]

    # The group was renamed and made a forum (the bot got topic rights): both follow.
    telegram.group(
        SUPERGROUP,
        "Kitchen & bar",
        bot=member("administrator", can_manage_topics=True),
        forum=True,
    )
    renamed = await service.register(SUPERGROUP, by=GRANTED)
    assert renamed.outcome is Outcome.UPDATED
    assert renamed.chat is not None and first.chat is not None
    assert renamed.chat.id == first.chat.id
    [row] = await staff_rows(session_factory)
    assert (row.title, row.is_forum, row.added_by, row.created_at) == (
        "Kitchen & bar",
        True,
        ADMIN,
        registered_at,
    )
    assert await audit_actions(session_factory) == [
        (ADDED_ACTION, ADMIN),
        (UPDATED_ACTION, GRANTED),
    ]


async def test_removing_deactivates_keeps_the_row_and_registering_brings_it_back(
    service, telegram, session_factory, clock
) -> None:
    telegram.group(GROUP, "Front desk", bot=member("member"))
    first = await service.register(GROUP, by=ADMIN)
    assert first.chat is not None

    assert await service.remove(GROUP, by=GRANTED) is True
    assert await service.remove(GROUP, by=GRANTED) is False  # already removed
    assert await service.remove(SUPERGROUP, by=GRANTED) is False  # never registered
    [row] = await staff_rows(session_factory)
    assert row.active is False
    assert await service.list() == []
    assert [c.chat_id for c in await service.list(include_inactive=True)] == [GROUP]

    clock.advance(days=1)
    back = await service.register(GROUP, by=GRANTED)
    assert back.outcome is Outcome.REGISTERED  # it receives cases again
    assert back.chat is not None
    assert back.chat.id == first.chat.id  # same row: its rules and old cases
    [row] = await staff_rows(session_factory)
    assert (row.active, row.added_by) == (True, GRANTED)
    assert await audit_actions(session_factory) == [
        (ADDED_ACTION, ADMIN),
        (REMOVED_ACTION, GRANTED),
        (ADDED_ACTION, GRANTED),
    ]


async def test_the_bot_removed_from_a_staff_chat_deactivates_it(
    service, telegram, session_factory
) -> None:
    telegram.group(FORUM, "Cases", bot=member("administrator", can_manage_topics=True), forum=True)
    await service.register(FORUM, by=ADMIN)

    assert await service.bot_left(FORUM, by=STAFF) is True
    assert await service.bot_left(FORUM) is False  # a duplicate update changes nothing
    assert await service.bot_left(GROUP) is False  # not a staff chat
    [row] = await staff_rows(session_factory)
    assert row.active is False
    assert await audit_actions(session_factory) == [
        (ADDED_ACTION, ADMIN),
        (BOT_LEFT_ACTION, STAFF),
    ]

    # Added back, it is not a staff chat until an admin registers it again.
    telegram.members[(FORUM, BOT_ID)] = member("left")
    refused = await service.register(FORUM, by=ADMIN)
    assert refused.refusal is Refusal.NOT_A_MEMBER
    assert refused.chat is not None and refused.chat.active is False


async def test_a_group_upgraded_to_a_supergroup_keeps_its_staff_chat(
    service, telegram, session_factory
) -> None:
    telegram.group(GROUP, "Front desk", bot=member("member"))
    first = await service.register(GROUP, by=ADMIN)
    assert first.chat is not None

    assert await service.migrated(GROUP, SUPERGROUP) is True
    assert await service.migrated(GROUP, SUPERGROUP) is False  # told twice (both chats say it)
    [row] = await staff_rows(session_factory)
    assert (row.id, row.chat_id, row.active) == (first.chat.id, SUPERGROUP, True)
    assert (MOVED_ACTION, None) in await audit_actions(session_factory)

    # An admin adding the old id by hand: Telegram says where it went, and that is registered.
    telegram.members[(GROUP, BOT_ID)] = TelegramMigrateToChat(
        GetChatMember(chat_id=GROUP, user_id=BOT_ID),
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=SUPERGROUP,
    )
    telegram.group(SUPERGROUP, "Front desk", bot=member("member"))
    again = await service.register(GROUP, by=ADMIN)
    assert again.outcome is Outcome.UPDATED
    assert again.chat_id == SUPERGROUP


async def test_a_migration_onto_a_chat_registered_on_its_own_retires_the_old_row(
    service, telegram, session_factory
) -> None:
    telegram.group(GROUP, "Old", bot=member("member"))
    telegram.group(SUPERGROUP, "New", bot=member("member"))
    await service.register(GROUP, by=ADMIN)
    await service.register(SUPERGROUP, by=ADMIN)

    assert await service.migrated(GROUP, SUPERGROUP) is False
    rows = {row.chat_id: row.active for row in await staff_rows(session_factory)}
    assert rows == {GROUP: False, SUPERGROUP: True}


async def test_the_list_is_in_registration_order(service, telegram, clock) -> None:
    for chat_id, title in ((SUPERGROUP, "Second"), (GROUP, "First")):
        telegram.group(chat_id, title, bot=member("member"))
    await service.register(GROUP, by=ADMIN)
    clock.advance(minutes=5)
    await service.register(SUPERGROUP, by=ADMIN)
    assert [c.title for c in await service.list()] == ["First", "Second"]


# ----------------------------------------------------------------------------------- routing


async def _chat(
    session: AsyncSession, clock: FakeClock, chat_id: int, *, active: bool = True
) -> StaffChat:
    staff = StaffRepository(session)
    clock.advance(minutes=1)  # each registered a little later than the one before
    upserted = await staff.upsert(
        chat_id, title=f"chat {chat_id}", is_forum=False, by=1, now=clock.now()
    )
    if not active:
        await staff.deactivate(chat_id)
    return upserted.chat


async def test_routing_takes_the_first_matching_rule(session, clock) -> None:
    routing = Routing()
    staff = StaffRepository(session)
    default = await _chat(session, clock, -1)
    downtown = await _chat(session, clock, -2)
    rude = await _chat(session, clock, -3)
    critical = await _chat(session, clock, -4)
    uptown_waits = await _chat(session, clock, -5)
    now = clock.now()
    await staff.add_rule(
        staff_chat_id=critical.id, severity=CaseSeverity.CRITICAL, created_by=1, now=now
    )
    await staff.add_rule(staff_chat_id=rude.id, reason_code="rude_staff", created_by=1, now=now)
    await staff.add_rule(
        staff_chat_id=uptown_waits.id,
        location="Uptown",
        reason_code="waited_too_long",
        created_by=1,
        now=now,
    )
    await staff.add_rule(staff_chat_id=downtown.id, location="  Downtown ", created_by=1, now=now)

    async def chosen(location, reasons=(), severity=CaseSeverity.MEDIUM) -> int | None:
        found = await routing.choose(
            session, location=location, reason_codes=list(reasons), severity=severity
        )
        return found.chat_id if found else None

    # Location: trimmed and case-insensitive.
    assert await chosen("downtown") == -2
    assert await chosen(" DOWNTOWN  ") == -2
    # First match wins: a critical case downtown goes to the critical chat (rule 1).
    assert await chosen("Downtown", severity=CaseSeverity.CRITICAL) == -4
    # A reason matches when it is one of the case's reasons (rule 2 before rule 4).
    assert await chosen("Downtown", ["dirty", "rude_staff"]) == -3
    # All of a rule's matchers must match.
    assert await chosen("Uptown", ["waited_too_long"]) == -5
    assert await chosen("Uptown", ["dirty"]) == -1
    assert await chosen("Midtown", ["waited_too_long"]) == -1
    # Severity is matched exactly.
    assert await chosen(None, severity=CaseSeverity.HIGH) == -1
    # No location: rules naming one never match; no rule at all: the default chat.
    assert await chosen(None) == default.chat_id
    assert [rule.position for rule in await staff.rules()] == [1, 2, 3, 4]


async def test_routing_skips_inactive_chats_and_falls_back_to_the_earliest_active(
    session, clock
) -> None:
    routing = Routing()
    staff = StaffRepository(session)
    first = await _chat(session, clock, -1)
    second = await _chat(session, clock, -2)
    downtown = await _chat(session, clock, -3)
    await staff.add_rule(
        staff_chat_id=downtown.id, location="Downtown", created_by=1, now=clock.now()
    )
    await staff.add_rule(staff_chat_id=second.id, created_by=1, now=clock.now())  # catch-all

    async def chosen(location: str | None) -> int | None:
        found = await routing.choose(
            session, location=location, reason_codes=[], severity=CaseSeverity.LOW
        )
        return found.chat_id if found else None

    assert await chosen("Downtown") == -3
    assert await chosen("Uptown") == -2  # the catch-all rule beats the default chat

    await staff.deactivate(downtown.chat_id)
    assert await chosen("Downtown") == -2  # its rule no longer counts

    await staff.deactivate(second.chat_id)
    assert await chosen("Downtown") == first.chat_id  # no rule left: the earliest active chat

    await staff.deactivate(first.chat_id)
    assert await chosen("Downtown") is None  # no active chat: the caller tells the admins

    # Registered again, a chat's rules count again.
    await staff.upsert(downtown.chat_id, title="back", is_forum=False, by=1, now=clock.now())
    assert await chosen("Downtown") == -3
    assert await chosen("Uptown") == -3  # now the only (so the earliest) active chat


async def test_rules_can_be_put_in_place_and_removed_by_their_number(session, clock) -> None:
    staff = StaffRepository(session)
    chats = [await _chat(session, clock, -n) for n in (1, 2, 3, 4)]
    now = clock.now()
    await staff.add_rule(staff_chat_id=chats[0].id, location="A", created_by=1, now=now)
    await staff.add_rule(staff_chat_id=chats[1].id, location="B", created_by=1, now=now)
    await staff.add_rule(staff_chat_id=chats[2].id, location="C", created_by=1, now=now, place=1)
    await staff.add_rule(staff_chat_id=chats[3].id, location=" ", created_by=1, now=now, place=99)

    rules = await staff.rules()
    assert [rule.location for rule in rules] == ["C", "A", "B", None]
    assert [rule.staff_chat.chat_id for rule in rules] == [-3, -1, -2, -4]

    removed = await staff.remove_rule(2)
    assert removed is not None and removed.location == "A"
    assert await staff.remove_rule(9) is None
    assert await staff.remove_rule(0) is None
    assert [rule.location for rule in await staff.rules()] == ["C", "B", None]
    with pytest.raises(ValueError, match="from 1"):
        await staff.add_rule(staff_chat_id=chats[0].id, created_by=1, now=now, place=0)
    assert len(list(await session.scalars(select(RoutingRule)))) == 3


# ------------------------------------------------------------------------------------- roles


async def test_admins_come_from_settings_and_from_granted_roles(session_factory, clock) -> None:
    roles = Roles(session_factory, [ADMIN, 999, ADMIN])
    async with session_factory.begin() as session:
        repository = RoleRepository(session)
        await repository.grant(GRANTED, RoleName.ADMIN, granted_by=ADMIN, now=clock.now())
        await repository.grant(999, RoleName.ADMIN, granted_by=ADMIN, now=clock.now())
        await repository.grant(STAFF, RoleName.STAFF, granted_by=ADMIN, now=clock.now())

    assert await roles.is_admin(ADMIN)
    assert await roles.is_admin(GRANTED)
    assert not await roles.is_admin(STAFF)  # a staff role is not an admin
    assert not await roles.is_admin(STRANGER)
    assert await roles.admins() == [ADMIN, 999, GRANTED]  # settings first, each once


# ------------------------------------------------------------------------------ staff access


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_staff_access_admins_always_members_while_they_are(telegram, roles) -> None:
    ticks = Ticks()
    access = StaffAccess(telegram, roles, monotonic=ticks)
    telegram.group(SUPERGROUP, "Kitchen", bot=member("member"))
    telegram.members[(SUPERGROUP, STAFF)] = member("member")
    telegram.members[(SUPERGROUP, 555)] = member("restricted", is_member=True)
    telegram.members[(SUPERGROUP, 556)] = member("restricted", is_member=False)
    telegram.members[(SUPERGROUP, 557)] = member("creator")
    telegram.members[(SUPERGROUP, 558)] = member("kicked")

    assert await access.may_act(SUPERGROUP, ADMIN)  # not even a member
    assert telegram.member_calls() == 0  # admins need no lookup
    assert await access.may_act(SUPERGROUP, STAFF)
    assert await access.may_act(SUPERGROUP, 555)
    assert not await access.may_act(SUPERGROUP, 556)
    assert await access.may_act(SUPERGROUP, 557)
    assert not await access.may_act(SUPERGROUP, 558)
    assert not await access.may_act(SUPERGROUP, STRANGER)  # left
    # Telegram's 400/403 are a no.
    assert not await access.may_act(GROUP, STAFF)


async def test_staff_access_caches_yes_and_no_for_a_minute(telegram, roles) -> None:
    ticks = Ticks()
    access = StaffAccess(telegram, roles, monotonic=ticks)
    telegram.group(SUPERGROUP, "Kitchen", bot=member("member"))
    telegram.members[(SUPERGROUP, STAFF)] = member("member")

    for _ in range(20):  # a burst of presses
        assert await access.may_act(SUPERGROUP, STAFF)
        assert not await access.may_act(SUPERGROUP, STRANGER)
    assert telegram.member_calls() == 2

    # Removed from the chat: still allowed within the minute, refused after it.
    telegram.members[(SUPERGROUP, STAFF)] = member("left")
    telegram.members[(SUPERGROUP, STRANGER)] = member("member")
    ticks.now += 59
    assert await access.may_act(SUPERGROUP, STAFF)
    assert not await access.may_act(SUPERGROUP, STRANGER)
    ticks.now += 2
    assert not await access.may_act(SUPERGROUP, STAFF)
    assert await access.may_act(SUPERGROUP, STRANGER)
    assert telegram.member_calls() == 4

    # Told of a change, it asks again at once.
    telegram.members[(SUPERGROUP, STAFF)] = member("member")
    access.forget(SUPERGROUP, STAFF)
    assert await access.may_act(SUPERGROUP, STAFF)
    access.forget(SUPERGROUP)
    assert await access.may_act(SUPERGROUP, STRANGER)
    assert telegram.member_calls() == 6


async def test_staff_access_cache_is_bounded_and_failures_are_not_remembered(
    telegram, roles
) -> None:
    access = StaffAccess(telegram, roles, max_entries=3, monotonic=Ticks())
    telegram.group(SUPERGROUP, "Kitchen", bot=member("member"))
    for user in range(1000, 1010):
        telegram.members[(SUPERGROUP, user)] = member("member")
        assert await access.may_act(SUPERGROUP, user)
    assert len(access._cache) == 3
    calls = telegram.member_calls()
    assert await access.may_act(SUPERGROUP, 1009)  # recent: cached
    assert await access.may_act(SUPERGROUP, 1000)  # long evicted: asked again
    assert telegram.member_calls() == calls + 1

    # A network failure is not a no: it propagates and is not cached.
    telegram.members[(SUPERGROUP, STAFF)] = TelegramNetworkError(
        GetChatMember(chat_id=SUPERGROUP, user_id=STAFF), "timeout"
    )
    with pytest.raises(TelegramNetworkError):
        await access.may_act(SUPERGROUP, STAFF)
    telegram.members[(SUPERGROUP, STAFF)] = member("member")
    assert await access.may_act(SUPERGROUP, STAFF)
