"""Admins' own wording of the customer texts (issue 6): checked, previewed, stored and applied.

Every customer text is declared once in `bot.texts`; an admin may replace its wording in one
language (`Template` rows, one per text and language). A new wording is refused, with what to fix,
when it would break a message or a button:

- placeholders must be those of the text's English default, plus ``{business}`` (the caller
  passes only those, so any other one would fail at the moment a customer is written to); a
  placeholder is a bare name in braces: no ``{}``, ``{0}``, ``{name.x}``, ``{name!r}`` or
  ``{name:>9}``, which would fail or leak Python internals; and the braces must pair up
  (``{{`` and ``}}`` are literal braces);
- the message a customer would read (the preview, with sample values) must fit Telegram's 4,096
  characters (counted as Telegram counts them, in UTF-16 code units), and button labels and
  reason chips 64: Telegram cuts longer buttons off on the screen.

A placeholder the default uses but the new wording leaves out is allowed (the admin may not want
it) and reported, so the admin sees, say, that customers are no longer addressed by name.

On success the wording is stored and audited in one transaction, then applied to the running
`Texts` at once; `load_overrides` applies the stored ones at start. Other worker processes pick
changes up when they start (issue 9 brings several workers; they will need to refresh).
"""

from __future__ import annotations

import difflib
import enum
import logging
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from babel import localedata
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.clock import Clock
from bot.i18n import LANGUAGE_NAMES, LOCALES
from bot.texts import TEXTS, Text, Texts
from storage.repositories import AuditRepository
from storage.template_repository import TemplateRepository

__all__ = [
    "ALWAYS_ALLOWED",
    "BUTTON_LIMIT",
    "GROUPS",
    "MESSAGE_LIMIT",
    "RESET_ACTION",
    "SAMPLE_LOCATION",
    "SET_ACTION",
    "Entry",
    "Problem",
    "Refusal",
    "Reset",
    "Saved",
    "Shown",
    "Source",
    "TextEditor",
    "allowed_placeholders",
    "check",
    "find",
    "grouped",
    "language_of",
    "limit_for",
    "load_overrides",
    "looks_like_language",
    "placeholders_of",
    "preview",
    "sample_values",
    "suggestions",
    "target",
    "telegram_length",
]

log = logging.getLogger(__name__)

#: Audit actions; the target is "<name>/<language>".
SET_ACTION = "text.set"
RESET_ACTION = "text.reset"

#: Telegram's longest text message.
MESSAGE_LIMIT = 4096
#: Button labels and reason chips: Telegram sets no number, but cuts long ones off on screen.
BUTTON_LIMIT = 64
_BUTTON_PREFIXES = ("button_", "reason_")

#: Besides a text's own placeholders, every text may name the business (`Texts.render` fills it).
ALWAYS_ALLOWED = frozenset({"business"})

#: How an admin may name a language; keys are lower case with "_" (see `language_of`).
_LANGUAGE_ALIASES = {
    **{locale.lower(): locale for locale in LOCALES},
    "en_gb": "en",
    "en_us": "en",
    "zh": "zh_Hans",
    "zh_cn": "zh_Hans",
    "zh_sg": "zh_Hans",
    "zh_hans_cn": "zh_Hans",
}
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")

#: The texts in groups, as `bot.texts` declares them: each group starts at the text named here
#: and runs to the next group's first text (texts added later land in their section's group).
GROUPS: tuple[tuple[str, str], ...] = (
    ("greeting", "Start and help"),
    ("visit_noted_ask_at", "Deep links and QR codes"),
    ("survey_at_location", "The survey"),
    ("thanks_high", "A high score"),
    ("apology", "A low score"),
    ("reason_rude_staff", "Reason chips"),
    ("comment_media_kept", "Comments and other messages"),
    ("message_from_business", "A case with the team"),
    ("stop_confirm", "/stop, /forget and /language"),
)


# -- names and languages ---------------------------------------------------------------------


def find(name: str) -> Text | None:
    """The text an admin named (any case)."""
    return TEXTS.get(name.strip().lower())


