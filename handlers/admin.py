"""The admin's private chat: /admins, /settings, /set, /reset, /audit, and the admin routers of
texts, reasons, routes, links and export.

Who gets in. The router lets through, in private chats only, admin commands
(`bot.menus.ADMIN_COMMAND_NAMES`) and replies to the bot's own messages (prompts such as /text's
"reply with the new wording") — and only from admins. Everyone else falls through to the customer
router, whose `unknown_command` answers an admin command exactly as it answers a made-up one, so
admin commands never reveal themselves. The handlers below therefore never check roles again.
"""

from __future__ import annotations

import difflib
import json
from contextlib import suppress
from datetime import UTC
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message, MessageOriginHiddenUser, MessageOriginUser, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.live_settings import RUNTIME, Change, LiveSettings, SettingError, Source
from bot.menus import ADMIN_COMMAND_NAMES, CommandMenus
from bot.roles import Revocation, Roles
from handlers import admin_export, admin_links, admin_reasons, admin_routes, admin_texts, stats
from storage.models import AuditEntry
from storage.repositories import AuditRepository

# -- wording (English: admins read it, customers never do) -------------------------------------

SETTINGS_HEADING = "Settings — change one with /set <name> <value>, undo with /reset <name>:"
SOURCE_WORDS = {
    Source.CHAT: "set in the chat",
    Source.ENVIRONMENT: "from the environment",
    Source.DEFAULT: "default",
}
SETTING_SOURCE = {
    Source.CHAT: "set in the chat",
    Source.ENVIRONMENT: "the environment",
    Source.DEFAULT: "the default",
}
SET_USAGE = "Usage: /set <name> <value>, e.g. /set survey_delay 30m. /settings lists the names."
RESET_USAGE = "Usage: /reset <name>, e.g. /reset survey_delay. /settings lists the names."
UNKNOWN_SETTING = "There is no setting {name!r} that can be changed in the chat."
DID_YOU_MEAN = "Did you mean {names}?"
SET_DONE = "{name} is now {value} (was {old})."
SET_SAME = "{name} was already {value}; nothing changed."
RESET_NOTE = "/reset {name} goes back to {fallback} ({source})."
RESET_DONE = "{name} is back to {value} ({source})."
RESET_NOTHING = "{name} was not changed in the chat; it stays {value} ({source})."
REFUSED = "{name} stays {value}: {why}"

ADMINS_USAGE = (
    "Usage: /admins list, /admins add <user id>, /admins remove <user id> — or reply with "
    "/admins add or /admins remove to a message of theirs that you forwarded here."
)
ADMINS_HEADING = "Admins:"
ADMIN_CONFIGURED = "from ADMIN_IDS"
ADMIN_GRANTED = "added in the chat"
ADMIN_ADDED = "{who} is now an admin."
ADMIN_ALREADY = "{who} is already an admin."
ADMIN_REMOVED = "{who} is no longer an admin."
ADMIN_NOT_ONE = "{who} is not an admin; nothing changed."
ADMIN_CONFIGURED_STAYS = (
    "{who} is an admin through ADMIN_IDS; remove them there (and restart) instead."
)
ADMIN_LAST = "{who} is the last admin and stays one: add another admin first."
ADMIN_HIDDEN = (
    "Telegram hides who wrote that message (their privacy settings), so I cannot tell their "
    "user id. Ask them for it (they can see it with @userinfobot) and send /admins add <id>."
)
ADMIN_NOT_A_PERSON = "That message was not written by a person; admins must be people."
ADMIN_WELCOME = "You are now an admin of this feedback bot. Your commands are in the menu."

AUDIT_HEADING = "The last {count} changes, newest first:"
AUDIT_HEADING_ONE = "The only change so far:"
AUDIT_NONE = "No changes have been recorded yet."
AUDIT_USAGE = "Usage: /audit (the last 20 changes)."

# What an audit line shows of a value at most: the full text stays in the database.
_AUDIT_VALUE_CHARS = 60


def router() -> Router:
    admin = Router(name="admin")
    admin.message.filter(F.chat.type == "private", AdminOnly())
    admin.message.register(settings_, Command("settings"))
    admin.message.register(set_, Command("set"))
    admin.message.register(reset, Command("reset"))
    admin.message.register(admins, Command("admins"))
    admin.message.register(audit, Command("audit"))
    admin.include_routers(
        admin_texts.router(), admin_reasons.router(), admin_routes.router(), admin_links.router()
    )
    admin.include_router(admin_export.router())
    admin.include_router(stats.router())
    return admin


