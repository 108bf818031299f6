"""Reason chips as admins manage them: list, add, rename, move, hide and show.

The chips are rows (`storage.models.Reason`), never deleted: answers point at them, and a hidden
reason keeps its history and statistics. Each reason has a stable `code`, the key routing rules
and statistics use, so renaming a chip changes nothing but what customers read.

Admins refer to a reason by its number in the /reasons listing (offered ones first, in the
customers' order, then the hidden ones) or by its code. A new reason's code is an ASCII slug of
its label ("Cold food" → ``cold_food``), or ``reason_<n>`` when the label has no ASCII letters
(e.g. Chinese); the codes of the default chips are never reused, so a new reason is never shown
in a default chip's translations (see `bot.replies.Replies.chip_label`).

Rules: labels are 1–64 characters (a Telegram button's text, one line), unique among the offered
chips regardless of case; at most `MAX_OFFERED` chips are offered (two to a row, they fill a
phone's screen already); at least one stays offered. Every change is audited in its transaction.

Pure logic and the database only: no Telegram here (`handlers.admin_reasons` words the replies).
"""

from __future__ import annotations

import enum
import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.texts import TEXTS
from storage.models import Reason
from storage.reason_repository import ReasonRepository
from storage.repositories import AuditRepository

__all__ = [
    "ADD_ACTION",
    "HIDE_ACTION",
    "LABEL_MAX",
    "MAX_OFFERED",
    "MOVE_ACTION",
    "RENAME_ACTION",
    "SHOW_ACTION",
    "Action",
    "Change",
    "ListedReason",
    "ReasonCommand",
    "ReasonService",
    "Refusal",
    "clean_label",
    "parse",
    "slug",
    "was_translated",
]

#: Audit actions.
ADD_ACTION = "reason.add"
RENAME_ACTION = "reason.rename"
MOVE_ACTION = "reason.move"
HIDE_ACTION = "reason.hide"
SHOW_ACTION = "reason.show"

#: Telegram shows about 64 characters of a button's text; a chip is a button.
LABEL_MAX = 64
#: Chips go two to a row (`bot.callbacks.reasons_keyboard`): 20 is ten rows plus Done, a phone's
#: screenful. More is a survey nobody reads to the end.
MAX_OFFERED = 20

_CODE_MAX = 48  # Reason.code holds 64; room for a "_12" suffix
#: Codes of the default chips: their ``reason_<code>`` texts would translate a new reason.
_RESERVED = frozenset(name.removeprefix("reason_") for name in TEXTS if name.startswith("reason_"))


class Action(enum.StrEnum):
    LIST = "list"
    ADD = "add"
    RENAME = "rename"
    MOVE = "move"
    HIDE = "hide"
    SHOW = "show"


@dataclass(frozen=True, slots=True)
class ReasonCommand:
    """What /reasons asked for; ``ref`` is a number from the listing or a code, as typed."""

    action: Action
    ref: str | None = None
    label: str | None = None
    place: int | None = None


def parse(args: str | None) -> ReasonCommand | None:
    """The arguments of /reasons; None when they fit none of its forms (answer with usage)."""
    words = (args or "").split(maxsplit=1)
    if not words:
        return ReasonCommand(Action.LIST)
    try:
        action = Action(words[0].lower())
    except ValueError:
        return None
    rest = words[1].strip() if len(words) > 1 else ""
    if action is Action.LIST:
        return None if rest else ReasonCommand(Action.LIST)
    if action is Action.ADD:
        return ReasonCommand(Action.ADD, label=rest) if rest else None
    ref, _, tail = rest.partition(" ")
    tail = tail.strip()
    if not ref:
        return None
    if action is Action.RENAME:
        return ReasonCommand(Action.RENAME, ref=ref, label=tail) if tail else None
    if action is Action.MOVE:
        if not re.fullmatch(r"[+-]?\d{1,6}", tail):
            return None
        return ReasonCommand(Action.MOVE, ref=ref, place=int(tail))
    return None if tail else ReasonCommand(action, ref=ref)


def clean_label(label: str) -> str:
    """A label as stored: one line, runs of spaces (and line breaks) made one space."""
    return " ".join(label.split())