def suggestions(name: str, limit: int = 5) -> list[str]:
    """Names close to a mistyped one: those containing it first, then look-alikes."""
    typed = name.strip().lower()
    containing = [known for known in TEXTS if typed and typed in known]
    alike = difflib.get_close_matches(typed, TEXTS, n=3, cutoff=0.6)
    return list(dict.fromkeys([*containing, *alike]))[:limit]


def language_of(token: str) -> str | None:
    """The locale an admin means: "en", "zh_Hans", and "zh", "zh-CN", "zh_hans" for it; None
    for anything else."""
    return _LANGUAGE_ALIASES.get(token.strip().replace("-", "_").lower())


def looks_like_language(token: str) -> bool:
    """Whether a word after a text's name is meant as a language ("fr", "pt-BR", "de_DE") that
    Hearback has no texts in, rather than the start of a new wording. Language codes are typed
    in lower case, wordings mostly start with a capital: "It is done" is a wording, "it" asks
    for Italian."""
    token = token.strip()
    if _LANGUAGE_TAG.fullmatch(token) is None:
        return False
    primary = re.split(r"[-_]", token, maxsplit=1)[0]
    return primary.islower() and localedata.exists(primary)


def limit_for(item: Text) -> int:
    """The longest a customer may read this text: a button's, or a message's."""
    return BUTTON_LIMIT if item.name.startswith(_BUTTON_PREFIXES) else MESSAGE_LIMIT


def allowed_placeholders(item: Text) -> frozenset[str]:
    return item.placeholders | ALWAYS_ALLOWED


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji is often two)."""
    return len(text.encode("utf-16-le")) // 2


def grouped(items: Iterable[Text] | None = None) -> list[tuple[str, list[Text]]]:
    """The texts (all of them by default) in `GROUPS`, in declaration order."""
    starts = dict(GROUPS)
    groups: list[tuple[str, list[Text]]] = []
    for item in items if items is not None else TEXTS.values():
        if item.name in starts or not groups:
            groups.append((starts.get(item.name, "Texts"), []))
        groups[-1][1].append(item)
    return groups


# -- checking a wording ----------------------------------------------------------------------


class Problem(enum.StrEnum):
    EMPTY = "empty"
    BROKEN_BRACES = "broken_braces"  # Python's format syntax refuses it: `Refusal.detail` says why
    MALFORMED = "malformed"  # {} {0} {name.x} {name!r} {name:>9}: `Refusal.detail` is the piece
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"  # `Refusal.unknown`, allowed: `Refusal.allowed`
    TOO_LONG = "too_long"  # `Refusal.length` over `Refusal.limit`


@dataclass(frozen=True, slots=True)
class Refusal:
    """A wording that was not stored, and why."""

    item: Text
    problem: Problem
    detail: str = ""
    unknown: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    limit: int = 0
    length: int = 0


def check(item: Text, wording: str) -> Refusal | None:
    """Whether ``wording`` can replace the text (all but its length, which needs the preview)."""
    if not wording.strip():
        return Refusal(item, Problem.EMPTY)
    try:
        fields = list(string.Formatter().parse(wording))
    except ValueError as error:
        return Refusal(item, Problem.BROKEN_BRACES, detail=str(error))
    allowed = allowed_placeholders(item)
    unknown: list[str] = []
    for _, field, spec, conversion in fields:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            piece = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return Refusal(item, Problem.MALFORMED, detail=f"{{{piece}}}", allowed=_sorted(allowed))
        if field not in allowed and field not in unknown:
            unknown.append(field)
    if unknown:
        return Refusal(
            item, Problem.UNKNOWN_PLACEHOLDER, unknown=tuple(unknown), allowed=_sorted(allowed)
        )
    return None


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    # The customer's name first (the one admins think of), the rest alphabetically.
    return tuple(sorted(names, key=lambda name: (name != "name", name)))


def placeholders_of(item: Text) -> tuple[str, ...]:
    """The placeholders a wording of this text may use, in the order shown to admins."""
    return _sorted(allowed_placeholders(item))


# -- the preview: the text as a customer would read it ----------------------------------------

# Sample words in the customer's language, where one is a word rather than a name or a number.
_SERVICE = {"en": "haircut", "zh_Hans": "理发"}
_STAFF_MESSAGE = {
    "en": "We are sorry about the wait. Your next visit is on us.",
    "zh_Hans": "很抱歉让您久等了。下次光临由我们请客。",
}
SAMPLE_LOCATION = "Downtown"


def sample_values(
    item: Text, locale: str, words: Texts, *, first_name: str | None, today: date
) -> dict[str, object]:
    """Values for every placeholder as the bot would fill them (see bot/replies.py,
    bot/surveys.py, bot/arrivals.py, bot/cases.py): the admin's own first name, today."""
    render = words.render
    if item.name == texts.VISIT_NOTED_ASK_AT.name:
        when = render(texts.WHEN_TOMORROW, locale, time="10:00")
    else:  # the survey's question: "How was your visit to Downtown today, Bea?"
        when = render(texts.SURVEY_TODAY, locale)
    chips = [render(texts.REASON_LONG_WAIT, locale), render(texts.REASON_RUDE_STAFF, locale)]
    return {
        "name": words.name(first_name, locale),
        "business": words.business,
        "location": SAMPLE_LOCATION,
        "service": _SERVICE.get(locale, _SERVICE["en"]),
        "when": when,
        "time": "15:00",
        "day": words.weekday_and_date(today + timedelta(days=3), locale),
        "date": words.date(today, locale),
        "weekday": words.weekday(today - timedelta(days=2), locale),
        "score": 4,
        "top": 5,
        "reasons": words.listing(chips, locale),
        "deadline": render(texts.DEADLINE_TOMORROW, locale, time="12:00"),
        "kind": render(texts.MEDIA_VOICE, locale),
        "message": _STAFF_MESSAGE.get(locale, _STAFF_MESSAGE["en"]),
        "language": LANGUAGE_NAMES.get(locale, locale),
    }


