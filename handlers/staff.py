"""Staff chats: /staff_here in a group, /staffchat in an admin's private chat, and the bot's own
membership changes.

Thin: check who asks (`Roles`), call `StaffChatService`, word the result with `bot.staff_texts`.

Who hears what. In a group the bot stays quiet for commands it does not serve: /staff_here from
anyone but an admin gets no reply at all. In a private chat a non-admin's /staffchat gets exactly
what an unknown command gets (`handlers.customer.unknown_command`, called, not copied), so the
admin commands do not reveal themselves. This router must be included before the customer
router, whose catch-alls take every private message.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import ChatMemberUpdated, Message

from bot import staff_texts
from bot.menus import CommandMenus
from bot.roles import Roles
from bot.staffchats import Outcome, Refusal, Registration, StaffChatService, is_present
from bot.texts import Texts
from handlers.customer import unknown_command
from storage.models import StaffChat

_GROUPS = frozenset({"group", "supergroup"})


def router() -> Router:
    staff = Router(name="staff")

    groups = Router(name="staff-groups")
    groups.message.filter(F.chat.type.in_(_GROUPS))
    groups.message.register(staff_here, Command("staff_here"))
    groups.message.register(migrated, F.migrate_to_chat_id)

    private = Router(name="staff-private")
    private.message.filter(F.chat.type == "private")
    private.message.register(staffchat, Command("staffchat"))
    private.message.register(staff_here_in_private, Command("staff_here"))

    staff.my_chat_member.register(membership_changed, F.chat.type.in_(_GROUPS))
    staff.include_routers(groups, private)
    return staff


# -- in a group ----------------------------------------------------------------------------------


async def staff_here(
    message: Message, roles: Roles, staff_chats: StaffChatService, menus: CommandMenus
) -> None:
    person = message.from_user
    if person is None or not await roles.is_admin(person.id):
        return  # silence, as for any command the bot does not serve in a group
    registration = await staff_chats.register(message.chat.id, by=person.id)
    if registration.registered:
        await menus.staff_chat_added(message.chat.id)
    await message.answer(_registration_reply(registration, here=True))


async def migrated(message: Message, staff_chats: StaffChatService, menus: CommandMenus) -> None:
    """The group became a supergroup (Telegram posts this in the old group): follow it."""
    new = message.migrate_to_chat_id
    if new is not None and await staff_chats.migrated(message.chat.id, new):
        await menus.staff_chat_added(new)


async def membership_changed(event: ChatMemberUpdated, staff_chats: StaffChatService) -> None:
    """The bot's own status changed in a group; removed or left: the chat stops receiving
    cases (its menu went with the bot). Being added (back) does nothing by itself: an admin
    sends /staff_here."""
    if not is_present(event.new_chat_member):
        await staff_chats.bot_left(event.chat.id, by=event.from_user.id)


# -- in an admin's private chat ------------------------------------------------------------------


async def staffchat(
    message: Message,
    command: CommandObject,
    roles: Roles,
    staff_chats: StaffChatService,
    menus: CommandMenus,
    words: Texts,
    locale: str,
) -> None:
    person = message.from_user
    if person is None or not await roles.is_admin(person.id):
        await unknown_command(message, words, locale)
        return
    action, _, rest = (command.args or "").strip().partition(" ")
    argument = rest.strip()
    if action == "list" and not argument:
        await message.answer(_list_reply(await staff_chats.list(include_inactive=True)))
        return
    chat_id = _chat_id(argument)
    if action == "add" and chat_id is not None:
        registration = await staff_chats.register(chat_id, by=person.id)
        if registration.registered:
            await menus.staff_chat_added(chat_id)
        await message.answer(_registration_reply(registration, here=False))
    elif action == "remove" and chat_id is not None:
        known = await staff_chats.get(chat_id)
        if await staff_chats.remove(chat_id, by=person.id):
            await menus.staff_chat_removed(chat_id)
            name = _name(known) if known is not None else str(chat_id)
            await message.answer(staff_texts.REMOVED.format(chat=name))
        else:
            await message.answer(staff_texts.NOT_REMOVED.format(chat_id=chat_id))
    else:
        await message.answer(staff_texts.USAGE)


async def staff_here_in_private(message: Message, roles: Roles, words: Texts, locale: str) -> None:
    person = message.from_user
    if person is None or not await roles.is_admin(person.id):
        await unknown_command(message, words, locale)
        return
    await message.answer(staff_texts.STAFF_HERE_IN_PRIVATE)


# -- wording -------------------------------------------------------------------------------------


def _chat_id(text: str) -> int | None:
    """A Telegram chat id as typed (groups are negative: -100…); None if it is not one."""
    try:
        return int(text)
    except ValueError:
        return None


def _name(chat: StaffChat) -> str:
    return chat.title or staff_texts.UNTITLED.format(chat_id=chat.chat_id)


_REFUSALS = {
    Refusal.NOT_A_MEMBER: staff_texts.REFUSED_NOT_A_MEMBER,
    Refusal.NOT_A_GROUP: staff_texts.REFUSED_NOT_A_GROUP,
    Refusal.CANNOT_POST: staff_texts.REFUSED_CANNOT_POST,
    Refusal.NEEDS_TOPIC_RIGHTS: staff_texts.REFUSED_NEEDS_TOPIC_RIGHTS,
}


def _registration_reply(registration: Registration, *, here: bool) -> str:
    """What the admin reads: in the chat itself (``here``) or about it, in private."""
    chat = registration.chat
    if here:
        name = staff_texts.THIS_CHAT
    elif registration.title:
        name = registration.title
    else:
        name = staff_texts.UNTITLED.format(chat_id=registration.chat_id)
    if registration.outcome is Outcome.REFUSED:
        assert registration.refusal is not None
        return _REFUSALS[registration.refusal].format(
            chat=name, chat_id=registration.chat_id, detail=registration.detail or ""
        )
    assert chat is not None
    if not here:
        registered = registration.outcome is Outcome.REGISTERED
        template = staff_texts.ADDED if registered else staff_texts.ALREADY_ADDED
        return template.format(chat=_name(chat))
    if registration.outcome is Outcome.UPDATED:
        return staff_texts.ALREADY_REGISTERED
    return staff_texts.REGISTERED_FORUM if chat.is_forum else staff_texts.REGISTERED_GROUP


def _list_reply(chats: list[StaffChat]) -> str:
    active = [chat for chat in chats if chat.active]
    removed = [chat for chat in chats if not chat.active]
    lines = [staff_texts.LIST_HEADING] if active else [staff_texts.LIST_NONE]
    lines += [
        staff_texts.LIST_LINE.format(
            n=n,
            chat=_name(chat),
            kind=staff_texts.KIND_FORUM if chat.is_forum else staff_texts.KIND_GROUP,
            chat_id=chat.chat_id,
        )
        for n, chat in enumerate(active, 1)
    ]
    if removed:
        lines += ["", staff_texts.LIST_REMOVED_HEADING]
        lines += [f"• {_name(chat)} — id {chat.chat_id}" for chat in removed]
    return "\n".join(lines)
