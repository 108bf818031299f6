"""/stats [period] [location]: in an admin's private chat, and in a staff chat for its members.

Admins (the admin router lets only them in: see handlers.admin) see every location, or the one
they name. In a registered staff chat, anyone who may act on its cases (`StaffAccess`) sees what
the chat handles (`bot.stats.Scope.for_staff_chat`), and the reply says which scope that is;
anywhere else in a group the command gets no answer, like any command the bot does not serve
there. A customer's /stats never gets here: it is an unknown command to them.

The words: the first is the period if it reads as one (`bot.periods`), the rest a location.
A whole phrase that is a known location wins ("/stats 2026 Plaza" if "2026 Plaza" is a place).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.clock import Clock
from bot.digest import send_figures
from bot.periods import Period, PeriodError, looks_like_period, parse_period
from bot.staffchats import StaffAccess, StaffChatService
from bot.stats import Scope, StatsService

COMMANDS = (("stats", "Figures and a chart: /stats [period] [location]"),)

UNKNOWN_LOCATION = (
    "I have no visits recorded at {typed!r}. Known locations: {known}.\n"
    "Usage: /stats [period] [location], e.g. /stats 7d Downtown."
)
NO_LOCATIONS = "I have no visits with a location yet, so /stats can only show all of them."
OUTSIDE_SCOPE = "{location} is not among this chat's locations ({scope})."

_GROUPS = frozenset({"group", "supergroup"})


def router() -> Router:
    """The admin's /stats (included by handlers.admin, behind its admin-only filter)."""
    admin = Router(name="admin-stats")
    admin.message.register(stats_for_admin, Command("stats"))
    return admin


def group_router() -> Router:
    """/stats in staff chats."""
    groups = Router(name="stats-groups")
    groups.message.filter(F.chat.type.in_(_GROUPS))
    groups.message.register(stats_in_staff_chat, Command("stats"))
    return groups


async def stats_for_admin(
    message: Message, command: CommandObject, stats: StatsService, clock: Clock, bot: Bot
) -> None:
    asked = await _read(command.args, stats, clock)
    if isinstance(asked, str):
        await message.answer(asked)
        return
    period, location = asked
    scope = Scope.location(location) if location else Scope.everything()
    figures = await stats.figures(period, scope)
    await send_figures(bot, message.chat.id, figures, stats.zone)


async def stats_in_staff_chat(
    message: Message,
    command: CommandObject,
    stats: StatsService,
    staff_chats: StaffChatService,
    staff_access: StaffAccess,
    clock: Clock,
    bot: Bot,
) -> None:
    person = message.from_user
    chat = await staff_chats.get(message.chat.id)
    if person is None or chat is None or not chat.active:
        return
    if not await staff_access.may_act(message.chat.id, person.id):
        return
    asked = await _read(command.args, stats, clock)
    if isinstance(asked, str):
        await message.reply(asked)
        return
    period, location = asked
    scope = await stats.scope_of(chat)
    if location is not None:
        inside = scope.locations is None or location.casefold() in {
            name.casefold() for name in scope.locations
        }
        if not inside:
            named = await stats.describe(scope)
            await message.reply(OUTSIDE_SCOPE.format(location=location, scope=named))
            return
        scope = Scope.location(location)
    figures = await stats.figures(period, scope)
    await send_figures(
        bot, message.chat.id, figures, stats.zone, thread_id=message.message_thread_id
    )


async def _read(
    args: str | None, stats: StatsService, clock: Clock
) -> tuple[Period, str | None] | str:
    """(period, stored location or None) from the command's words, or what to answer."""
    text = " ".join((args or "").split())
    now = clock.now()
    period_word, location = None, text or None
    if text:
        known = await stats.find_location(text)
        first, _, rest = text.partition(" ")
        if known is not None:
            location = known
        elif looks_like_period(first) or any(char.isdigit() for char in first):
            period_word, location = first, rest or None
    try:
        period = parse_period(period_word, now, stats.zone)
    except PeriodError as error:
        return str(error)
    if location is not None:
        known = await stats.find_location(location)
        if known is None:
            names = await stats.locations()
            if not names:
                return NO_LOCATIONS
            return UNKNOWN_LOCATION.format(typed=location, known=", ".join(names))
        location = known
    return period, location
