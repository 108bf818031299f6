"""Command menus: what each audience sees when it types "/" (Telegram's setMyCommands scopes).

Telegram picks the menu of a chat from the most specific scope that has one, and within a scope
the list for the user's language before the list for no language. Hearback publishes:

- **Default** (no language, and "zh" for Simplified Chinese): the customer's commands. Every
  private chat without a menu of its own (every customer's) sees these.
- **All group chats**: `GROUP_COMMANDS`, the one command that does something in a group that is
  not a staff chat yet. Without it, groups would fall back to the default scope and show the
  customer's commands, which answer nothing there.
- **Each admin's private chat** (`BotCommandScopeChat`): `ADMIN_COMMANDS`, English only (the
  back room is English). The chat scope outranks the default list in any language.
- **Each active staff chat** (`BotCommandScopeChat`, not `…ChatAdministrators`): staff act
  on cases with the card's buttons and by replying, so their menu is only `STAFF_COMMANDS`.
  Whether someone may use a command there is decided by Hearback's own admin list, not by
  Telegram's group-admin status, so a chat-administrators scope would hide nothing that needs
  hiding and would leave the ordinary members with the generic group menu instead.

Telegram refuses a chat scope for a chat the bot cannot reach (an admin who never started the
bot: 400 chat not found; a group it was removed from: 403). That is normal, so it is logged at
INFO and the other menus are published all the same; menus are a convenience, never a reason
for start-up or an admin command to fail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)

from bot.roles import Roles
from bot.staffchats import StaffChatService

__all__ = [
    "ADMIN_COMMANDS",
    "ADMIN_COMMAND_NAMES",
    "CHINESE",
    "CUSTOMER_COMMANDS",
    "CUSTOMER_COMMANDS_ZH",
    "GROUP_COMMANDS",
    "STAFF_COMMANDS",
    "CommandMenus",
    "Commands",
    "check_commands",
]

log = logging.getLogger(__name__)

#: (command without the slash, one-line description), in menu order.
Commands = tuple[tuple[str, str], ...]

#: Telegram's language_code for Chinese (its apps send "zh" for Simplified Chinese, or
#: "zh-hans"; setMyCommands takes the two-letter code).
CHINESE = "zh"

# The wording follows the lines of the customer's /help text (bot.texts.HELP) and its
# Simplified Chinese translation, so the menu and /help say the same thing.
CUSTOMER_COMMANDS: Commands = (
    ("help", "What I do and how to answer"),
    ("stop", "No more questions"),
    ("forget", "Erase your personal data"),
    ("language", "Choose your language"),
)
CUSTOMER_COMMANDS_ZH: Commands = (
    ("help", "查看本说明"),
    ("stop", "不再接收提问"),
    ("forget", "删除您的个人数据"),
    ("language", "选择语言"),
)

#: An admin's private chat: the admin commands first, then the customer's (admins can be
#: customers too, and /help shows what customers read). A handlers module that serves admin
#: commands lists its own as ``COMMANDS``; a test keeps the two in step.
ADMIN_COMMANDS: Commands = (
    ("settings", "Show every setting, its value and where it comes from"),
    ("set", "Change a setting: /set <name> <value>"),
    ("reset", "Undo a change: /reset <name>"),
    ("texts", "List the customer texts by name and language"),
    ("text", "Show or change a text: /text <name> [lang] [new text]"),
    ("text_reset", "Restore a text's default: /text_reset <name> [lang]"),
    ("reasons", "Reason chips: list, add, rename, move, hide, show"),
    ("routes", "Routing rules: which staff chat gets which cases"),
    ("route", "Add or remove a routing rule"),
    ("staffchat", "List, add or remove staff chats"),
    ("link", "A QR code for a counter: /link <location> [staff]"),
    ("test_survey", "Send yourself the survey customers get"),
    ("export", "Surveys as a spreadsheet (CSV): /export [period]"),
    ("admins", "List, add or remove admins"),
    ("audit", "The last 20 changes"),
    ("stats", "Figures and a chart: /stats [period] [location]"),
    *CUSTOMER_COMMANDS,
)

#: A staff chat. Staff work with the card's buttons and by replying; /staff_here is for
#: Hearback's admins (anyone else gets no answer in a group), /stats for whoever may act on cases.
STAFF_COMMANDS: Commands = (
    ("staff_here", "Admins: refresh this staff chat (after renaming it or changing my rights)"),
    ("stats", "This chat's figures and a chart: /stats [period] [location]"),
)

#: Any other group the bot is in: how an admin makes it a staff chat.
GROUP_COMMANDS: Commands = (("staff_here", "Admins: make this group a staff chat"),)

#: Commands only admins may use: the admin router lets these in (for admins) and leaves every
#: other command to the customer router.
ADMIN_COMMAND_NAMES: frozenset[str] = frozenset(name for name, _ in ADMIN_COMMANDS) - frozenset(
    name for name, _ in CUSTOMER_COMMANDS
)

# Telegram's limits (Bot API, BotCommand and setMyCommands).
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_MAX_DESCRIPTION = 256
_MAX_COMMANDS = 100


def check_commands(commands: Commands) -> None:
    """Raise ValueError unless Telegram would take this list (names, descriptions, count)."""
    if not 1 <= len(commands) <= _MAX_COMMANDS:
        raise ValueError(f"a menu has 1 to {_MAX_COMMANDS} commands, not {len(commands)}")
    names = [name for name, _ in commands]
    if len(set(names)) != len(names):
        raise ValueError(f"a command appears twice in {names}")
    for name, description in commands:
        if not _COMMAND_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a command name (1-32 of a-z, 0-9, _)")
        if not 1 <= len(description) <= _MAX_DESCRIPTION or description != description.strip():
            raise ValueError(f"the description of /{name} must be 1-{_MAX_DESCRIPTION} characters")


for _menu in (
    CUSTOMER_COMMANDS,
    CUSTOMER_COMMANDS_ZH,
    ADMIN_COMMANDS,
    STAFF_COMMANDS,
    GROUP_COMMANDS,
):
    check_commands(_menu)  # at import: a bad menu fails every test, not a start-up in production


class MenuBot(Protocol):
    """The part of aiogram's `Bot` this module uses (unit tests pass a fake)."""

    async def set_my_commands(
        self, commands: list[BotCommand], scope: Any = None, language_code: str | None = None
    ) -> Any: ...

    async def delete_my_commands(
        self, scope: Any = None, language_code: str | None = None
    ) -> Any: ...


