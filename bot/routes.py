"""Routing rules as admins manage them: /routes lists them, /route add and /route remove change
them. Which staff chat a case goes to is `bot.staffchats.Routing`; this module only edits the
rules it reads.

A rule is typed on one line::

    /route add location="Old Town" reason=long_wait severity=high -> Old Town team

Any of the three matchers, at least one (a rule with none would catch every case, which is what
the default chat is for). A value with spaces goes in quotes, straight or typographic (phones
often turn " into “ ”). ``reason`` is a reason's code or label, stored as its code, so renaming
a chip keeps its rules. ``severity`` is one of `CaseSeverity`. After the arrow (``->`` or ``→``)
comes the staff chat: its Telegram chat id or its exact title (any case). It must be a
registered, active staff chat (one where an admin sent /staff_here).

New rules go last: rules are tried in order, first match wins. Every change is audited in its
transaction. Pure logic and the database only: `handlers.admin_routes` words the replies.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.models import CaseSeverity, Reason, RoutingRule, StaffChat
from storage.reason_repository import ReasonRepository
from storage.repositories import AuditRepository
from storage.staff_repository import StaffRepository, clean_matcher

__all__ = [
    "ADD_ACTION",
    "LOCATION_MAX",
    "MATCHERS",
    "REMOVE_ACTION",
    "Added",
    "ListedRule",
    "ParseError",
    "Problem",
    "Refusal",
    "Removed",
    "RouteService",
    "RouteSpec",
    "Routes",
    "parse_route",
]

#: Audit actions.
ADD_ACTION = "route.add"
REMOVE_ACTION = "route.remove"

MATCHERS = ("location", "reason", "severity")
#: `RoutingRule.location` holds this many characters.
LOCATION_MAX = 128

_ARROWS = ("->", "→")
# Opening quote → its closing quote. Phones turn " into “…” (or „…“, «…» in some languages).
_QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "„": "“", "«": "»", "‘": "’"}
_KEY = re.compile(r"(\w+)\s*=\s*")
_BARE = re.compile(r"(?:(?!->|→)\S)+")
_CHAT_ID = re.compile(r"-?\d+")


# -- the /route add line -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A /route add line, understood; ``reason`` and ``chat`` still as typed."""

    chat: str
    location: str | None = None
    reason: str | None = None
    severity: CaseSeverity | None = None

    @property
    def chat_id(self) -> int | None:
        """The chat as a Telegram chat id, if it was typed as one."""
        return int(self.chat) if _CHAT_ID.fullmatch(self.chat) else None


class Problem(enum.StrEnum):
    NO_ARROW = "no_arrow"  # no "->" before the staff chat
    NO_CHAT = "no_chat"  # nothing after the arrow
    NO_MATCHERS = "no_matchers"  # not one of location=, reason=, severity=
    UNKNOWN_MATCHER = "unknown_matcher"  # e.g. place=…: `detail` is the name
    REPEATED_MATCHER = "repeated_matcher"  # location=… twice: `detail`
    EMPTY_VALUE = "empty_value"  # location= with nothing: `detail`
    UNCLOSED_QUOTE = "unclosed_quote"  # location="Old Town -> …: `detail`
    STRAY_TEXT = "stray_text"  # words that are no matcher (often a value with unquoted spaces)
    BAD_SEVERITY = "bad_severity"  # not a CaseSeverity: `detail` as typed
    LOCATION_TOO_LONG = "location_too_long"  # over LOCATION_MAX


@dataclass(frozen=True, slots=True)
class ParseError:
    problem: Problem
    detail: str | None = None


