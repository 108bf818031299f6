"""What a visit from outside must look like: one parser for the HTTP API and the CSV import.

`parse_visit` takes the visit as a mapping in the API's JSON shape (the CSV importer turns each
row into that shape first) and returns either a `VisitIn` for `VisitService.record`, or one
`FieldError` per wrong field, each naming the field by its path in the request
(``customer.telegram_user_id``) and saying what is allowed. Checking every field before
answering, rather than stopping at the first, lets the business fix its export in one go.

The rules, which the OpenAPI document in `bot.api` is built from (the limits are the constants
below, so the two cannot drift apart):

- strings are trimmed; an empty optional string counts as absent; control characters and lone
  surrogates are refused (PostgreSQL cannot store a NUL byte, and neither can be shown);
- ``visit_id``: 1-128 characters, the business's own id and the idempotency key;
- ``customer.ref``: 1-128 characters, the business's own id of the customer;
- ``customer.telegram_user_id``: optional, a positive integer of at most 52 bits (Telegram's
  own bound on user ids); a JSON number, never a string or a boolean;
- ``customer.name``: optional, at most 256 characters;
- ``customer.language``: optional IETF-ish tag such as ``en`` or ``pt-br``, stored lower case;
- ``customer.timezone``: optional, a real IANA zone such as ``Europe/Berlin``;
- ``location``, ``staff``, ``service``: optional, at most 128 characters each;
- ``occurred_at``: ISO-8601 date and time WITH a time zone (``Z`` or an offset); a naive time
  is refused because it cannot say which instant it means, and so is a time more than
  `MAX_AHEAD` after now (a typo or a wrong clock, and a survey that would never come);
- unknown fields are refused, so a misspelt optional field (``locaton``) is reported instead of
  silently dropped. The CSV importer only passes the columns it knows, so its extra columns
  are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from bot.values import parse_time_zone
from bot.visits import CustomerIn, VisitIn, VisitView
from storage.models import VisitSource

__all__ = [
    "CONFLICT_MESSAGE",
    "CUSTOMER_FIELDS",
    "LANGUAGE_PATTERN",
    "MAX_AHEAD",
    "MAX_LENGTH",
    "TELEGRAM_USER_ID_MAX",
    "VISIT_FIELDS",
    "FieldError",
    "VisitRecorder",
    "parse_visit",
    "record_batch",
]

#: How far after now a visit may claim to have happened: clocks of two systems disagree a
#: little, and a visit reported in its own time zone with the wrong offset is hours off.
MAX_AHEAD = timedelta(days=1)

#: Longest value of each string field, in characters (the database columns are this wide).
MAX_LENGTH: dict[str, int] = {
    "visit_id": 128,
    "customer.ref": 128,
    "customer.name": 256,
    "customer.language": 16,
    "customer.timezone": 64,
    "location": 128,
    "staff": 128,
    "service": 128,
    "occurred_at": 64,
}

#: Telegram user ids "have at most 52 significant bits".
TELEGRAM_USER_ID_MAX = 2**52 - 1

#: A primary language subtag of 2-3 letters, then subtags of 1-8 letters or digits:
#: en, pt-br, zh-hans, sr-latn-rs. Not the whole of BCP 47, but every tag Telegram sends.
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
_LANGUAGE = re.compile(LANGUAGE_PATTERN)

VISIT_FIELDS = ("visit_id", "customer", "location", "staff", "service", "occurred_at")
CUSTOMER_FIELDS = ("ref", "telegram_user_id", "name", "language", "timezone")

# C0 and C1 control characters (tab and newline included) and UTF-16 surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_TIME_EXAMPLE = "2026-01-05T14:30:00+01:00 or 2026-01-05T13:30:00Z"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field: its path in the request (``customer.ref``) and what is allowed."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def parse_visit(
    data: Mapping[str, object], source: VisitSource, now: datetime
) -> VisitIn | list[FieldError]:
    """The visit in ``data`` (the API's JSON shape), or every reason it cannot be recorded.

    ``now`` (from the injected clock) bounds ``occurred_at``; ``source`` says which way in it
    came. Paths in the errors are relative to the visit: ``customer.ref``, not ``visits[3]…``.
    """
    errors: list[FieldError] = []
    _refuse_unknown(data, VISIT_FIELDS, "", errors)

    visit_id = _text(data, "visit_id", "", errors, required=True)
    customer: CustomerIn | None = None
    raw_customer = data.get("customer")
    if raw_customer is None:
        errors.append(FieldError("customer", "is required: an object with at least a ref"))
    elif not isinstance(raw_customer, Mapping):
        errors.append(
            FieldError(
                "customer", f'must be an object such as {{"ref": "c-1"}} ({_got(raw_customer)})'
            )
        )
    else:
        customer = _customer(raw_customer, errors)
    location = _text(data, "location", "", errors)
    staff = _text(data, "staff", "", errors)
    service = _text(data, "service", "", errors)
    occurred_at = _occurred_at(data.get("occurred_at"), now, errors)

    if errors or customer is None or visit_id is None or occurred_at is None:
        return errors
    return VisitIn(
        visit_id=visit_id,
        customer=customer,
        occurred_at=occurred_at,
        source=source,
        location=location,
        staff=staff,
        service=service,
    )


class VisitRecorder(Protocol):
    """What records visits: `bot.visits.VisitService` (the protocol lets the importer's
    streaming be measured on its own, without a database)."""

    async def record(self, visit: VisitIn) -> VisitView: ...

    async def record_many(self, visits: Sequence[VisitIn]) -> list[VisitView]: ...


async def record_batch(visits: VisitRecorder, batch: list[VisitIn]) -> list[VisitView | None]:
    """Record ``batch`` in one transaction; None in place of each visit that cannot be recorded.

    A visit whose customer ref and Telegram id already belong to two different customers
    cannot be recorded (the database refuses it). `VisitService.record_many` then falls back
    to one transaction per visit, but raises at the first such visit, having recorded those
    before it. So the batch is tried again here one visit at a time, keeping each failure to
    its own visit. (The visits that fallback recorded before it raised come back as recorded
    before, created=False, although this call recorded them: rare, and harmless for
    idempotency.)
    """
    if not batch:
        return []
    try:
        return list(await visits.record_many(batch))
    except IntegrityError:
        outcomes: list[VisitView | None] = []
        for visit in batch:
            try:
                outcomes.append(await visits.record(visit))
            except IntegrityError:
                outcomes.append(None)
        return outcomes


#: Why `record_batch` answers None for a visit, for the API's 409 and the importer's reason.
CONFLICT_MESSAGE = (
    "conflicts with the customers already recorded: this ref and this telegram_user_id "
    "belong to two different customers"
)


def _customer(data: Mapping[str, object], errors: list[FieldError]) -> CustomerIn | None:
    before = len(errors)
    _refuse_unknown(data, CUSTOMER_FIELDS, "customer.", errors)
    ref = _text(data, "ref", "customer.", errors, required=True)
    telegram_user_id = _telegram_user_id(data.get("telegram_user_id"), errors)
    name = _text(data, "name", "customer.", errors)
    language = _text(data, "language", "customer.", errors)
    if language is not None:
        if _LANGUAGE.fullmatch(language):
            language = language.lower()
        else:
            errors.append(
                FieldError(
                    "customer.language",
                    f"must be a language tag such as en, de or pt-br ({_got(language)})",
                )
            )
    timezone = _text(data, "timezone", "customer.", errors)
    if timezone is not None:
        try:
            timezone = parse_time_zone(timezone)
        except ValueError as error:
            errors.append(FieldError("customer.timezone", str(error)))
    if len(errors) > before:
        return None
    return CustomerIn(
        ref=ref,
        telegram_user_id=telegram_user_id,
        name=name,
        language=language,
        timezone=timezone,
    )


def _refuse_unknown(
    data: Mapping[str, object], known: tuple[str, ...], prefix: str, errors: list[FieldError]
) -> None:
    for key in data:
        if key not in known:
            errors.append(
                FieldError(f"{prefix}{key}", f"is not a known field; allowed: {', '.join(known)}")
            )


def check_customer_ref(value: str) -> str | list[FieldError]:
    """A customer ref given on its own (e.g. in a URL), held to the same rules as in a visit."""
    errors: list[FieldError] = []
    ref = _text({"ref": value}, "ref", "customer.", errors, required=True)
    return errors if errors or ref is None else ref


def _text(
    data: Mapping[str, object],
    name: str,
    prefix: str,
    errors: list[FieldError],
    *,
    required: bool = False,
) -> str | None:
    """A trimmed string field within its length limit; None when absent (or empty and
    optional)."""
    path = f"{prefix}{name}"
    value = data.get(name)
    if value is None:
        if required:
            errors.append(FieldError(path, "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(path, f"must be a string ({_got(value)})"))
        return None
    value = value.strip()
    limit = MAX_LENGTH[path]
    if not value:
        if required:
            errors.append(FieldError(path, f"must be 1-{limit} characters, not empty"))
        return None
    if len(value) > limit:
        errors.append(FieldError(path, f"must be at most {limit} characters (got {len(value)})"))
        return None
    if _UNPRINTABLE.search(value):
        errors.append(
            FieldError(path, "must not contain control characters such as tabs or line breaks")
        )
        return None
    return value


def _telegram_user_id(value: object, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    # bool is an int in Python, but `true` is no user id.
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= TELEGRAM_USER_ID_MAX:
        return value
    errors.append(
        FieldError(
            "customer.telegram_user_id",
            f"must be a positive integer up to {TELEGRAM_USER_ID_MAX} ({_got(value)})",
        )
    )
    return None


def _occurred_at(value: object, now: datetime, errors: list[FieldError]) -> datetime | None:
    path = "occurred_at"
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(FieldError(path, f"is required: a date and time such as {_TIME_EXAMPLE}"))
        return None
    if not isinstance(value, str) or len(value) > MAX_LENGTH[path]:
        errors.append(
            FieldError(path, f"must be an ISO-8601 string such as {_TIME_EXAMPLE} ({_got(value)})")
        )
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        errors.append(
            FieldError(
                path,
                f"must be an ISO-8601 date and time with a time zone, such as {_TIME_EXAMPLE} "
                f"({_got(value)})",
            )
        )
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.append(
            FieldError(
                path,
                f"needs a time zone: add Z for UTC or an offset such as +01:00 ({_got(value)})",
            )
        )
        return None
    moment = moment.astimezone(UTC)
    if moment > now + MAX_AHEAD:
        errors.append(
            FieldError(
                path,
                f"must not be more than {_hours(MAX_AHEAD)} in the future "
                f"({_got(value)}; now is {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})",
            )
        )
        return None
    return moment


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return "1 day" if hours == 24 else f"{hours} hours"


def _got(value: object) -> str:
    """What was sent, short enough to echo back: the type for non-strings, else the text."""
    if isinstance(value, bool):
        return f"got {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"got {shown!r}"
    if isinstance(value, int):
        return f"got {value}" if abs(value) < 10**20 else "got a very large number"
    if isinstance(value, float):
        return f"got {value!r}"
    if isinstance(value, Mapping):
        return "got an object"
    if isinstance(value, list):
        return "got a list"
    return f"got {type(value).__name__}"
