"""Customer texts edited by admins: /texts, /text, /text_reset, and replies to /text's prompt.

Thin: parse the command, call `bot.text_editor.TextEditor`, word the result (English: admins
read it, customers never do). The admin router (`handlers.admin`) lets only admins in, so
nothing here checks roles.

The reply path keeps no state: /text's message starts with a line naming the text and language
(`PROMPT_HEADING`), and a reply to it is read back from that line, so it works after a restart
and on any worker. A reply to any other message of the bot is left alone (`PromptReply` does not
match), to reach the handlers it is meant for — an admin may be answering a test survey.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import ForceReply, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.i18n import LANGUAGE_NAMES, LOCALES
from bot.live_settings import LiveSettings
from bot.text_editor import (
    MESSAGE_LIMIT,
    Entry,
    Problem,
    Refusal,
    Reset,
    Saved,
    Shown,
    TextEditor,
    find,
    language_of,
    looks_like_language,
    suggestions,
    telegram_length,
)
from bot.texts import Text, Texts

__all__ = [
    "Prompt",
    "PromptReply",
    "TextRequest",
    "pack",
    "parse_text",
    "read_prompt",
    "refusal_words",
    "router",
]

# -- wording (English: admins read it, customers never do) -------------------------------------

LANGUAGES = ", ".join(f"{locale} ({LANGUAGE_NAMES[locale]})" for locale in LOCALES)

TEXTS_USAGE = "Usage: /texts — lists every text customers read. /text <name> shows one."
TEXT_USAGE = (
    "Usage:\n"
    "/text <name> [language] — shows a text, ready to change\n"
    "/text <name> [language] <new wording> — replaces it\n"
    f"Languages: {LANGUAGES}; en when none is given. /texts lists the names."
)
TEXT_RESET_USAGE = (
    "Usage: /text_reset <name> [language] — brings back the default wording.\n"
    f"Languages: {LANGUAGES}; en when none is given. /texts lists the names."
)

UNKNOWN_TEXT = "There is no text called “{name}”."
DID_YOU_MEAN = "Did you mean {names}?"
SEE_LIST = "/texts lists them all."
UNKNOWN_LANGUAGE = "There are no texts in “{language}”. The languages are: {languages}."
AS_WORDING = "To make “{wording}” the new English wording, send: /text {name} en {wording}"

LIST_HEADING = (
    "Texts customers read ({count}). ✏️ marks those changed, with the languages.\n"
    "/text <name> [language] shows one and how to change it."
)
LIST_LINE = "• {name} — {excerpt}"
LIST_LINE_CHANGED = "• {name} ✏️ {languages} — {excerpt}"
#: How much of each text /texts shows.
EXCERPT_CHARS = 48

#: The first line of /text's message; a reply to the message is read back from it.
PROMPT_HEADING = "Text: {name} · {language}"
_PROMPT_LINE = re.compile(r"Text: ([a-z0-9_]+) · ([A-Za-z_]+)")
SOURCE_DEFAULT = "In force: the default wording."
SOURCE_CHANGED = "In force: changed by {who} on {when}."
PLACEHOLDERS = "Placeholders: {placeholders}"
PLACEHOLDER = "{{{name}}} {meaning}"
THE_DEFAULT = "The default:"
PROMPT_HINT = (
    "Reply to this message with the new wording, or send /text {name} {language} <new wording>. "
    "/text_reset {name} {language} brings back the default."
)
INPUT_HINT = "New wording of {name}"

SAVED = "Saved: {name} · {language}. Customers now read:"
SAVED_SAME = "{name} · {language} reads so already; nothing changed. Customers read:"
DROPPED = "Note: your wording leaves out {placeholder} ({meaning})."
DROPPED_NAME = "Note: your wording leaves out {name}, so customers are no longer addressed by name."
UNDO = "/text_reset {name} {language} brings back the default."

REFUSED_EMPTY = "The new wording is empty: write the words customers should read."
REFUSED_BRACES = (
    "The braces in your wording do not pair up. A placeholder is a name in braces, like {name}; "
    "to show a brace itself, write it twice: {{ or }}."
)
REFUSED_MALFORMED = (
    "{piece} is not a placeholder I can fill: write just a name in braces. "
    "{name} may use: {allowed}."
)
REFUSED_UNKNOWN = "{name} cannot use {unknown}: it may use {allowed}."
REFUSED_TOO_LONG = (
    "That is {length} characters as a customer would read it; Telegram allows at most {limit} in "
    "a message. Please shorten it."
)
REFUSED_TOO_LONG_BUTTON = (
    "{name} is a button: at most {limit} characters fit on it, and that is {length}. Please "
    "shorten it."
)
NOTHING_CHANGED = "Nothing was changed."
TRY_AGAIN = "Nothing was changed; reply to the prompt again with the corrected wording."

RESET_DONE = "{name} · {language} is back to the default. Customers now read:"
RESET_NOTHING = "{name} · {language} was not changed; customers read the default:"

#: What each placeholder stands for, as /text explains it.
MEANINGS = {
    "name": "the customer's first name",
    "business": "your business's name",
    "location": "where the visit was",
    "service": "the service of the visit",
    "when": "when the visit was or the question comes",
    "time": "a time of day",
    "day": "a weekday and date",
    "date": "a date",
    "weekday": "a weekday",
    "score": "the score tapped",
    "top": "the top of the scale",
    "reasons": "the reasons tapped",
    "deadline": "by when a manager looks into it",
    "kind": "what was kept: voice note, photo…",
    "message": "the team's message",
    "language": "the language's own name",
}


def router() -> Router:
    texts = Router(name="admin-texts")
    texts.message.register(list_texts, Command("texts"))
    texts.message.register(text, Command("text"))
    texts.message.register(text_reset, Command("text_reset"))
    texts.message.register(prompt_answered, F.text, PromptReply())
    return texts


# -- /texts --------------------------------------------------------------------------------------


async def list_texts(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    words: Texts,
    clock: Clock,
) -> None:
    if command.args:
        await message.answer(TEXTS_USAGE)
        return
    listing = await TextEditor(sessions, words, clock).listing()
    count = sum(len(entries) for _, entries in listing)
    blocks = [LIST_HEADING.format(count=count)]
    for title, entries in listing:
        blocks.append("\n".join([title, *(_list_line(entry) for entry in entries)]))
    for part in pack(blocks):
        await message.answer(part)


def _list_line(entry: Entry) -> str:
    excerpt = " ".join(entry.english.split())
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[: EXCERPT_CHARS - 1].rstrip() + "…"
    if entry.changed_in:
        return LIST_LINE_CHANGED.format(
            name=entry.item.name, languages=", ".join(entry.changed_in), excerpt=excerpt
        )
    return LIST_LINE.format(name=entry.item.name, excerpt=excerpt)


# -- /text and replies to its prompt -------------------------------------------------------------


async def text(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    words: Texts,
    clock: Clock,
    live: LiveSettings | None = None,
) -> None:
    request = parse_text(command.args)
    if isinstance(request, str):
        await message.answer(request)
        return
    zone = _zone(live)
    editor = TextEditor(sessions, words, clock, zone=zone)
    if request.wording is None:
        shown = await editor.show(request.item, request.locale)
        await _send_prompt(message, shown, zone)
        return
    person = message.from_user
    assert person is not None  # the admin router lets only messages from a person in
    outcome = await editor.set(
        request.item,
        request.locale,
        request.wording,
        by=person.id,
        by_name=person.full_name,
        first_name=person.first_name,
    )
    await _send_outcome(message, outcome, replying=False)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The text and language a reply to /text's message is about."""

    item: Text
    locale: str