def slug(label: str) -> str:
    """The ASCII code a label suggests ("Cold food!" → "cold_food"); "" when it has no ASCII
    letter to build one from."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    code = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    code = code[:_CODE_MAX].rstrip("_")
    return code if re.search(r"[a-z]", code) else ""


def was_translated(code: str, label: str | None) -> bool:
    """Whether customers read this label in their own language: a default chip's code with its
    default English label (`bot.replies.Replies.chip_label`)."""
    default = TEXTS.get(f"reason_{code}")
    return default is not None and label == default.english


class Refusal(enum.StrEnum):
    NO_SUCH_REASON = "no_such_reason"  # no reason with that number or code
    LABEL_EMPTY = "label_empty"  # nothing but spaces
    LABEL_TOO_LONG = "label_too_long"  # over LABEL_MAX characters
    LABEL_TAKEN = "label_taken"  # an offered reason has that label: `other`
    LABEL_HIDDEN = "label_hidden"  # a hidden reason has it (show that one): `other`
    TOO_MANY = "too_many"  # MAX_OFFERED are offered already
    LAST_OFFERED = "last_offered"  # hiding it would leave customers no chip
    HIDDEN = "hidden"  # a hidden reason cannot be moved (show it first)
    PLACE_OUT_OF_RANGE = "place_out_of_range"  # not 1…`offered`
    UNCHANGED = "unchanged"  # it is so already (same label, place, hidden or shown)


@dataclass(frozen=True, slots=True)
class ListedReason:
    """A reason as /reasons lists it."""

    n: int  # its number in the listing
    id: int
    code: str
    label: str
    hidden: bool
    answers: int  # how many answers chose it


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did, or why it was refused (nothing written then)."""

    refusal: Refusal | None = None
    #: The reason as it is now (after the change); on a refusal, the one named, if found.
    reason: ListedReason | None = None
    #: The reason whose label is in the way (LABEL_TAKEN, LABEL_HIDDEN).
    other: ListedReason | None = None
    #: The label before a rename, the place before a move.
    old_label: str | None = None
    old_place: int | None = None
    #: How many reasons are offered now (the range of places, the count against MAX_OFFERED).
    offered: int = 0

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _listed(reasons: list[Reason], counts: dict[int, int]) -> list[ListedReason]:
    return [
        ListedReason(n, r.id, r.code, r.label, r.hidden, counts.get(r.id, 0))
        for n, r in enumerate(reasons, start=1)
    ]


def _find(listing: list[ListedReason], ref: str) -> ListedReason | None:
    """By number in the listing, or by code (any case)."""
    if ref.isdigit():
        n = int(ref)
        return listing[n - 1] if 1 <= n <= len(listing) else None
    wanted = ref.casefold()
    return next((item for item in listing if item.code.casefold() == wanted), None)


def _same_label(listing: list[ListedReason], label: str, *, hidden: bool) -> ListedReason | None:
    folded = label.casefold()
    return next(
        (i for i in listing if i.hidden is hidden and i.label.casefold() == folded),
        None,
    )