class _Samples(dict[str, object]):
    # A placeholder with no sample yet (a text added later) shows as itself rather than failing.
    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


def preview(
    item: Text, wording: str, locale: str, words: Texts, *, first_name: str | None, today: date
) -> str:
    """``wording`` (already `check`ed) as a customer would read it."""
    values = sample_values(item, locale, words, first_name=first_name, today=today)
    return wording.format_map(_Samples(values))


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Who set the wording in force, and when."""

    by_id: int | None
    by_name: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Shown:
    """A text in one language as /text shows it."""

    item: Text
    locale: str
    wording: str  # in force: the admin's own, else the default
    default: str
    source: Source | None  # None: the default is in force
    placeholders: tuple[str, ...]  # those a new wording may use

    @property
    def changed(self) -> bool:
        return self.source is not None


@dataclass(frozen=True, slots=True)
class Saved:
    """A new wording in force (``changed``), or the same one again (nothing stored)."""

    item: Text
    locale: str
    wording: str
    preview: str
    dropped: tuple[str, ...]  # placeholders of the default this wording leaves out
    changed: bool


@dataclass(frozen=True, slots=True)
class Reset:
    """The default in force again; ``changed`` is False when it was already."""

    item: Text
    locale: str
    wording: str
    preview: str
    changed: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of /texts."""

    item: Text
    english: str  # the English wording in force
    changed_in: tuple[str, ...]  # locales with an admin's own wording, in `LOCALES` order


def target(item: Text, locale: str) -> str:
    """How audit entries name a text in a language."""
    return f"{item.name}/{locale}"


# -- the service -----------------------------------------------------------------------------


