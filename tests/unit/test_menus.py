"""Command menus: within Telegram's limits, in step with the commands the handlers serve, and
published to the right scopes without letting Telegram's refusals stop anything."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramServerError
from aiogram.filters import Command
from aiogram.methods import SetMyCommands

from bot import menus
from bot.menus import (
    ADMIN_COMMAND_NAMES,
    ADMIN_COMMANDS,
    CUSTOMER_COMMANDS,
    CUSTOMER_COMMANDS_ZH,
    GROUP_COMMANDS,
    STAFF_COMMANDS,
    CommandMenus,
    check_commands,
)

ALL_MENUS = {
    "customers": CUSTOMER_COMMANDS,
    "customers_zh": CUSTOMER_COMMANDS_ZH,
    "admins": ADMIN_COMMANDS,
    "staff": STAFF_COMMANDS,
    "groups": GROUP_COMMANDS,
}


def names(commands: menus.Commands) -> list[str]:
    return [name for name, _ in commands]


# -- the lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize("menu", list(ALL_MENUS), ids=list(ALL_MENUS))
def test_every_menu_fits_telegram(menu: str) -> None:
    commands = ALL_MENUS[menu]
    check_commands(commands)  # raises on anything Telegram would refuse
    assert len(commands) <= 100
    for name, description in commands:
        assert 1 <= len(name) <= 32 and name == name.lower()
        assert 1 <= len(description) <= 256


@pytest.mark.parametrize(
    ("commands", "complaint"),
    [
        ((), "1 to 100 commands"),
        (tuple((f"c{n}", "x") for n in range(101)), "1 to 100 commands"),
        ((("Help", "x"),), "is not a command name"),
        ((("a" * 33, "x"),), "is not a command name"),
        ((("with-dash", "x"),), "is not a command name"),
        ((("help", ""),), "1-256 characters"),
        ((("help", "x" * 257),), "1-256 characters"),
        ((("help", "a"), ("help", "b")), "appears twice"),
    ],
)
def test_check_commands_refuses_what_telegram_refuses(
    commands: menus.Commands, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_commands(commands)


def test_customers_see_help_stop_forget_language_in_english_and_chinese() -> None:
    assert names(CUSTOMER_COMMANDS) == ["help", "stop", "forget", "language"]
    assert names(CUSTOMER_COMMANDS_ZH) == names(CUSTOMER_COMMANDS)
    for (_, english), (_, chinese) in zip(CUSTOMER_COMMANDS, CUSTOMER_COMMANDS_ZH, strict=True):
        assert english != chinese
        assert any("\u4e00" <= character <= "\u9fff" for character in chinese)


def test_admins_see_every_admin_command_and_the_customers_ones() -> None:
    assert set(names(ADMIN_COMMANDS)) == ADMIN_COMMAND_NAMES | set(names(CUSTOMER_COMMANDS))
    assert {
        "admins",
        "settings",
        "set",
        "reset",
        "texts",
        "text",
        "text_reset",
        "reasons",
        "routes",
        "route",
        "link",
        "test_survey",
        "audit",
        "staffchat",
        "export",
        "stats",
    } == ADMIN_COMMAND_NAMES
    assert not ADMIN_COMMAND_NAMES & set(names(CUSTOMER_COMMANDS))
    # The customer's commands keep their descriptions in the admin's menu.
    shared = dict(ADMIN_COMMANDS)
    assert all(shared[name] == description for name, description in CUSTOMER_COMMANDS)


# -- in step with the handlers -------------------------------------------------------------------


def command_names(router: Router) -> Iterator[str]:
    """The names of every Command filter on message handlers in ``router`` and below."""
    for handler in router.message.handlers:
        for item in handler.filters or ():
            if isinstance(item.callback, Command):
                yield from (name for name in item.callback.commands if isinstance(name, str))
    for child in router.sub_routers:
        yield from command_names(child)


def sub_router(router: Router, name: str) -> Router:
    for child in router.sub_routers:
        if child.name == name:
            return child
    raise AssertionError(f"{router.name} has no sub-router {name!r}")


def test_every_command_the_customer_router_serves_is_in_the_customers_menu() -> None:
    from handlers.customer import router

    # /start is Telegram's own Start button, never a menu entry.
    assert set(command_names(router())) - {"start"} == set(names(CUSTOMER_COMMANDS))


def test_the_staff_menu_is_what_works_in_a_group() -> None:
    from handlers.staff import router
    from handlers.stats import group_router

    # /staff_here works in any group (how a group becomes a staff chat); /stats only in a staff
    # chat, so other groups' menu leaves it out.
    in_groups = set(command_names(sub_router(router(), "staff-groups")))
    in_groups |= set(command_names(group_router()))
    assert in_groups == set(names(STAFF_COMMANDS)) == {"staff_here", "stats"}
    assert set(names(GROUP_COMMANDS)) == {"staff_here"}


def test_every_admin_command_is_served_and_every_served_one_is_in_the_menu() -> None:
    from handlers.admin import router as admin_router
    from handlers.staff import router as staff_router

    served = set(command_names(admin_router()))
    served |= set(command_names(sub_router(staff_router(), "staff-private"))) - {"staff_here"}
    assert served == ADMIN_COMMAND_NAMES


# -- publishing ------------------------------------------------------------------------------------

BOSS, DEPUTY, GHOST = 5_000_001, 5_000_002, 5_000_003
STAFF_CHAT, OLD_CHAT = -100_111, -100_222


class FakeBot:
    """Records what would reach Telegram; refuses chat scopes of ``unreachable`` chats."""

    def __init__(self, unreachable: dict[int, Exception] | None = None) -> None:
        self.menus: dict[tuple[str, int | None, str | None], list[str]] = {}
        self.calls: list[tuple[str, str, int | None]] = []
        self.unreachable = unreachable or {}

    def _key(self, scope: Any, language_code: str | None) -> tuple[str, int | None, str | None]:
        chat_id = getattr(scope, "chat_id", None)
        return scope.type, chat_id, language_code

    async def set_my_commands(
        self, commands: list[Any], scope: Any = None, language_code: str | None = None
    ) -> bool:
        key = self._key(scope, language_code)
        self.calls.append(("set", key[0], key[1]))
        if key[1] in self.unreachable:
            raise self.unreachable[key[1]]
        self.menus[key] = [f"{c.command}: {c.description}" for c in commands]
        return True

    async def delete_my_commands(self, scope: Any = None, language_code: str | None = None) -> bool:
        key = self._key(scope, language_code)
        self.calls.append(("delete", key[0], key[1]))
        if key[1] in self.unreachable:
            raise self.unreachable[key[1]]
        self.menus.pop(key, None)
        return True


class FakeRoles:
    def __init__(self, admins: list[int]) -> None:
        self.ids = admins

    async def admins(self) -> list[int]:
        return list(self.ids)

    async def is_admin(self, user_id: int) -> bool:
        return user_id in self.ids


class FakeStaffChats:
    def __init__(self, chat_ids: list[int]) -> None:
        self.chat_ids = chat_ids

    async def list(self) -> list[Any]:
        return [type("Chat", (), {"chat_id": chat_id})() for chat_id in self.chat_ids]


def shown(commands: menus.Commands) -> list[str]:
    return [f"{name}: {description}" for name, description in commands]


def refused(message: str, kind: type[Exception] = TelegramBadRequest) -> Exception:
    return kind(method=SetMyCommands(commands=[]), message=message)


async def test_publish_all_gives_every_audience_its_menu() -> None:
    bot = FakeBot()
    menu = CommandMenus(bot, FakeRoles([BOSS, DEPUTY]), FakeStaffChats([STAFF_CHAT]))  # type: ignore[arg-type]

    assert await menu.publish_all() == 0

    assert bot.menus == {
        ("default", None, None): shown(CUSTOMER_COMMANDS),
        ("default", None, "zh"): shown(CUSTOMER_COMMANDS_ZH),
        ("all_group_chats", None, None): shown(GROUP_COMMANDS),
        ("chat", BOSS, None): shown(ADMIN_COMMANDS),
        ("chat", DEPUTY, None): shown(ADMIN_COMMANDS),
        ("chat", STAFF_CHAT, None): shown(STAFF_COMMANDS),
    }


async def test_chats_telegram_refuses_are_logged_and_the_rest_still_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = FakeBot(
        {
            GHOST: refused("Bad Request: chat not found"),
            OLD_CHAT: refused("Forbidden: bot was kicked", TelegramForbiddenError),
        }
    )
    menu = CommandMenus(
        bot,
        FakeRoles([GHOST, BOSS]),  # type: ignore[arg-type]
        FakeStaffChats([OLD_CHAT, STAFF_CHAT]),  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.INFO, logger="bot.menus"):
        assert await menu.publish_all() == 2

    assert bot.menus[("chat", BOSS, None)] == shown(ADMIN_COMMANDS)
    assert bot.menus[("chat", STAFF_CHAT, None)] == shown(STAFF_COMMANDS)
    assert ("chat", GHOST, None) not in bot.menus
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (
        logging.INFO,
        f"Could not set the command menu of admin {GHOST}: Bad Request: chat not found",
    ) in messages
    assert (
        logging.INFO,
        f"Could not set the command menu of staff chat {OLD_CHAT}: Forbidden: bot was kicked",
    ) in messages


async def test_other_telegram_failures_are_warnings_and_stop_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = FakeBot({BOSS: refused("Internal Server Error", TelegramServerError)})
    menu = CommandMenus(bot, FakeRoles([BOSS]), FakeStaffChats([]))  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="bot.menus"):
        assert await menu.admin_added(BOSS) is False
    [record] = caplog.records
    assert record.levelno == logging.WARNING


async def test_a_removed_admin_goes_back_to_the_customers_menu() -> None:
    bot = FakeBot()
    roles = FakeRoles([BOSS, DEPUTY])
    menu = CommandMenus(bot, roles, FakeStaffChats([]))  # type: ignore[arg-type]
    assert await menu.admin_added(DEPUTY)
    assert bot.menus[("chat", DEPUTY, None)] == shown(ADMIN_COMMANDS)

    roles.ids.remove(DEPUTY)
    assert await menu.admin_removed(DEPUTY)
    assert ("chat", DEPUTY, None) not in bot.menus
    assert bot.calls[-1] == ("delete", "chat", DEPUTY)


async def test_removing_someone_who_is_still_an_admin_keeps_their_menu() -> None:
    # E.g. an admin from ADMIN_IDS: the chat cannot take that away.
    bot = FakeBot()
    menu = CommandMenus(bot, FakeRoles([BOSS]), FakeStaffChats([]))  # type: ignore[arg-type]
    assert await menu.admin_removed(BOSS)
    assert bot.menus[("chat", BOSS, None)] == shown(ADMIN_COMMANDS)
    assert [call[0] for call in bot.calls] == ["set"]


async def test_a_staff_chat_gets_and_loses_the_staff_menu() -> None:
    bot = FakeBot({OLD_CHAT: refused("Bad Request: chat not found")})
    menu = CommandMenus(bot, FakeRoles([]), FakeStaffChats([]))  # type: ignore[arg-type]
    assert await menu.staff_chat_added(STAFF_CHAT)
    assert bot.menus[("chat", STAFF_CHAT, None)] == shown(STAFF_COMMANDS)
    assert await menu.staff_chat_removed(STAFF_CHAT)
    assert ("chat", STAFF_CHAT, None) not in bot.menus
    # A chat that went away (e.g. upgraded to a supergroup) is no error.
    assert await menu.staff_chat_removed(OLD_CHAT) is False
