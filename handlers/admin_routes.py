"""/routes and /route in an admin's private chat: list the routing rules, add one, remove one.

Thin: parse with `bot.routes.parse_route`, call `RouteService`, word the result. `handlers.admin`
lets only admins in, so nothing here checks roles. The wording is English (admins read it).
"""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.routes import (
    LOCATION_MAX,
    Added,
    ListedRule,
    ParseError,
    Problem,
    Refusal,
    Routes,
    RouteService,
    parse_route,
)
from storage.models import CaseSeverity, StaffChat

# -- wording (English: admins read it, customers never do) -------------------------------------

ADD_USAGE = (
    "Usage: /route add location=… reason=… severity=… -> <staff chat>, with at least one of "
    'the three, e.g. /route add location="Old Town" severity=high -> Old Town team'
)
REMOVE_USAGE = "Usage: /route remove <n>, where <n> is the rule's number in /routes."
USAGE = "\n".join(
    [
        "Usage:",
        "/route add location=… reason=… severity=… -> <staff chat>",
        "/route remove <n>",
        "Give at least one of location=, reason=, severity=; put a value with spaces in quotes "
        '(location="Old Town"). The staff chat is its chat id or its exact title. /routes lists '
        "the rules.",
    ]
)
ROUTES_USAGE = "Usage: /routes (nothing after it) lists the routing rules."

ROUTES_HEADING = "Routing rules, tried in order (the first that matches a case wins):"
ROUTES_NONE = "No routing rules yet."
RULE_LINE = "{n}. {rule}"
INACTIVE = " (inactive: not used until /staff_here is sent there again)"
DEFAULT_CHAT = "When no rule matches, a case goes to the default chat: {chat}."
NO_STAFF_CHAT = (
    "No staff chat receives cases yet, so admins are told of each case privately. Add me to "
    "your staff group and send /staff_here there."
)
ROUTES_HINT = (
    "Add one: /route add location=… reason=… severity=… -> <staff chat> · remove one: "
    "/route remove <n>"
)
UNTITLED = "untitled chat"

ADDED = "Added rule {n}: {rule}."
SHADOWED = (
    "Note: rule {n} ({rule}) catches all these cases first, so the new rule is not used while "
    "rule {n} stays."
)
REMOVED = "Removed rule {n}: {rule}."
REMOVE_NONE = "There are no routing rules to remove."
REMOVE_OUT_OF_RANGE = "There is no rule {n}: the rules go from 1 to {count} (/routes lists them)."

PROBLEMS = {
    Problem.NO_ARROW: "Please put -> between the matchers and the staff chat.",
    Problem.NO_CHAT: "Please name the staff chat after ->: its chat id or its exact title.",
    Problem.NO_MATCHERS: (
        "Please give at least one of location=, reason=, severity= before ->. Cases no rule "
        "matches go to the default chat already."
    ),
    Problem.UNKNOWN_MATCHER: (
        "A rule cannot match “{detail}”; it matches location=, reason= and severity=."
    ),
    Problem.REPEATED_MATCHER: "{detail}= is given twice; a rule matches one value of each.",
    Problem.EMPTY_VALUE: "{detail}= has no value; please type one right after the =.",
    Problem.UNCLOSED_QUOTE: "The quote after {detail}= is never closed; please close it.",
    Problem.STRAY_TEXT: (
        "I cannot read “{detail}” there. A value with spaces goes in quotes, e.g. "
        'location="Old Town".'
    ),
    Problem.BAD_SEVERITY: "“{detail}” is not a severity. Please use one of: {severities}.",
    Problem.LOCATION_TOO_LONG: "A location has at most {limit} characters.",
}

UNKNOWN_REASON = (
    "I know no reason “{reason}”. Please use a code or a label from /reasons, such as: {codes}."
)
UNKNOWN_CHAT = (
    "“{chat}” is not a staff chat. To register one, add me to the group and send /staff_here "
    "there; /staffchat list shows those registered."
)
INACTIVE_CHAT = (
    "{chat} no longer receives cases. Send /staff_here in that group to register it again, then "
    "add the rule."
)
AMBIGUOUS_CHAT = "Several staff chats are called “{chat}”: {chats}. Please give the chat id."
DUPLICATE = "Rule {n} is that rule already: {rule}."

SEVERITIES = ", ".join(severity.value for severity in CaseSeverity)

#: Telegram's limit for a message's text.
_MESSAGE_MAX = 4096
_PLAIN = re.compile(r"[^\s\"'“”„«»‘’=]+")