def parse_route(text: str | None) -> RouteSpec | ParseError:
    """The arguments of /route add after "add": matchers, the arrow, the staff chat."""
    text = text or ""
    found: dict[str, str] = {}
    at = 0
    while True:
        at = _skip_spaces(text, at)
        if at >= len(text):
            return ParseError(Problem.NO_ARROW)
        arrow = next((a for a in _ARROWS if text.startswith(a, at)), None)
        if arrow is not None:
            chat = _unquote(text[at + len(arrow) :].strip())
            break
        key = _KEY.match(text, at)
        if key is None:
            return ParseError(Problem.STRAY_TEXT, _word(text, at))
        name = key.group(1).lower()
        if name not in MATCHERS:
            return ParseError(Problem.UNKNOWN_MATCHER, key.group(1))
        if name in found:
            return ParseError(Problem.REPEATED_MATCHER, name)
        value, at = _value(text, key.end())
        if value is None:
            return ParseError(Problem.UNCLOSED_QUOTE, name)
        value = " ".join(value.split())
        if not value:
            return ParseError(Problem.EMPTY_VALUE, name)
        found[name] = value
    if not found:
        return ParseError(Problem.NO_MATCHERS)
    if not chat:
        return ParseError(Problem.NO_CHAT)
    severity = None
    if "severity" in found:
        try:
            severity = CaseSeverity(found["severity"].lower())
        except ValueError:
            return ParseError(Problem.BAD_SEVERITY, found["severity"])
    location = found.get("location")
    if location is not None and len(location) > LOCATION_MAX:
        return ParseError(Problem.LOCATION_TOO_LONG)
    return RouteSpec(chat=chat, location=location, reason=found.get("reason"), severity=severity)


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _word(text: str, at: int) -> str:
    match = re.compile(r"\S+").match(text, at)
    return match.group(0) if match else ""


def _value(text: str, at: int) -> tuple[str | None, int]:
    """The value starting at ``at`` and where it ends; None if its quote never closes."""
    if at < len(text) and text[at] in _QUOTES:
        end = text.find(_QUOTES[text[at]], at + 1)
        if end < 0:
            return None, len(text)
        return text[at + 1 : end], end + 1
    bare = _BARE.match(text, at)
    if bare is None:  # "location=" then a space, the arrow, or the end
        return "", at
    return bare.group(0), bare.end()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        return text[1:-1].strip()
    return text


# -- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedRule:
    """A rule as /routes lists it."""

    n: int
    id: int
    location: str | None
    reason_code: str | None
    severity: CaseSeverity | None
    chat_id: int  # Telegram's
    chat_title: str | None
    active: bool  # is its staff chat active (else the rule is skipped)


@dataclass(frozen=True, slots=True)
class Routes:
    rules: list[ListedRule]
    #: Where a case goes when no rule matches; None: no active staff chat at all.
    default: StaffChat | None


class Refusal(enum.StrEnum):
    UNKNOWN_REASON = "unknown_reason"  # no reason with that code or label
    UNKNOWN_CHAT = "unknown_chat"  # no staff chat with that id or title
    INACTIVE_CHAT = "inactive_chat"  # registered once, removed since: `chat`
    AMBIGUOUS_CHAT = "ambiguous_chat"  # several active staff chats have that title: `chats`
    DUPLICATE = "duplicate"  # the same rule exists: `rule`


@dataclass(frozen=True, slots=True)
class Added:
    refusal: Refusal | None = None
    #: The new rule (or, for DUPLICATE, the existing one).
    rule: ListedRule | None = None
    #: An earlier rule that catches every case this one would: it will not be used.
    shadowed_by: ListedRule | None = None
    #: INACTIVE_CHAT: that chat; AMBIGUOUS_CHAT: the candidates.
    chats: tuple[StaffChat, ...] = ()
    #: UNKNOWN_REASON: the codes of the offered reasons, to choose from.
    known_reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True, slots=True)
class Removed:
    rule: ListedRule | None  # None: there is no rule with that number
    count: int  # how many rules there were


def _listed(rules: list[RoutingRule]) -> list[ListedRule]:
    return [
        ListedRule(
            n=n,
            id=rule.id,
            location=rule.location,
            reason_code=rule.reason_code,
            severity=rule.severity,
            chat_id=rule.staff_chat.chat_id,
            chat_title=rule.staff_chat.title,
            active=rule.staff_chat.active,
        )
        for n, rule in enumerate(rules, start=1)
    ]


def _fold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


def _catches(earlier: ListedRule, later: ListedRule) -> bool:
    """Every case ``later`` matches, ``earlier`` matches too (so ``later`` is never reached)."""
    return (
        (earlier.location is None or _fold(earlier.location) == _fold(later.location))
        and (earlier.reason_code is None or _fold(earlier.reason_code) == _fold(later.reason_code))
        and (earlier.severity is None or earlier.severity == later.severity)
    )