class TextEditor:
    """Shows, replaces and restores customer texts; ``words`` is the `Texts` every service
    renders with, so changes reach customers at once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        words: Texts,
        clock: Clock,
        *,
        zone: tzinfo = UTC,
    ) -> None:
        self._sessions = sessions
        self._words = words
        self._clock = clock
        self._zone = zone  # whose "today" the preview's dates are

    def preview(self, item: Text, wording: str, locale: str, first_name: str | None) -> str:
        today = self._clock.now().astimezone(self._zone).date()
        return preview(item, wording, locale, self._words, first_name=first_name, today=today)

    async def listing(self) -> list[tuple[str, list[Entry]]]:
        """Every text, in groups, with the languages it was changed in."""
        async with self._sessions() as session:
            rows = await TemplateRepository(session).all()
        changed: dict[str, dict[str, str]] = {}
        for row in rows:
            changed.setdefault(row.name, {})[row.language] = row.text
        return [
            (
                title,
                [
                    Entry(
                        item,
                        english=changed.get(item.name, {}).get("en")
                        or self._words.default(item, "en"),
                        changed_in=tuple(
                            locale for locale in LOCALES if locale in changed.get(item.name, {})
                        ),
                    )
                    for item in items
                ],
            )
            for title, items in grouped()
        ]

    async def show(self, item: Text, locale: str) -> Shown:
        default = self._words.default(item, locale)
        async with self._sessions() as session:
            repository = TemplateRepository(session)
            row = await repository.get(item.name, locale)
            audit = await repository.last_change(SET_ACTION, target(item, locale)) if row else None
        source = None
        if row is not None:
            by_name = audit.actor_name if audit is not None else None
            source = Source(row.updated_by, by_name, row.updated_at)
        return Shown(
            item,
            locale,
            wording=row.text if row is not None else default,
            default=default,
            source=source,
            placeholders=placeholders_of(item),
        )

    async def set(
        self,
        item: Text,
        locale: str,
        wording: str,
        *,
        by: int,
        by_name: str,
        first_name: str | None = None,
    ) -> Saved | Refusal:
        """Replace the wording, or say why not. ``first_name`` fills {name} in the preview."""
        wording = wording.strip()
        refusal = check(item, wording)
        if refusal is not None:
            return refusal
        shown = self.preview(item, wording, locale, first_name)
        limit = limit_for(item)
        if telegram_length(shown) > limit:
            return Refusal(item, Problem.TOO_LONG, limit=limit, length=telegram_length(shown))
        used = texts.placeholders(wording)
        dropped = tuple(name for name in _sorted(item.placeholders) if name not in used)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            repository = TemplateRepository(session)
            row = await repository.get(item.name, locale)
            before = row.text if row is not None else self._words.default(item, locale)
            if wording == before:  # e.g. the same update delivered twice: nothing to record
                changed = False
            else:
                changed = True
                await repository.put(item.name, locale, wording, by=by, at=now)
                await AuditRepository(session).record(
                    at=now,
                    action=SET_ACTION,
                    actor_id=by,
                    actor_name=by_name,
                    target=target(item, locale),
                    old=before,
                    new=wording,
                )
        if changed:
            self._words.override(item.name, locale, wording)
        return Saved(item, locale, wording, shown, dropped, changed)

    async def reset(
        self, item: Text, locale: str, *, by: int, by_name: str, first_name: str | None = None
    ) -> Reset:
        """Back to the default wording."""
        default = self._words.default(item, locale)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            removed = await TemplateRepository(session).remove(item.name, locale)
            if removed is not None:
                await AuditRepository(session).record(
                    at=now,
                    action=RESET_ACTION,
                    actor_id=by,
                    actor_name=by_name,
                    target=target(item, locale),
                    old=removed,
                    new=default,
                )
        self._words.restore(item.name, locale)
        shown = self.preview(item, default, locale, first_name)
        return Reset(item, locale, default, shown, changed=removed is not None)


async def load_overrides(
    sessions: async_sessionmaker[AsyncSession], words: Texts, *, warn: bool = True
) -> int:
    """Make ``words`` use exactly the stored wordings (at start, and now and then after, so a
    change made through another process arrives here too); how many are in force.

    A stored wording no longer valid (its text was removed from the code, or the text's
    placeholders changed since) is skipped, with a warning when ``warn``: the default is safer
    than a message that fails to render."""
    async with sessions() as session:
        rows = await TemplateRepository(session).all()
    wanted: dict[tuple[str, str], str] = {}
    for row in rows:
        item = TEXTS.get(row.name)
        if item is None or row.language not in LOCALES:
            if warn:
                log.warning("Stored wording of %s/%s ignored: no such text", row.name, row.language)
            continue
        if check(item, row.text) is not None:
            if warn:
                log.warning(
                    "Stored wording of %s/%s ignored: its placeholders no longer fit the text",
                    row.name,
                    row.language,
                )
            continue
        wanted[(row.name, row.language)] = row.text
    for name, locale in words.overrides().keys() - wanted.keys():
        words.restore(name, locale)
    for (name, locale), wording in wanted.items():
        words.override(name, locale, wording)
    return len(wanted)