class PromptReply(Filter):
    """A reply to the bot's own /text message, which names the text on its first line. Commands
    are commands, not wordings."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        replied = message.reply_to_message
        if replied is None or replied.from_user is None or replied.from_user.id != bot.id:
            return False
        if (message.text or "").startswith("/"):
            return False
        prompt = read_prompt(replied.text or "")
        return {"prompt": prompt} if prompt is not None else False


def read_prompt(text: str) -> Prompt | None:
    """The text and language /text's message is about, from its first line."""
    matched = _PROMPT_LINE.fullmatch(text.split("\n", 1)[0].strip())
    if matched is None:
        return None
    item, locale = find(matched[1]), matched[2]
    if item is None or locale not in LANGUAGE_NAMES:
        return None
    return Prompt(item, locale)


async def prompt_answered(
    message: Message,
    prompt: Prompt,
    sessions: async_sessionmaker[AsyncSession],
    words: Texts,
    clock: Clock,
    live: LiveSettings | None = None,
) -> None:
    person = message.from_user
    assert person is not None
    editor = TextEditor(sessions, words, clock, zone=_zone(live))
    outcome = await editor.set(
        prompt.item,
        prompt.locale,
        message.text or "",
        by=person.id,
        by_name=person.full_name,
        first_name=person.first_name,
    )
    await _send_outcome(message, outcome, replying=True)