class AdminOnly(Filter):
    """Admin commands and replies to the bot, from admins. The cheap checks come first: every
    private message passes here, and most are customers talking."""

    async def __call__(self, message: Message, roles: Roles, menus: CommandMenus, bot: Bot) -> bool:
        person = message.from_user
        if person is None or not _admin_business(message, bot.id):
            return False
        if not await roles.is_admin(person.id):
            return False
        await menus.admin_seen(person.id)
        return True


def _admin_business(message: Message, bot_id: int) -> bool:
    text = message.text or ""
    if text.startswith("/"):
        words = text[1:].split(maxsplit=1)  # "/ " has none
        return bool(words) and words[0].partition("@")[0].lower() in ADMIN_COMMAND_NAMES
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


# -- /settings, /set, /reset ---------------------------------------------------------------------


async def settings_(message: Message, live: LiveSettings) -> None:
    blocks = [SETTINGS_HEADING]
    for view in live.views():
        blocks.append(
            f"{view.name} = {view.value}\n"
            f"   source: {SETTING_SOURCE[view.source]} · default: {view.default}\n"
            f"   {view.description}"
        )
    await message.answer("\n\n".join(blocks))


async def set_(message: Message, command: CommandObject, live: LiveSettings) -> None:
    name, _, value = (command.args or "").strip().partition(" ")
    name = name.lower()
    if not name or not value.strip():
        await message.answer(_unknown_setting(name) if name and name not in RUNTIME else SET_USAGE)
        return
    if name not in RUNTIME:
        await message.answer(_unknown_setting(name))
        return
    person = _person(message)
    try:
        change = await live.set(name, value, by=person.id, by_name=person.full_name)
    except SettingError as error:
        current = live.view(name)
        await message.answer(REFUSED.format(name=name, value=current.value, why=error))
        return
    await message.answer(_set_reply(change, live))


async def reset(message: Message, command: CommandObject, live: LiveSettings) -> None:
    args = (command.args or "").split()
    if len(args) != 1:
        await message.answer(RESET_USAGE)
        return
    name = args[0].lower()
    if name not in RUNTIME:
        await message.answer(_unknown_setting(name))
        return
    person = _person(message)
    try:
        change = await live.reset(name, by=person.id, by_name=person.full_name)
    except SettingError as error:  # the environment's value clashes with another chat value
        await message.answer(REFUSED.format(name=name, value=live.view(name).value, why=error))
        return
    view = change.setting
    template = RESET_DONE if change.changed else RESET_NOTHING
    await message.answer(
        template.format(name=name, value=view.value, source=SOURCE_WORDS[view.source])
    )


def _set_reply(change: Change, live: LiveSettings) -> str:
    view = change.setting
    if not change.changed:
        return SET_SAME.format(name=view.name, value=view.value)
    fallback, source = live.fallback(view.name)
    return "\n".join(
        [
            SET_DONE.format(name=view.name, value=view.value, old=change.old),
            RESET_NOTE.format(name=view.name, fallback=fallback, source=SOURCE_WORDS[source]),
        ]
    )


def _unknown_setting(name: str) -> str:
    lines = [UNKNOWN_SETTING.format(name=name)]
    close = difflib.get_close_matches(name, RUNTIME, n=3, cutoff=0.8)
    if close:
        lines.append(DID_YOU_MEAN.format(names=" or ".join(close)))
    lines.append(SET_USAGE)
    return "\n".join(lines)


# -- /admins -------------------------------------------------------------------------------------