def router() -> Router:
    routes_router = Router(name="admin-routes")
    routes_router.message.register(routes, Command("routes"))
    routes_router.message.register(route, Command("route"))
    return routes_router


async def routes(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    if command.args and command.args.strip():
        await message.answer(ROUTES_USAGE)
        return
    await message.answer(listing(await RouteService(sessions, clock).listing()))


async def route(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    action, _, rest = (command.args or "").strip().partition(" ")
    action, rest = action.lower(), rest.strip()
    person = message.from_user
    assert person is not None  # handlers.admin lets only messages from a person in
    service = RouteService(sessions, clock)
    if action == "list" and not rest:
        await message.answer(listing(await service.listing()))
    elif action == "add":
        spec = parse_route(rest)
        if isinstance(spec, ParseError):
            await message.answer(f"{_problem(spec)}\n{ADD_USAGE}")
            return
        added = await service.add(spec, by=person.id, by_name=person.full_name)
        await message.answer(_added(added, reason=spec.reason or "", chat=spec.chat))
    elif action == "remove":
        if not re.fullmatch(r"\d{1,9}", rest):
            await message.answer(REMOVE_USAGE)
            return
        removed = await service.remove(int(rest), by=person.id, by_name=person.full_name)
        if removed.rule is not None:
            await message.answer(REMOVED.format(n=removed.rule.n, rule=describe(removed.rule)))
        elif removed.count == 0:
            await message.answer(REMOVE_NONE)
        else:
            await message.answer(REMOVE_OUT_OF_RANGE.format(n=rest, count=removed.count))
    else:
        await message.answer(USAGE)


# -- wording -------------------------------------------------------------------------------------


def listing(found: Routes) -> str:
    """The /routes answer: the rules in order, then where unmatched cases go."""
    lines = [ROUTES_HEADING] if found.rules else [ROUTES_NONE]
    lines += [RULE_LINE.format(n=rule.n, rule=describe(rule)) for rule in found.rules]
    lines.append("")
    if found.default is not None:
        lines.append(DEFAULT_CHAT.format(chat=chat_name(found.default)))
    else:
        lines.append(NO_STAFF_CHAT)
    lines += ["", ROUTES_HINT]
    text = "\n".join(lines)
    # Rules are few (a line each); a pathological hundred would still be cut, not refused.
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def describe(rule: ListedRule) -> str:
    """location="Old Town" reason=long_wait severity=high → Old Town team (-100123)."""
    matchers = []
    if rule.location is not None:
        matchers.append(f"location={_quoted(rule.location)}")
    if rule.reason_code is not None:
        matchers.append(f"reason={rule.reason_code}")
    if rule.severity is not None:
        matchers.append(f"severity={rule.severity.value}")
    chat = f"{rule.chat_title or UNTITLED} ({rule.chat_id})"
    text = f"{' '.join(matchers)} → {chat}"
    return text if rule.active else text + INACTIVE


def chat_name(chat: StaffChat) -> str:
    return f"{chat.title or UNTITLED} ({chat.chat_id})"


def _quoted(value: str) -> str:
    """As it would be typed in /route add: quoted when it has spaces or quotes."""
    if _PLAIN.fullmatch(value):
        return value
    return f'"{value}"' if '"' not in value else f"“{value}”"


def _problem(error: ParseError) -> str:
    return PROBLEMS[error.problem].format(
        detail=error.detail or "", severities=SEVERITIES, limit=LOCATION_MAX
    )


def _added(added: Added, *, reason: str, chat: str) -> str:
    if added.ok:
        assert added.rule is not None
        text = ADDED.format(n=added.rule.n, rule=describe(added.rule))
        if added.shadowed_by is not None:
            shadow = added.shadowed_by
            text += "\n" + SHADOWED.format(n=shadow.n, rule=describe(shadow))
        return text
    if added.refusal is Refusal.UNKNOWN_REASON:
        return UNKNOWN_REASON.format(reason=reason, codes=", ".join(added.known_reasons))
    if added.refusal is Refusal.INACTIVE_CHAT:
        return INACTIVE_CHAT.format(chat=chat_name(added.chats[0]))
    if added.refusal is Refusal.AMBIGUOUS_CHAT:
        ids = ", ".join(str(one.chat_id) for one in added.chats)
        return AMBIGUOUS_CHAT.format(chat=chat, chats=ids)
    if added.refusal is Refusal.DUPLICATE:
        assert added.rule is not None
        return DUPLICATE.format(n=added.rule.n, rule=describe(added.rule))
    return UNKNOWN_CHAT.format(chat=chat)