@dataclass(frozen=True, slots=True)
class TextRequest:
    item: Text
    locale: str
    wording: str | None  # None: show it


def parse_text(args: str | None) -> TextRequest | str:
    """``/text <name> [language] [new wording]``; a string is the answer to give instead."""
    name, rest = _split(args or "")
    if not name:
        return TEXT_USAGE
    item = find(name)
    if item is None:
        return _unknown_text(name)
    if not rest:
        return TextRequest(item, "en", None)
    first, after = _split(rest)
    locale = language_of(first)
    if locale is not None:
        return TextRequest(item, locale, after or None)
    if looks_like_language(first):
        return "\n".join(
            [
                UNKNOWN_LANGUAGE.format(language=first, languages=LANGUAGES),
                AS_WORDING.format(wording=rest, name=item.name),
            ]
        )
    return TextRequest(item, "en", rest)


def _split(args: str) -> tuple[str, str]:
    """The first word, and the rest with its own line breaks kept."""
    parts = args.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


async def _send_prompt(message: Message, shown: Shown, zone: tzinfo) -> None:
    name, language = shown.item.name, shown.locale
    if shown.source is None:
        source = SOURCE_DEFAULT
    else:
        who = shown.source.by_name or str(shown.source.by_id)
        if shown.source.by_name and shown.source.by_id:
            who = f"{shown.source.by_name} ({shown.source.by_id})"
        when = shown.source.at.astimezone(zone).strftime("%d %b %Y, %H:%M")
        source = SOURCE_CHANGED.format(who=who, when=when)
    described = " · ".join(
        PLACEHOLDER.format(name=placeholder, meaning=MEANINGS.get(placeholder, "")).strip()
        for placeholder in shown.placeholders
    )
    heading = "\n".join(
        [
            PROMPT_HEADING.format(name=name, language=language),
            source,
            PLACEHOLDERS.format(placeholders=described),
        ]
    )
    wordings = [shown.wording]
    if shown.changed:
        wordings.append(f"{THE_DEFAULT}\n{shown.default}")
    hint = PROMPT_HINT.format(name=name, language=language)
    reply_markup = ForceReply(
        force_reply=True, input_field_placeholder=INPUT_HINT.format(name=name)[:64]
    )
    whole = [heading, *wordings, hint]
    if _fits(whole):
        await message.answer("\n\n".join(whole), reply_markup=reply_markup)
        return
    # A long wording goes first on its own, so the prompt (which a reply is read back from)
    # still fits in one message.
    for part in pack(wordings):
        await message.answer(part)
    await message.answer(f"{heading}\n\n{hint}", reply_markup=reply_markup)


async def _send_outcome(message: Message, outcome: Saved | Refusal, *, replying: bool) -> None:
    if isinstance(outcome, Refusal):
        await message.answer(
            f"{refusal_words(outcome)}\n{TRY_AGAIN if replying else NOTHING_CHANGED}"
        )
        return
    name, language = outcome.item.name, outcome.locale
    heading = (SAVED if outcome.changed else SAVED_SAME).format(name=name, language=language)
    notes = [_dropped_words(placeholder) for placeholder in outcome.dropped]
    if outcome.changed:
        notes.append(UNDO.format(name=name, language=language))
    for part in pack([heading, outcome.preview, "\n".join(notes)]):
        await message.answer(part)