def _bot_commands(commands: Commands) -> list[BotCommand]:
    return [BotCommand(command=name, description=description) for name, description in commands]


class CommandMenus:
    """Publishes the menus (see the module docstring). Every method returns True when Telegram
    took the change and False when it refused it (logged); none raises for Telegram's errors."""

    def __init__(
        self,
        bot: MenuBot,
        roles: Roles,
        staff_chats: StaffChatService,
        reachable: Callable[[Iterable[int]], Awaitable[set[int]]] | None = None,
    ) -> None:
        self._bot = bot
        self._roles = roles
        self._staff_chats = staff_chats
        # Which admins Telegram lets the bot reach (they pressed Start): asking for the others'
        # menus only earns "chat not found". Without it, every admin is tried.
        self._reachable = reachable
        self._admins_done: set[int] = set()

    async def publish_all(self) -> int:
        """Every menu, as things stand: at start-up. Returns how many Telegram refused."""
        results = [
            await self._set(CUSTOMER_COMMANDS, BotCommandScopeDefault(), "customers"),
            await self._set(
                CUSTOMER_COMMANDS_ZH, BotCommandScopeDefault(), "customers (zh)", CHINESE
            ),
            await self._set(GROUP_COMMANDS, BotCommandScopeAllGroupChats(), "groups"),
        ]
        admins = await self._roles.admins()
        if self._reachable is not None:
            reachable = await self._reachable(admins)
            admins = [user_id for user_id in admins if user_id in reachable]
        for user_id in admins:
            results.append(await self.admin_added(user_id))
        for chat in await self._staff_chats.list():
            results.append(await self.staff_chat_added(chat.chat_id))
        return results.count(False)

    async def admin_added(self, user_id: int) -> bool:
        """Give the admin's private chat the admin menu."""
        done = await self._set(
            ADMIN_COMMANDS, BotCommandScopeChat(chat_id=user_id), f"admin {user_id}"
        )
        if done:
            self._admins_done.add(user_id)
        return done

    async def admin_seen(self, user_id: int) -> None:
        """An admin is writing to the bot: make sure their menu is there (once per process;
        an admin who had not pressed Start at start-up gets it now)."""
        if user_id not in self._admins_done:
            await self.admin_added(user_id)

    async def admin_removed(self, user_id: int) -> bool:
        """The person sees the customer's menu again. Someone still an admin (e.g. through
        ADMIN_IDS) keeps the admin menu."""
        if await self._roles.is_admin(user_id):
            return await self.admin_added(user_id)
        self._admins_done.discard(user_id)
        return await self._delete(BotCommandScopeChat(chat_id=user_id), f"admin {user_id}")

    async def staff_chat_added(self, chat_id: int) -> bool:
        """Give a staff chat (new, re-registered or moved to a new id) the staff menu."""
        return await self._set(
            STAFF_COMMANDS, BotCommandScopeChat(chat_id=chat_id), f"staff chat {chat_id}"
        )

    async def staff_chat_removed(self, chat_id: int) -> bool:
        """The chat is no staff chat any more: it sees the group menu again."""
        return await self._delete(BotCommandScopeChat(chat_id=chat_id), f"staff chat {chat_id}")

    async def _set(
        self,
        commands: Commands,
        scope: BotCommandScopeDefault | BotCommandScopeAllGroupChats | BotCommandScopeChat,
        audience: str,
        language: str | None = None,
    ) -> bool:
        try:
            await self._bot.set_my_commands(
                _bot_commands(commands), scope=scope, language_code=language
            )
        except TelegramAPIError as error:
            _refused("set", audience, error)
            return False
        return True

    async def _delete(self, scope: BotCommandScopeChat, audience: str) -> bool:
        try:
            await self._bot.delete_my_commands(scope=scope)
        except TelegramAPIError as error:
            _refused("delete", audience, error)
            return False
        return True


def _refused(verb: str, audience: str, error: TelegramAPIError) -> None:
    # 400/403 are the expected ones (a chat the bot cannot reach); anything else (a network
    # failure past the limiter's retries) deserves a look, but still stops nothing.
    level = (
        logging.INFO
        if isinstance(error, TelegramBadRequest | TelegramForbiddenError)
        else logging.WARNING
    )
    log.log(level, "Could not %s the command menu of %s: %s", verb, audience, error.message)