def _snapshot(rule: ListedRule) -> dict[str, object]:
    """A rule for the audit log: its matchers and its chat."""
    values: dict[str, object] = {
        "location": rule.location,
        "reason": rule.reason_code,
        "severity": rule.severity.value if rule.severity else None,
    }
    snapshot = {key: value for key, value in values.items() if value is not None}
    return {**snapshot, "chat": rule.chat_title, "chat_id": rule.chat_id, "place": rule.n}


def _reason_for(reasons: list[Reason], typed: str) -> Reason | None:
    """By code, else by label (an offered reason before a hidden one); any case."""
    folded = typed.casefold()
    by_code = next((r for r in reasons if r.code.casefold() == folded), None)
    if by_code is not None:
        return by_code
    return next((r for r in reasons if r.label.casefold() == folded), None)


class RouteService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def listing(self) -> Routes:
        async with self._sessions() as session:
            staff = StaffRepository(session)
            rules = _listed(await staff.rules())
            return Routes(rules, await staff.default_chat())

    async def add(self, spec: RouteSpec, *, by: int, by_name: str | None = None) -> Added:
        """Add the rule last; refused (nothing written) when its reason or chat is unknown."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            staff = StaffRepository(session)
            reason_code = None
            if spec.reason is not None:
                reasons = await ReasonRepository(session).listed()  # offered ones first
                reason = _reason_for(reasons, spec.reason)
                if reason is None:
                    offered = tuple(r.code for r in reasons if not r.hidden)
                    return Added(Refusal.UNKNOWN_REASON, known_reasons=offered)
                reason_code = reason.code
            chat = await self._chat(staff, spec)
            if not isinstance(chat, StaffChat):
                return chat
            existing = _listed(await staff.rules())
            location = clean_matcher(spec.location)
            for rule in existing:
                same = (
                    _fold(rule.location) == _fold(location)
                    and rule.reason_code == reason_code
                    and rule.severity == spec.severity
                )
                if same and rule.chat_id == chat.chat_id:
                    return Added(Refusal.DUPLICATE, rule=rule)
            added = await staff.add_rule(
                staff_chat_id=chat.id,
                location=location,
                reason_code=reason_code,
                severity=spec.severity,
                created_by=by,
                now=now,
            )
            rule = ListedRule(
                n=len(existing) + 1,
                id=added.id,
                location=added.location,
                reason_code=added.reason_code,
                severity=added.severity,
                chat_id=chat.chat_id,
                chat_title=chat.title,
                active=True,
            )
            await AuditRepository(session).record(
                at=now,
                action=ADD_ACTION,
                actor_id=by,
                actor_name=by_name,
                target=f"route:{rule.id}",
                old=None,
                new=_snapshot(rule),
            )
        shadow = next((r for r in existing if r.active and _catches(r, rule)), None)
        return Added(rule=rule, shadowed_by=shadow)

    async def remove(self, n: int, *, by: int, by_name: str | None = None) -> Removed:
        """Delete the ``n``-th rule as /routes numbers them; the others keep their order."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            staff = StaffRepository(session)
            existing = _listed(await staff.rules())
            if not 1 <= n <= len(existing):
                return Removed(None, len(existing))
            rule = existing[n - 1]
            removed = await staff.remove_rule(n)
            if removed is None or removed.id != rule.id:  # pragma: no cover - same transaction
                raise LookupError(f"rule {n} changed while it was removed")
            await AuditRepository(session).record(
                at=now,
                action=REMOVE_ACTION,
                actor_id=by,
                actor_name=by_name,
                target=f"route:{rule.id}",
                old=_snapshot(rule),
                new=None,
            )
        return Removed(rule, len(existing))

    @staticmethod
    async def _chat(staff: StaffRepository, spec: RouteSpec) -> StaffChat | Added:
        """The staff chat the line names, or the refusal saying why there is none to use."""
        chats = await staff.chats(include_inactive=True)
        chat_id = spec.chat_id
        if chat_id is not None:
            matching = [chat for chat in chats if chat.chat_id == chat_id]
        else:
            folded = spec.chat.casefold()
            matching = [chat for chat in chats if (chat.title or "").casefold() == folded]
        active = [chat for chat in matching if chat.active]
        if len(active) == 1:
            return active[0]
        if len(active) > 1:
            return Added(Refusal.AMBIGUOUS_CHAT, chats=tuple(active))
        if matching:
            return Added(Refusal.INACTIVE_CHAT, chats=(matching[0],))
        return Added(Refusal.UNKNOWN_CHAT)
