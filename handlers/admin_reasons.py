"""/reasons in an admin's private chat: list the reason chips, add, rename, move, hide, show.

Thin: parse with `bot.reasons.parse`, call `ReasonService`, word the result. `handlers.admin`
lets only admins in, so nothing here checks roles. The wording is English (admins read it).
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.reasons import (
    LABEL_MAX,
    MAX_OFFERED,
    Action,
    Change,
    ListedReason,
    ReasonService,
    Refusal,
    parse,
    was_translated,
)

# -- wording (English: admins read it, customers never do) -------------------------------------

USAGE_LINES = {
    Action.LIST: "/reasons — the list",
    Action.ADD: "/reasons add <label>",
    Action.RENAME: "/reasons rename <n|code> <new label>",
    Action.MOVE: "/reasons move <n|code> <new place>",
    Action.HIDE: "/reasons hide <n|code>",
    Action.SHOW: "/reasons show <n|code>",
}
USAGE = "\n".join(
    [
        "Usage:",
        *USAGE_LINES.values(),
        "<n> is a reason's number in /reasons, <code> the word after its label.",
    ]
)
USAGE_ONE = "Usage: {line}, e.g. {example}"
EXAMPLES = {
    Action.LIST: "/reasons",
    Action.ADD: "/reasons add Cold food",
    Action.RENAME: "/reasons rename long_wait Slow service",
    Action.MOVE: "/reasons move long_wait 1",
    Action.HIDE: "/reasons hide 3",
    Action.SHOW: "/reasons show 11",
}

LIST_HEADING = "Reason chips, in the order customers see them:"
LIST_LINE = "{n}. {label} — {code} · {answers}"
HIDDEN_HEADING = "Hidden (not offered; their answers still count):"
HIDDEN_LINE = "{n}. {label} — {code} · hidden · {answers}"
LIST_NONE = "No reason chips yet."
LIST_HINT = (
    "Change them: /reasons add <label> · rename <n|code> <label> · move <n|code> <place> · "
    "hide <n|code> · show <n|code>"
)
LIST_MORE = "… and {count} more."
NO_ANSWERS = "no answers yet"
ONE_ANSWER = "1 answer"
ANSWERS = "{count} answers"

ADDED = "Added reason {n}, “{label}” (code {code}). Customers are offered it from now on."
RENAMED = "Reason {n} ({code}) is now “{label}” (was “{old}”)."
RENAMED_TRANSLATED = (
    "Customers now read it as typed, in every language: the built-in translations were for the "
    "old label."
)
MOVED = "“{label}” moved from place {old} to {n}."
HIDDEN = "“{label}” is hidden: customers are no longer offered it."
HIDDEN_KEPT = "The answers that chose it ({count}) stay in its history and the statistics."
HIDDEN_UNDO = "/reasons show {code} offers it again."
SHOWN = "“{label}” is offered again, as number {n}."

NO_SUCH_REASON = (
    "I know no reason “{ref}”. Please give its number or its code as /reasons lists them."
)
LABEL_TOO_LONG = (
    "That label has {length} characters; a chip shows at most {limit}. Please type a shorter one."
)
LABEL_TAKEN = "Reason {n} is called “{label}” already. Please choose another label."
LABEL_HIDDEN = (
    "Hidden reason {n} is called “{label}” already: /reasons show {code} offers it again, with "
    "its history."
)
TOO_MANY = (
    "Customers are offered {limit} reasons already, the most that fit as chips. Hide one first "
    "(/reasons hide <n|code>)."
)
LAST_OFFERED = (
    "“{label}” is the only reason offered, and customers need at least one. Add another first "
    "(/reasons add <label>)."
)
MOVE_HIDDEN = "“{label}” is hidden. /reasons show {code} offers it again; then move it."
PLACE_OUT_OF_RANGE = "Places go from 1 to {offered}. For example: /reasons move {code} 1."
SAME_LABEL = "Reason {n} is called “{label}” already; nothing changed."
SAME_PLACE = "“{label}” is number {n} already; nothing changed."
ALREADY_HIDDEN = "“{label}” is hidden already. /reasons show {code} offers it again."
ALREADY_SHOWN = "“{label}” is offered already, as number {n}."

#: Telegram's limit for a message's text.
_MESSAGE_MAX = 4096


def router() -> Router:
    reasons_router = Router(name="admin-reasons")
    reasons_router.message.register(reasons, Command("reasons"))
    return reasons_router


async def reasons(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    service = ReasonService(sessions, clock)
    asked = parse(command.args)
    if asked is None:
        await message.answer(_usage(command.args))
        return
    if asked.action is Action.LIST:
        await message.answer(listing(await service.listing()))
        return
    person = message.from_user
    assert person is not None  # handlers.admin lets only messages from a person in
    by = {"by": person.id, "by_name": person.full_name}
    ref = asked.ref or ""
    if asked.action is Action.ADD:
        change = await service.add(asked.label or "", **by)
    elif asked.action is Action.RENAME:
        change = await service.rename(ref, asked.label or "", **by)
    elif asked.action is Action.MOVE:
        change = await service.move(ref, asked.place or 0, **by)
    elif asked.action is Action.HIDE:
        change = await service.hide(ref, **by)
    else:
        change = await service.show(ref, **by)
    await message.answer(_reply(asked.action, change, ref=ref, label=asked.label or ""))


# -- wording -------------------------------------------------------------------------------------


def _usage(args: str | None) -> str:
    first = (args or "").split(maxsplit=1)
    try:
        action = Action(first[0].lower()) if first else None
    except ValueError:
        action = None
    if action is None:
        return USAGE
    return USAGE_ONE.format(line=USAGE_LINES[action], example=EXAMPLES[action])


def _answers(count: int) -> str:
    if count == 0:
        return NO_ANSWERS
    return ONE_ANSWER if count == 1 else ANSWERS.format(count=count)


def listing(items: list[ListedReason]) -> str:
    """The /reasons answer: offered chips in order, then the hidden ones, each with its number,
    label, code and how many answers chose it."""
    if not items:
        return f"{LIST_NONE}\n\n{LIST_HINT}"
    offered = [item for item in items if not item.hidden]
    hidden = [item for item in items if item.hidden]
    lines = [LIST_HEADING]
    lines += [_line(LIST_LINE, item) for item in offered]
    if hidden:
        lines += ["", HIDDEN_HEADING]
        lines += [_line(HIDDEN_LINE, item) for item in hidden]
    return _fit([*lines, "", LIST_HINT])


def _line(template: str, item: ListedReason) -> str:
    return template.format(
        n=item.n, label=item.label, code=item.code, answers=_answers(item.answers)
    )


def _fit(lines: list[str]) -> str:
    """The lines, cut short (saying how many are left out) to fit one Telegram message."""
    text = "\n".join(lines)
    if len(text) <= _MESSAGE_MAX:
        return text
    kept: list[str] = []
    for n, line in enumerate(lines):
        more = LIST_MORE.format(count=len(lines) - n)
        if len("\n".join([*kept, line, more])) > _MESSAGE_MAX:
            return "\n".join([*kept, more])
        kept.append(line)
    return "\n".join(kept)  # pragma: no cover - the whole text fitted after all


def _reply(action: Action, change: Change, *, ref: str, label: str) -> str:
    item = change.reason
    if change.ok:
        assert item is not None
        return _done(action, change, item)
    refusal = change.refusal
    if refusal is Refusal.LABEL_EMPTY:
        return _usage(action.value)
    if refusal is Refusal.NO_SUCH_REASON:
        return NO_SUCH_REASON.format(ref=ref)
    if refusal is Refusal.LABEL_TOO_LONG:
        return LABEL_TOO_LONG.format(length=len(" ".join(label.split())), limit=LABEL_MAX)
    if refusal is Refusal.TOO_MANY:
        return TOO_MANY.format(limit=MAX_OFFERED)
    if refusal in (Refusal.LABEL_TAKEN, Refusal.LABEL_HIDDEN):
        other = change.other
        assert other is not None
        template = LABEL_TAKEN if refusal is Refusal.LABEL_TAKEN else LABEL_HIDDEN
        return template.format(n=other.n, label=other.label, code=other.code)
    assert item is not None
    if refusal is Refusal.LAST_OFFERED:
        return LAST_OFFERED.format(label=item.label)
    if refusal is Refusal.HIDDEN:
        return MOVE_HIDDEN.format(label=item.label, code=item.code)
    if refusal is Refusal.PLACE_OUT_OF_RANGE:
        return PLACE_OUT_OF_RANGE.format(offered=change.offered, code=item.code)
    unchanged = {
        Action.RENAME: SAME_LABEL,
        Action.MOVE: SAME_PLACE,
        Action.HIDE: ALREADY_HIDDEN,
        Action.SHOW: ALREADY_SHOWN,
    }
    return unchanged[action].format(n=item.n, label=item.label, code=item.code)


def _done(action: Action, change: Change, item: ListedReason) -> str:
    if action is Action.ADD:
        return ADDED.format(n=item.n, label=item.label, code=item.code)
    if action is Action.RENAME:
        renamed = RENAMED.format(n=item.n, code=item.code, label=item.label, old=change.old_label)
        if was_translated(item.code, change.old_label):
            return f"{renamed}\n{RENAMED_TRANSLATED}"
        return renamed
    if action is Action.MOVE:
        return MOVED.format(label=item.label, old=change.old_place, n=item.n)
    if action is Action.HIDE:
        lines = [HIDDEN.format(label=item.label)]
        if item.answers:
            lines.append(HIDDEN_KEPT.format(count=item.answers))
        lines.append(HIDDEN_UNDO.format(code=item.code))
        return " ".join(lines)
    return SHOWN.format(label=item.label, n=item.n)
