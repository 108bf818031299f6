"""Languages: gettext catalogues read with Babel, served through aiogram's i18n.

The catalogues are the `.po` files under ``bot/locales/<locale>/LC_MESSAGES/hearback.po``; the
message ids are the English texts of `bot.texts`, so English needs no catalogue. They are
compiled in memory when loaded (Babel's `read_po` → `write_mo`), rather than shipped as `.mo`
files: a compiled file that lags behind its `.po` is a classic way to ship a stale translation,
and compiling ~100 messages takes milliseconds. Fuzzy entries are left out, as gettext does.

Which language a customer reads: the one they chose with /language, else the one their Telegram
app is set to (its ``language_code``, kept on the customer when they first arrive), else
DEFAULT_LANGUAGE. `negotiate` maps Telegram's IETF tags onto the catalogues: any Chinese goes to
Simplified Chinese (the only Chinese there is so far), ``en-GB`` to English, and so on.

Workers (the scheduler, the HTTP API) have no update to take a language from, so everything
here takes the locale as an argument; the middleware additionally sets aiogram's context
locale for handlers.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LANGUAGE_NAMES",
    "LOCALES",
    "LOCALES_DIR",
    "Catalogues",
    "LocaleMiddleware",
    "catalogues",
    "negotiate",
]

DOMAIN = "hearback"
LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
#: Every language a customer can read, with its name in itself (as /language offers it).
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh_Hans": "简体中文"}
LOCALES: tuple[str, ...] = tuple(LANGUAGE_NAMES)

# Telegram sends IETF tags ("en", "en-GB", "zh-hans", "zh-CN", "pt-br"); the first subtag picks
# the catalogue. Traditional Chinese readers get Simplified rather than English: closer.
_BY_LANGUAGE = {"en": "en", "zh": "zh_Hans"}


def negotiate(tag: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The catalogue for a language tag: "zh-hans" → "zh_Hans", "en-GB" → "en"; a language
    without a catalogue (or none) gets ``default``."""
    if tag:
        if tag in LANGUAGE_NAMES:
            return tag
        primary = tag.replace("_", "-").split("-", 1)[0].lower()
        if primary in _BY_LANGUAGE:
            return _BY_LANGUAGE[primary]
    return default


class Catalogues(I18n):
    """aiogram's I18n, loading `.po` files (compiled in memory) instead of `.mo` files."""

    def __init__(self, path: Path = LOCALES_DIR, default_locale: str = DEFAULT_LOCALE) -> None:
        super().__init__(path=path, default_locale=default_locale, domain=DOMAIN)

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        found: dict[str, gettext.GNUTranslations] = {}
        for po_path in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            locale = po_path.parent.parent.name
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=locale, domain=self.domain)
            compiled = io.BytesIO()
            write_mo(compiled, catalog, use_fuzzy=False)
            compiled.seek(0)
            found[locale] = gettext.GNUTranslations(compiled)
        return found


@cache
def catalogues() -> Catalogues:
    """The process's catalogues, loaded once."""
    return Catalogues()


# The customer's stored language, by Telegram user id: asked of the database once per person
# and process, then kept (a few bytes each). /language and /forget update it through `remember`.
LanguageLookup = Callable[[int], Awaitable[str | None]]
_KNOWN_MAX = 200_000


class LocaleMiddleware(I18nMiddleware):
    """Puts ``locale`` (a key of LANGUAGE_NAMES) in handler data and aiogram's context.

    ``lookup`` gives the customer's stored language (None for someone not yet a customer, whose
    Telegram language_code then decides).
    """

    def __init__(
        self, i18n: Catalogues, lookup: LanguageLookup, *, default: str = DEFAULT_LOCALE
    ) -> None:
        super().__init__(i18n)
        self._lookup = lookup
        self.default = default
        self._known: dict[int, str | None] = {}

    def remember(self, user_id: int, language: str | None) -> None:
        """The customer's language changed (or was erased: None)."""
        self._known[user_id] = language

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        if user is None:
            return self.default
        if user.id not in self._known:
            if len(self._known) >= _KNOWN_MAX:  # bounded: start afresh rather than grow forever
                self._known.clear()
            self._known[user.id] = await self._lookup(user.id)
        stored = self._known[user.id]
        return negotiate(stored or user.language_code, self.default)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        locale = await self.get_locale(event, data)
        data["locale"] = locale
        data["locales"] = self
        with self.i18n.context(), self.i18n.use_locale(locale):
            return await handler(event, data)
