"""Settings admins change in the chat (/settings, /set, /reset), on top of the environment.

Only the settings a shop owner tunes while the bot runs are here (`RUNTIME`): survey timing,
thresholds, texts' business name, SLAs, working time. Those that shape the process itself
(tokens, database, ports, worker tuning, keys) stay in the environment: changing them needs a
restart anyway, and some are secrets that must never be echoed into a chat.

A value set in the chat is stored in the `settings` table under the setting's name and wins over
the environment; /reset removes it, so the environment's value (or the default) applies again.
Every value is validated by the same `Settings` model as at start-up, together with all the
others, so a rule across settings (LOW_SCORE must fit SURVEY_SCALE) holds here too.

Each change is applied at once to this process through the listeners (`subscribe`); the
Application rebuilds its policies from the new `Settings`. Other worker processes read the table
when they start (issue 9 brings several workers; they will need to refresh).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.settings import Settings
from bot.values import QuietHours, format_duration
from storage.repositories import AuditRepository, SettingRepository

__all__ = [
    "RUNTIME",
    "Change",
    "LiveSettings",
    "SettingError",
    "SettingView",
    "Source",
    "format_value",
]

log = logging.getLogger(__name__)

#: Settings that may be changed in the chat, in the order /settings lists them.
RUNTIME: tuple[str, ...] = (
    "business_name",
    "timezone",
    "default_language",
    "survey_scale",
    "survey_delay",
    "quiet_hours",
    "survey_cooldown",
    "survey_expiry",
    "survey_reminder",
    "low_score",
    "review_url",
    "sla_first_response",
    "sla_contact_requested",
    "sla_resolution",
    "working_days",
    "working_hours",
    "followup_delay",
    "escalation_chat",
    "weekly_digest",
)

#: Words that clear a setting whose empty value means "none" (typing nothing is not possible).
_EMPTY_WORDS = frozenset({"none", "off", "-", '""', "''"})
#: Settings that accept an empty value, and what it means there.
_EMPTY_MEANS = {
    "quiet_hours": "no quiet hours",
    "low_score": "the scale's default",
    "review_url": "no review invitation",
    "escalation_chat": "the admins, privately",
    "weekly_digest": "no weekly digest",
}

SET_ACTION = "setting.set"
RESET_ACTION = "setting.reset"


class Source(enum.StrEnum):
    CHAT = "chat"
    ENVIRONMENT = "environment"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class SettingView:
    """One runtime setting as /settings shows it."""

    name: str
    value: str
    default: str
    source: Source
    description: str


@dataclass(frozen=True, slots=True)
class Change:
    """What /set or /reset did: the setting as it is now, and its value before."""

    setting: SettingView
    old: str
    changed: bool


class SettingError(ValueError):
    """A value the setting does not allow; the message names what is allowed."""


def format_value(value: Any) -> str:
    """A value as an admin would type it: 2h, 21:00-09:00, none."""
    if value is None or value == "":
        return "none"
    if isinstance(value, QuietHours):
        return str(value) if value.enabled else "none"
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def _default_of(name: str) -> Any:
    field = Settings.model_fields[name]
    return field.get_default(call_default_factory=True)


class LiveSettings:
    """The settings in force: the environment's, overridden by those set in the chat."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, base: Settings
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.base = base
        self.current = base
        self._chat: dict[str, str] = {}
        self._loaded = False
        self._listeners: list[Callable[[Settings], None]] = []

    def subscribe(self, listener: Callable[[Settings], None]) -> None:
        """Call ``listener`` with the new settings after each change (and after `load`)."""
        self._listeners.append(listener)

    async def load(self) -> bool:
        """Read the values set in the chat; True if they differ from those in force. A value
        that no longer validates (the environment changed under it) is ignored with a warning
        rather than stopping the bot. Cheap enough to call now and then, so a change made
        through another process arrives here too."""
        async with self._sessions() as session:
            stored = await SettingRepository(session).all()
        chat: dict[str, str] = {}
        for name in RUNTIME:
            if name not in stored:
                continue
            try:
                self._validated({**chat, name: stored[name]})
            except SettingError as error:
                log.warning("Ignoring %s set in the chat: %s", name, error)
                continue
            chat[name] = stored[name]
        if self._loaded and chat == self._chat:
            return False
        self._loaded = True
        self._adopt(chat)
        return True

    # -- reading -----------------------------------------------------------------------------

    def views(self) -> list[SettingView]:
        return [self.view(name) for name in RUNTIME]

    def view(self, name: str) -> SettingView:
        self._check_name(name)
        if name in self._chat:
            source = Source.CHAT
        elif name in self.base.model_fields_set:
            source = Source.ENVIRONMENT
        else:
            source = Source.DEFAULT
        description = Settings.model_fields[name].description or ""
        return SettingView(
            name=name,
            value=self._shown(name, getattr(self.current, name)),
            default=self._shown(name, _default_of(name)),
            source=source,
            description=description,
        )

    def fallback(self, name: str) -> tuple[str, Source]:
        """What /reset of ``name`` would bring back, and from where."""
        self._check_name(name)
        if name in self.base.model_fields_set:
            return self._shown(name, getattr(self.base, name)), Source.ENVIRONMENT
        return self._shown(name, _default_of(name)), Source.DEFAULT

    # -- changing ----------------------------------------------------------------------------

    async def set(self, name: str, raw: str, *, by: int, by_name: str | None) -> Change:
        """Validate and store ``raw`` for ``name``; raises SettingError naming what is allowed."""
        self._check_name(name)
        value = raw.strip()
        if value.lower() in _EMPTY_WORDS:
            if name not in _EMPTY_MEANS:
                raise SettingError(f"{name} cannot be empty")
            value = ""
        chat = {**self._chat, name: value}
        validated = self._validated(chat)
        old = self.view(name)
        # Stored as the model normalised it (e.g. " 2h " → "2h", mon-fri spelled one way).
        stored = "" if value == "" else format_value(getattr(validated, name))
        chat[name] = stored
        if self._chat.get(name) == stored:  # the same again: nothing to store or audit
            return Change(old, old.value, changed=False)
        return await self._commit(name, chat, validated, old, by=by, by_name=by_name)

    async def reset(self, name: str, *, by: int, by_name: str | None) -> Change:
        """Drop the chat's value of ``name``: the environment's or the default applies."""
        self._check_name(name)
        old = self.view(name)
        if name not in self._chat:
            return Change(old, old.value, changed=False)
        chat = {key: value for key, value in self._chat.items() if key != name}
        return await self._commit(name, chat, self._validated(chat), old, by=by, by_name=by_name)

    async def _commit(
        self,
        name: str,
        chat: dict[str, str],
        validated: Settings,
        old: SettingView,
        *,
        by: int,
        by_name: str | None,
    ) -> Change:
        """Store (or, absent from ``chat``, remove) the chat's value of ``name`` with its audit
        entry in one transaction, then put ``validated`` in force."""
        new_value = self._shown(name, getattr(validated, name))
        now = self._clock.now()
        async with self._sessions.begin() as session:
            settings = SettingRepository(session)
            if name in chat:
                await settings.put(name, chat[name], updated_by=by, now=now)
            else:
                await settings.remove(name)
            await AuditRepository(session).record(
                at=now,
                action=SET_ACTION if name in chat else RESET_ACTION,
                actor_id=by,
                actor_name=by_name,
                target=name,
                old=old.value,
                new=new_value,
            )
        self._adopt(chat, validated)
        return Change(
            self.view(name), old.value, changed=old.value != new_value or name not in chat
        )

    # -- inside ------------------------------------------------------------------------------

    def _validated(self, chat: dict[str, str]) -> Settings:
        values = {field: getattr(self.base, field) for field in Settings.model_fields}
        values.update(chat)
        try:
            # model_validate, not Settings(...): the environment was read once, at start-up.
            return Settings.model_validate(values)
        except ValidationError as error:
            raise SettingError(_describe(error)) from None

    def _adopt(self, chat: dict[str, str], validated: Settings | None = None) -> None:
        self.current = validated if validated is not None else self._validated(chat)
        self._chat = chat
        for listener in self._listeners:
            listener(self.current)

    def _shown(self, name: str, value: Any) -> str:
        if value is None or value == "" or (isinstance(value, QuietHours) and not value.enabled):
            if name == "low_score":
                scale = self.current.survey_scale
                return f"{3 if scale == 'csat' else 6} (the {scale} default)"
            return f"none ({_EMPTY_MEANS[name]})" if name in _EMPTY_MEANS else "none"
        return format_value(value)

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in RUNTIME:
            raise SettingError(f"There is no setting {name!r} that can be changed in the chat.")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = f"must be one of {item.get('ctx', {}).get('expected', '')}"
        elif item["type"] in {"less_than_equal", "greater_than_equal", "int_parsing"}:
            field = Settings.model_fields.get(str(item["loc"][0])) if item["loc"] else None
            message = f"must be a whole number{_range(field)}"
        if not item["loc"]:  # a rule across settings names them itself, as environment names
            message = _ENV_NAME.sub(
                lambda m: m[0].lower() if m[0].lower() in RUNTIME else m[0], message
            )
        lines.append(f"{item['loc'][0]}: {message}" if item["loc"] else message)
    return "\n".join(lines)


_ENV_NAME = re.compile(r"\b[A-Z][A-Z_]+[A-Z]\b")


def _range(field: Any) -> str:
    if field is None:
        return ""
    low = high = None
    for rule in field.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    return ""
