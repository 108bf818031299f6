"""All configuration in one place: environment variables and `.env`, each with a working default.

Every field here appears in `.env.example` with a one-line comment (a test keeps the two in step).
A wrong value stops start-up with a message that names the variable and says what is allowed:
see `describe_errors`.
"""

from __future__ import annotations

import logging
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.sla import (
    WorkingTime,
    format_working_days,
    format_working_hours,
    parse_sla_resolution,
    parse_working_days,
    parse_working_hours,
)
from bot.values import (
    Duration,
    QuietHours,
    WeeklySlot,
    parse_bool,
    parse_duration,
    parse_quiet_hours,
    parse_time_zone,
    parse_weekly_slot,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/hearback.db"

# Drivers we run on. Plain `postgresql://` is what hosting providers hand out, so it is accepted
# and pointed at asyncpg rather than refused.
_DATABASE_SCHEMES = {
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


# Telegram's rule for setWebhook's secret_token.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _reserved_path(path: str) -> bool:
    """Paths the bot's HTTP server already answers, which the webhook must not shadow."""
    path = "/" + path.strip("/")
    return path in {"/healthz", "/metrics", "/api"} or path.startswith("/api/")


def _split_list(value: object) -> object:
    """Lists come from the environment as `1,2 3`: commas or spaces, blanks ignored."""
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    bot_token: SecretStr | None = Field(
        default=None,
        description="Token from @BotFather; empty runs the offline sandbox on the emulator",
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db",
    )
    telegram_api_url: str = Field(
        default="",
        description="Base URL of a Bot API server other than Telegram's; empty means Telegram",
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Telegram user ids of the first admins, comma-separated",
    )
    business_name: str = Field(
        default="our team",
        min_length=1,
        max_length=64,
        description="How the bot names the business to customers",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone used when a customer's own is unknown",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="How much the bot logs",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys allowed to call the HTTP API, comma-separated",
    )
    api_max_body: int = Field(
        default=1_048_576,
        ge=16_384,
        le=67_108_864,
        description="Largest HTTP API request body in bytes (413 above); 1 MiB fits 1000 visits",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to")
    http_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the HTTP server (0 picks a free one)"
    )
    emulator_port: int = Field(
        default=8082,
        ge=0,
        le=65535,
        description="Port of the Bot API emulator in sandbox mode (0 picks a free one)",
    )
    sandbox_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port of the sandbox page (customer, staff, admin) when BOT_TOKEN is empty",
    )
    shutdown_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds to let in-flight updates finish on SIGINT/SIGTERM",
    )
    survey_scale: Literal["csat", "nps"] = Field(
        default="csat",
        description="csat: score buttons 1-5; nps: 0-10 (would you recommend us?)",
    )
    survey_delay: timedelta = Field(
        default=Duration(hours=2),
        description="How long after a visit its survey is sent, e.g. 2h or 90m",
    )
    quiet_hours: Annotated[QuietHours, NoDecode] = Field(
        default=QuietHours(time(21, 0), time(9, 0)),
        description="Customer-local hours with no surveys, e.g. 21:00-09:00; empty for none",
    )
    survey_cooldown: timedelta = Field(
        default=Duration(days=30),
        description="At most one survey per customer within this time; 0 for no limit",
    )
    survey_expiry: timedelta = Field(
        default=Duration(hours=72),
        description="An unanswered survey closes this long after it was sent",
    )
    survey_reminder: timedelta = Field(
        default=Duration(hours=24),
        description="One reminder this long after an unanswered survey; 0 for none",
    )
    low_score: int | None = Field(
        default=None,
        ge=0,
        le=9,
        description="Highest score counted as low (apology, reasons, a case); empty: 3 csat, 6 nps",
    )
    review_url: str = Field(
        default="",
        description="Public review page offered after a high score (https://…); empty for none",
    )
    sla_first_response: timedelta = Field(
        default=Duration(hours=24),
        description="Time for staff to first answer an unhappy customer",
    )
    sla_contact_requested: timedelta = Field(
        default=Duration(hours=1),
        description="Time for staff to first answer a customer who asked to be contacted",
    )
    sla_resolution: timedelta = Field(
        default=Duration(days=3),
        description="Time for staff to resolve a case: days are working days, hours working hours",
    )
    working_days: str = Field(
        default="mon-fri", description="Working days for resolution deadlines, e.g. mon-fri"
    )
    working_hours: str = Field(
        default="09:00-18:00", description="Working hours of a working day, e.g. 09:00-18:00"
    )
    followup_delay: timedelta = Field(
        default=Duration(hours=24),
        description="Ask the customer this long after Resolve whether it was put right",
    )
    escalation_chat: int | None = Field(
        default=None,
        description="Chat id that hears about missed deadlines; empty: the admins, privately",
    )
    default_language: Literal["en", "zh_Hans"] = Field(
        default="en",
        description="Language for customers whose Telegram language has no translation",
    )
    paid_broadcast: bool = Field(
        default=False,
        description="Let surveys use Telegram's paid broadcast: up to 1000/s, 0.1 Star each",
    )
    send_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Tries per message on Telegram server errors and timeouts (1: no retry)",
    )
    worker_concurrency: int = Field(
        default=40,
        ge=1,
        le=1000,
        description="Timed jobs (survey sends, reminders) running at once; ~300 for paid broadcast",
    )
    worker_batch: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Most jobs the scheduler claims from the queue in one go",
    )
    worker_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds the scheduler waits between looks at the queue when nothing is due",
    )
    job_lease: timedelta = Field(
        default=Duration(minutes=1),
        description="How long a claimed job is held; after a crash it runs again once this passes",
    )
    job_attempts: int = Field(
        default=6,
        ge=1,
        le=50,
        description="Tries per timed job before it fails for good (a survey then fails with why)",
    )
    job_retry_delay: timedelta = Field(
        default=Duration(minutes=1),
        description="Pause before retrying a failed job; doubles each time, at most 1h",
    )
    retrain_every: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Retrain the learned sentiment and reason models after this many new labels",
    )
    weekly_digest: Annotated[WeeklySlot | None, NoDecode] = Field(
        default=None,
        description="When each staff chat gets last week's figures, e.g. mon 09:00; off for none",
    )
    stats_rollup_every: timedelta = Field(
        default=Duration(minutes=10),
        description="How often /stats's daily roll-up recounts the days that changed (at least "
        "1m); /stats is exact either way, this only decides how much it can take from it",
    )
    link_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Key signing deep links and QR codes; empty: one made and kept in the database",
    )
    # -- production at scale (webhook, dedupe, logs) -----------------------------------------------
    webhook_url: str = Field(
        default="",
        description="Public https:// URL Telegram posts updates to with `run --webhook`; its path "
        "is served",
    )
    webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Secret Telegram sends with each webhook post; empty: derived from BOT_TOKEN",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: lines for people; json: one JSON object per line for log collectors",
    )
    dedupe_window: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="Most recent update ids remembered to drop updates Telegram delivers twice",
    )
    redis_url: str = Field(
        default="",
        description="redis://host:6379/0 shared by several workers to handle each update once "
        "and keep to one send budget; empty: each process on its own",
    )

    @field_validator("bot_token", mode="before")
    @classmethod
    def _blank_token_means_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        bot_id, sep, secret = value.get_secret_value().strip().partition(":")
        if not (sep and bot_id.isdigit() and secret):
            raise ValueError("must look like 123456789:AA… as given by @BotFather")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in _DATABASE_SCHEMES:
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {scheme or value!r})"
            )
        return f"{_DATABASE_SCHEMES[scheme]}://{rest}"

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, or empty for Telegram")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: object) -> object:
        items = _split_list(value)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, str) and not item.lstrip("-").isdigit():
                    raise ValueError(f"must be numeric Telegram user ids (got {item!r})")
        return items

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: object) -> object:
        items = _split_list(value)
        if isinstance(items, list):
            for item in items:
                secret = item.get_secret_value() if isinstance(item, SecretStr) else str(item)
                # A short key is guessable; refusing it here is kinder than a breach later.
                if len(secret) < 16:
                    raise ValueError("each key must be at least 16 characters long")
        return items

    @field_validator("link_secret")
    @classmethod
    def _link_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        # Anyone who learns or guesses this key can print QR codes for any location.
        if secret and len(secret) < 16:
            raise ValueError("must be at least 16 characters long, or empty for a generated one")
        return SecretStr(secret)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an https:// URL, e.g. https://bot.example.com/telegram")
        if parts.query or parts.fragment:
            raise ValueError("must not have a ?query or #fragment")
        if parts.path.rstrip("/") == "":
            # The path is what the bot serves, beside /healthz, /metrics and /api/.
            raise ValueError("must have a path, e.g. https://bot.example.com/telegram")
        if _reserved_path(parts.path):
            raise ValueError(f"must not use the path {parts.path}: the bot serves it already")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if value and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis://, rediss:// or unix://, or be empty")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        # Telegram's own rule for secret_token; it refuses anything else at setWebhook.
        if secret and not _WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return SecretStr(secret)

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _webhook_https(self) -> Settings:
        # Telegram posts to https only; a Bot API server of one's own (TELEGRAM_API_URL) may
        # post to plain http, e.g. on the same host.
        if (
            self.webhook_url.startswith("http://")
            and not self.telegram_api_url
            and self.bot_token is not None
        ):
            raise ValueError(
                "WEBHOOK_URL: must be https:// (Telegram posts to https only; plain http works "
                "only with a Bot API server of your own in TELEGRAM_API_URL)"
            )
        return self

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, value: object) -> object:
        return parse_time_zone(value)

    @field_validator(
        "survey_delay", "survey_cooldown", "survey_expiry", "survey_reminder", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("sla_resolution", mode="before")
    @classmethod
    def _sla_resolution(cls, value: object) -> object:
        return parse_sla_resolution(value)

    @field_validator("working_days", mode="before")
    @classmethod
    def _working_days(cls, value: object) -> object:
        return format_working_days(parse_working_days(value))

    @field_validator("working_hours", mode="before")
    @classmethod
    def _working_hours(cls, value: object) -> object:
        return format_working_hours(*parse_working_hours(value))

    @field_validator("followup_delay", mode="before")
    @classmethod
    def _followup_delay(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("escalation_chat", mode="before")
    @classmethod
    def _escalation_chat(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if not value.lstrip("-").isdigit():
                raise ValueError(
                    f"must be a numeric Telegram chat id, e.g. -1001234567890 (got {value!r})"
                )
        return value

    @field_validator("sla_first_response", "sla_contact_requested", mode="before")
    @classmethod
    def _sla_duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("sla_first_response", "sla_contact_requested")
    @classmethod
    def _sla_positive(cls, value: timedelta) -> timedelta:
        if not value:
            raise ValueError("must be longer than 0, e.g. 24h")
        return value

    @field_validator("low_score", mode="before")
    @classmethod
    def _blank_means_default(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _low_score_fits_scale(self) -> Settings:
        # The top scores must stay high: on 1–5 at most 4 is "low", on 0–10 at most 9.
        top = 4 if self.survey_scale == "csat" else 9
        bottom = 1 if self.survey_scale == "csat" else 0
        if self.low_score is not None and not bottom <= self.low_score <= top:
            raise ValueError(
                f"LOW_SCORE must be {bottom}-{top} with SURVEY_SCALE={self.survey_scale}"
            )
        return self

    @field_validator("review_url")
    @classmethod
    def _review_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, or empty for none")
        return value

    @field_validator("job_lease", "job_retry_delay", mode="before")
    @classmethod
    def _job_duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("stats_rollup_every", mode="before")
    @classmethod
    def _rollup_every(cls, value: object) -> object:
        every = parse_duration(value)
        # Every counted write logs its hour until a refresh takes it: never refreshing would
        # let that log grow without end.
        if every < timedelta(minutes=1):
            raise ValueError("must be at least 1m, e.g. 10m")
        return every

    @field_validator("job_lease")
    @classmethod
    def _lease_long_enough(cls, value: timedelta) -> timedelta:
        # Renewed every third of it while a job runs: below a few seconds that is all it does.
        if value < timedelta(seconds=3):
            raise ValueError("must be at least 3s, e.g. 1m")
        return value

    @field_validator("survey_expiry")
    @classmethod
    def _expiry_positive(cls, value: timedelta) -> timedelta:
        if not value:
            raise ValueError("must be longer than 0, e.g. 72h")
        return value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: object) -> object:
        return parse_quiet_hours(value)

    @field_validator("weekly_digest", mode="before")
    @classmethod
    def _weekly_digest(cls, value: object) -> object:
        return parse_weekly_slot(value)

    @field_validator("paid_broadcast", mode="before")
    @classmethod
    def _yes_or_no(cls, value: object) -> object:
        return parse_bool(value)

    @field_validator("survey_scale", mode="before")
    @classmethod
    def _scale_lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def low_score_limit(self) -> int:
        """LOW_SCORE, or its default for the scale."""
        if self.low_score is not None:
            return self.low_score
        return 3 if self.survey_scale == "csat" else 6

    @property
    def working_time(self) -> WorkingTime:
        """WORKING_DAYS and WORKING_HOURS in TIMEZONE, for resolution deadlines."""
        return WorkingTime.parse(self.working_days, self.working_hours, self.zone)

    @property
    def sandbox(self) -> bool:
        """No token: the bot runs against the embedded emulator instead of Telegram."""
        return self.bot_token is None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when running on SQLite (None for in-memory or PostgreSQL)."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        path = self.database_url.removeprefix(prefix).split("?", 1)[0]
        return None if path in {"", ":memory:"} else Path(path)

    @property
    def webhook_path(self) -> str:
        """The path of WEBHOOK_URL, which the bot's HTTP server answers webhook posts on."""
        return urlsplit(self.webhook_url).path if self.webhook_url else ""

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


class ConfigurationError(Exception):
    """Raised with a message a shop owner can act on; the CLI prints it and exits."""


def env_name(field: str) -> str:
    return field.upper()


def describe_errors(error: ValidationError) -> str:
    """One line per wrong variable: its name, what was wrong, what is allowed."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            allowed = item.get("ctx", {}).get("expected", "")
            message = f"must be one of {allowed}"
        if not item["loc"]:  # a rule across variables names them itself
            lines.append(message)
            continue
        lines.append(f"{env_name(str(item['loc'][0]))}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read settings; on a wrong value raise ConfigurationError naming every wrong variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(
            "Hearback cannot start, the configuration has errors:\n" + describe_errors(error)
        ) from None