class ReasonService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def listing(self) -> list[ListedReason]:
        """Every reason, numbered: the offered ones in the customers' order, then the hidden."""
        async with self._sessions() as session:
            return await self._listing(session)

    async def find(self, ref: str) -> ListedReason | None:
        """The reason with this number (in the listing) or code."""
        return _find(await self.listing(), ref)

    async def add(self, label: str, *, by: int, by_name: str | None = None) -> Change:
        """A new chip, offered last."""
        label = clean_label(label)
        async with self._sessions.begin() as session:
            listing = await self._listing(session)
            offered = sum(1 for item in listing if not item.hidden)
            refusal = self._label_refusal(listing, label, offered=offered)
            if refusal is not None:
                return refusal
            if offered >= MAX_OFFERED:
                return Change(Refusal.TOO_MANY, offered=offered)
            reasons = ReasonRepository(session)
            taken = {item.code for item in listing} | _RESERVED
            base = slug(label)
            now = self._clock.now()
            reason = None
            codes = _codes(base, taken, len(listing))
            while reason is None:  # a code taken meanwhile by another admin: the next one
                reason = await reasons.add(code=next(codes), label=label, now=now)
            item = ListedReason(offered + 1, reason.id, reason.code, reason.label, False, 0)
            new = {"label": item.label, "place": item.n}
            await self._audit(session, ADD_ACTION, item, None, new, by=by, by_name=by_name)
        return Change(reason=item, offered=offered + 1)

    async def rename(self, ref: str, label: str, *, by: int, by_name: str | None = None) -> Change:
        label = clean_label(label)
        async with self._sessions.begin() as session:
            listing = await self._listing(session)
            offered = sum(1 for item in listing if not item.hidden)
            found = _find(listing, ref)
            if found is None:
                return Change(Refusal.NO_SUCH_REASON, offered=offered)
            if found.label == label:
                return Change(Refusal.UNCHANGED, reason=found, offered=offered)
            others = [item for item in listing if item.id != found.id]
            if not label:
                return Change(Refusal.LABEL_EMPTY, reason=found, offered=offered)
            if len(label) > LABEL_MAX:
                return Change(Refusal.LABEL_TOO_LONG, reason=found, offered=offered)
            if not found.hidden:
                taken = _same_label(others, label, hidden=False)
                if taken is not None:
                    return Change(Refusal.LABEL_TAKEN, reason=found, other=taken, offered=offered)
            await ReasonRepository(session).rename(found.id, label)
            renamed = replace(found, label=label)
            await self._audit(
                session, RENAME_ACTION, found, found.label, label, by=by, by_name=by_name
            )
        return Change(reason=renamed, old_label=found.label, offered=offered)

    async def move(self, ref: str, place: int, *, by: int, by_name: str | None = None) -> Change:
        """Put an offered chip at ``place`` (1 = first) among the offered ones."""
        async with self._sessions.begin() as session:
            listing = await self._listing(session)
            shown = [item for item in listing if not item.hidden]
            found = _find(listing, ref)
            if found is None:
                return Change(Refusal.NO_SUCH_REASON, offered=len(shown))
            if found.hidden:
                return Change(Refusal.HIDDEN, reason=found, offered=len(shown))
            if not 1 <= place <= len(shown):
                return Change(Refusal.PLACE_OUT_OF_RANGE, reason=found, offered=len(shown))
            if place == found.n:
                return Change(Refusal.UNCHANGED, reason=found, offered=len(shown))
            order = [item for item in shown if item.id != found.id]
            order.insert(place - 1, found)
            await ReasonRepository(session).reorder([item.id for item in order])
            moved = replace(found, n=place)
            await self._audit(session, MOVE_ACTION, found, found.n, place, by=by, by_name=by_name)
        return Change(reason=moved, old_place=found.n, offered=len(shown))

    async def hide(self, ref: str, *, by: int, by_name: str | None = None) -> Change:
        """Stop offering a chip; its answers and statistics stay."""
        async with self._sessions.begin() as session:
            listing = await self._listing(session)
            offered = sum(1 for item in listing if not item.hidden)
            found = _find(listing, ref)
            if found is None:
                return Change(Refusal.NO_SUCH_REASON, offered=offered)
            if found.hidden:
                return Change(Refusal.UNCHANGED, reason=found, offered=offered)
            if offered <= 1:
                return Change(Refusal.LAST_OFFERED, reason=found, offered=offered)
            await ReasonRepository(session).set_hidden(found.id, True)
            after = await self._listing(session)
            hidden = next(item for item in after if item.id == found.id)
            await self._audit(
                session, HIDE_ACTION, found, "offered", "hidden", by=by, by_name=by_name
            )
        return Change(reason=hidden, offered=offered - 1)

    async def show(self, ref: str, *, by: int, by_name: str | None = None) -> Change:
        """Offer a hidden chip again, last in the order."""
        async with self._sessions.begin() as session:
            listing = await self._listing(session)
            offered = sum(1 for item in listing if not item.hidden)
            found = _find(listing, ref)
            if found is None:
                return Change(Refusal.NO_SUCH_REASON, offered=offered)
            if not found.hidden:
                return Change(Refusal.UNCHANGED, reason=found, offered=offered)
            taken = _same_label(listing, found.label, hidden=False)
            if taken is not None:
                return Change(Refusal.LABEL_TAKEN, reason=found, other=taken, offered=offered)
            if offered >= MAX_OFFERED:
                return Change(Refusal.TOO_MANY, reason=found, offered=offered)
            await ReasonRepository(session).set_hidden(found.id, False)
            after = await self._listing(session)
            shown = next(item for item in after if item.id == found.id)
            await self._audit(
                session, SHOW_ACTION, found, "hidden", "offered", by=by, by_name=by_name
            )
        return Change(reason=shown, offered=offered + 1)

    # -- inside --------------------------------------------------------------------------------

    @staticmethod
    def _label_refusal(listing: list[ListedReason], label: str, *, offered: int) -> Change | None:
        if not label:
            return Change(Refusal.LABEL_EMPTY, offered=offered)
        if len(label) > LABEL_MAX:
            return Change(Refusal.LABEL_TOO_LONG, offered=offered)
        taken = _same_label(listing, label, hidden=False)
        if taken is not None:
            return Change(Refusal.LABEL_TAKEN, other=taken, offered=offered)
        # Bringing the old chip back keeps its statistics in one place.
        hidden = _same_label(listing, label, hidden=True)
        if hidden is not None:
            return Change(Refusal.LABEL_HIDDEN, other=hidden, offered=offered)
        return None

    @staticmethod
    async def _listing(session: AsyncSession) -> list[ListedReason]:
        reasons = ReasonRepository(session)
        return _listed(await reasons.listed(), await reasons.answer_counts())

    async def _audit(
        self,
        session: AsyncSession,
        action: str,
        item: ListedReason,
        old: object,
        new: object,
        *,
        by: int,
        by_name: str | None,
    ) -> None:
        """Only what changed, so /audit's short lines show it; the target names the reason."""
        await AuditRepository(session).record(
            at=self._clock.now(),
            action=action,
            actor_id=by,
            actor_name=by_name,
            target=f"reason:{item.code}",
            old=old,
            new=new,
        )


def _codes(base: str, taken: set[str], count: int) -> Iterator[str]:
    """Codes to try for a new reason, best first: the slug, then the slug with 2, 3…; for a
    label without ASCII letters, reason_<n> from the number of reasons on."""
    folded = {code.casefold() for code in taken}
    if base:
        candidates = (base if n == 1 else f"{base}_{n}" for n in itertools.count(1))
    else:
        candidates = (f"reason_{n}" for n in itertools.count(count + 1))
    return (code for code in candidates if code.casefold() not in folded)