async def admins(
    message: Message, command: CommandObject, roles: Roles, menus: CommandMenus, bot: Bot
) -> None:
    args = (command.args or "").split()
    action = args[0].lower() if args else "list"
    if action == "list" and len(args) <= 1:
        await message.answer(await _admin_list(roles, bot))
        return
    if action not in {"add", "remove"} or len(args) > 2:
        await message.answer(ADMINS_USAGE)
        return
    target = await _target(message, args[1] if len(args) == 2 else None)
    if isinstance(target, str):
        await message.answer(target)
        return
    user_id, who = target
    person = _person(message)
    if action == "add":
        if not await roles.grant(user_id, by=person.id, by_name=person.full_name):
            await message.answer(ADMIN_ALREADY.format(who=who))
            return
        await menus.admin_added(user_id)
        with suppress(TelegramAPIError):  # they may never have started the bot: fine
            await bot.send_message(user_id, ADMIN_WELCOME)
        await message.answer(ADMIN_ADDED.format(who=who))
        return
    outcome = await roles.revoke(user_id, by=person.id, by_name=person.full_name)
    if outcome is Revocation.REMOVED:
        await menus.admin_removed(user_id)
    replies = {
        Revocation.REMOVED: ADMIN_REMOVED,
        Revocation.NOT_AN_ADMIN: ADMIN_NOT_ONE,
        Revocation.CONFIGURED: ADMIN_CONFIGURED_STAYS,
        Revocation.LAST_ADMIN: ADMIN_LAST,
    }
    await message.answer(replies[outcome].format(who=who))


async def _target(message: Message, typed: str | None) -> tuple[int, str] | str:
    """Whom /admins add|remove is about: a typed user id, or the author of the forwarded
    message it replies to. A string is the reason there is none."""
    if typed is not None:
        if not typed.isdigit() or int(typed) <= 0:
            return ADMINS_USAGE
        return int(typed), typed
    replied = message.reply_to_message
    origin = replied.forward_origin if replied is not None else None
    if isinstance(origin, MessageOriginUser):
        if origin.sender_user.is_bot:
            return ADMIN_NOT_A_PERSON
        return origin.sender_user.id, _who(origin.sender_user)
    if isinstance(origin, MessageOriginHiddenUser):
        return ADMIN_HIDDEN
    if origin is not None:
        return ADMIN_NOT_A_PERSON
    return ADMINS_USAGE


async def _admin_list(roles: Roles, bot: Bot) -> str:
    lines = [ADMINS_HEADING]
    configured = set(roles.configured_admins)
    for n, user_id in enumerate(await roles.admins(), start=1):
        where = ADMIN_CONFIGURED if user_id in configured else ADMIN_GRANTED
        lines.append(f"{n}. {await _name_of(bot, user_id)} — {where}")
    lines += ["", ADMINS_USAGE]
    return "\n".join(lines)


async def _name_of(bot: Bot, user_id: int) -> str:
    """ "Bea (@bea, 5000001)" when Telegram tells us, else the id alone: Telegram knows only
    people who have written to the bot."""
    try:
        chat = await bot.get_chat(user_id)
    except TelegramAPIError:
        return str(user_id)
    name = " ".join(part for part in (chat.first_name, chat.last_name) if part)
    handle = f"@{chat.username}, " if chat.username else ""
    return f"{name} ({handle}{user_id})" if name else str(user_id)


def _who(user: User) -> str:
    return f"{user.full_name} ({user.id})"


# -- /audit --------------------------------------------------------------------------------------


async def audit(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    live: LiveSettings,
) -> None:
    if command.args:
        await message.answer(AUDIT_USAGE)
        return
    async with sessions() as session:
        entries = await AuditRepository(session).latest(20)
    if not entries:
        await message.answer(AUDIT_NONE)
        return
    zone = live.current.zone
    lines = [AUDIT_HEADING.format(count=len(entries)) if len(entries) > 1 else AUDIT_HEADING_ONE]
    lines += [_audit_line(entry, zone) for entry in entries]
    await message.answer("\n".join(lines))


def _audit_line(entry: AuditEntry, zone: Any) -> str:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    when = at.astimezone(zone).strftime("%d %b %H:%M")
    who = entry.actor_name or (str(entry.actor_id) if entry.actor_id else "the bot")
    what = entry.action + (f" {entry.target}" if entry.target else "")
    change = ""
    if entry.old_value is not None or entry.new_value is not None:
        change = f": {_short(entry.old_value)} → {_short(entry.new_value)}"
    return f"{when} · {who} · {what}{change}"


def _short(value: object) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= _AUDIT_VALUE_CHARS else text[: _AUDIT_VALUE_CHARS - 1] + "…"


def _person(message: Message) -> User:
    assert message.from_user is not None  # AdminOnly let only messages from a person in
    return message.from_user