def refusal_words(refusal: Refusal) -> str:
    name = refusal.item.name
    allowed = ", ".join(f"{{{placeholder}}}" for placeholder in refusal.allowed)
    if refusal.problem is Problem.EMPTY:
        return REFUSED_EMPTY
    if refusal.problem is Problem.BROKEN_BRACES:
        return REFUSED_BRACES
    if refusal.problem is Problem.MALFORMED:
        return REFUSED_MALFORMED.format(piece=refusal.detail, name=name, allowed=allowed)
    if refusal.problem is Problem.UNKNOWN_PLACEHOLDER:
        unknown = ", ".join(f"{{{placeholder}}}" for placeholder in refusal.unknown)
        return REFUSED_UNKNOWN.format(name=name, unknown=unknown, allowed=allowed)
    template = REFUSED_TOO_LONG if refusal.limit >= MESSAGE_LIMIT else REFUSED_TOO_LONG_BUTTON
    return template.format(name=name, limit=refusal.limit, length=refusal.length)


def _dropped_words(placeholder: str) -> str:
    if placeholder == "name":
        return DROPPED_NAME
    meaning = MEANINGS.get(placeholder, "a value the bot fills in")
    return DROPPED.format(placeholder=f"{{{placeholder}}}", meaning=meaning)


# -- /text_reset ---------------------------------------------------------------------------------


async def text_reset(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    words: Texts,
    clock: Clock,
    live: LiveSettings | None = None,
) -> None:
    args = (command.args or "").split()
    if not args or len(args) > 2:
        await message.answer(TEXT_RESET_USAGE)
        return
    item = find(args[0])
    if item is None:
        await message.answer(_unknown_text(args[0]))
        return
    locale = language_of(args[1]) if len(args) == 2 else "en"
    if locale is None:
        await message.answer(UNKNOWN_LANGUAGE.format(language=args[1], languages=LANGUAGES))
        return
    person = message.from_user
    assert person is not None
    editor = TextEditor(sessions, words, clock, zone=_zone(live))
    outcome = await editor.reset(
        item, locale, by=person.id, by_name=person.full_name, first_name=person.first_name
    )
    await _send_reset(message, outcome)


async def _send_reset(message: Message, outcome: Reset) -> None:
    template = RESET_DONE if outcome.changed else RESET_NOTHING
    heading = template.format(name=outcome.item.name, language=outcome.locale)
    for part in pack([heading, outcome.preview]):
        await message.answer(part)


# -- helpers -------------------------------------------------------------------------------------


def _unknown_text(name: str) -> str:
    lines = [UNKNOWN_TEXT.format(name=name)]
    close = suggestions(name)
    if close:
        lines.append(DID_YOU_MEAN.format(names=", ".join(close)))
    lines.append(SEE_LIST)
    return "\n".join(lines)


def _zone(live: LiveSettings | None) -> tzinfo:
    return live.current.zone if live is not None else UTC


def _fits(blocks: list[str]) -> bool:
    return telegram_length("\n\n".join(blocks)) <= MESSAGE_LIMIT


def pack(blocks: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Blocks joined by blank lines into as few messages as fit Telegram's limit; a block too
    long for one message is cut at line breaks (or, failing those, anywhere)."""
    messages: list[str] = []
    current = ""
    for piece in (piece for block in blocks if block for piece in _cut(block, limit)):
        joined = f"{current}\n\n{piece}" if current else piece
        if telegram_length(joined) <= limit:
            current = joined
        else:
            messages.append(current)
            current = piece
    if current:
        messages.append(current)
    return messages


def _cut(block: str, limit: int) -> list[str]:
    if telegram_length(block) <= limit:
        return [block]
    pieces: list[str] = []
    current = ""
    for line in block.split("\n"):
        while telegram_length(line) > limit:  # one line longer than a message: cut anywhere
            head = line[: limit // 2]
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            line = line[len(head) :]
        joined = f"{current}\n{line}" if current else line
        if telegram_length(joined) <= limit:
            current = joined
        else:
            pieces.append(current)
            current = line
    if current:
        pieces.append(current)
    return pieces
