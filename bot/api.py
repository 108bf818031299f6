"""The HTTP API for the business's own systems: visits in, one at a time or in batches.

Routes (on the bot's own aiohttp server, next to /healthz):

- ``POST /api/v1/visits``: one visit; 201 when recorded, 200 when that visit_id was recorded
  before (the first recording wins and is what the body shows: idempotent on visit_id).
- ``POST /api/v1/visits:batch``: ``{"visits": [...]}`` with 1-1000 visits, recorded in one
  transaction; 200 with a status per item (201, 200, 409 or 422), so good items go in even
  when some are wrong.
- ``GET /api/v1/visits/{visit_id}``: the visit and its survey's state; 404 when unknown.
- ``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, built from the same limits the
  validation uses; the only API path that needs no key.

Every call under /api/ needs ``Authorization: Bearer <key>`` with a key from API_KEYS; with no
keys configured the API answers 401 to everything and says to set API_KEYS. Keys are compared
in constant time: both sides are hashed to the same length first, then compared with
`hmac.compare_digest` against every configured key without stopping at a match, so neither the
length nor the position of a key leaks through timing.

Each failure is JSON ``{"error": "...", "details": [{"field": ..., "message": ...}]}`` and is
checked in this order: 401 (key), 415 (not application/json), 413 (body over API_MAX_BODY, or
over 64 KiB for a single visit), 400 (not JSON), 422 (wrong fields, each named). A failure
inside the bot is a 500 with the same shape; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.links import DeepLink
from bot.settings import Settings
from bot.visit_input import (
    CONFLICT_MESSAGE,
    LANGUAGE_PATTERN,
    MAX_AHEAD,
    MAX_LENGTH,
    TELEGRAM_USER_ID_MAX,
    FieldError,
    check_customer_ref,
    parse_visit,
    record_batch,
)
from bot.visits import VisitIn, VisitService, VisitView
from storage.models import SurveyState, VisitSource

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
VISITS_PATH = f"{API_PREFIX}/visits"
BATCH_PATH = f"{API_PREFIX}/visits:batch"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
CUSTOMER_LINK_PATH = f"{API_PREFIX}/customers/{{ref}}/link"
#: Paths under /api/ that answer without a key: the API's description hides nothing.
PUBLIC_PATHS = frozenset({OPENAPI_PATH})

MAX_BATCH = 1000
#: One visit is well under 2 KiB even at every length limit; more is not a visit.
SINGLE_BODY_LIMIT = 64 * 1024

_BEARER_CHALLENGE = 'Bearer realm="hearback"'
_JSON_TYPE = "application/json"


class ApiError(Exception):
    """A failure answered as JSON ``{"error", "details"}`` with its HTTP status."""

    def __init__(
        self,
        status: int,
        error: str,
        details: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = list(details)
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.error, self.details, self.headers)


def error_response(
    status: int,
    error: str,
    details: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": error, "details": [detail.as_dict() for detail in details]},
        status=status,
        headers=headers,
    )


def key_digest(key: str) -> bytes:
    """Keys are compared as SHA-256 digests: equal length whatever was sent."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def key_matches(offered: str, digests: Sequence[bytes]) -> bool:
    """Whether ``offered`` is one of the keys, in time that depends on neither the key sent
    nor which key matched: every digest is compared, even after a match."""
    wanted = key_digest(offered)
    found = False
    for digest in digests:
        found |= hmac.compare_digest(wanted, digest)
    return found


PersonalLinkMaker = Callable[[str], Awaitable[DeepLink]]


@dataclass(frozen=True, slots=True)
class Api:
    """What the API's handlers share: the one way in for visits, the clock, the keys."""

    visits: VisitService
    clock: Clock
    key_digests: tuple[bytes, ...]
    max_body: int
    # Makes a customer's personal deep link (bot.links); None where no bot is at hand.
    personal_link: PersonalLinkMaker | None = None

    @classmethod
    def create(
        cls,
        visits: VisitService,
        clock: Clock,
        keys: Sequence[SecretStr],
        max_body: int,
        personal_link: PersonalLinkMaker | None = None,
    ) -> Api:
        digests = tuple(key_digest(key.get_secret_value()) for key in keys)
        return cls(
            visits=visits,
            clock=clock,
            key_digests=digests,
            max_body=max_body,
            personal_link=personal_link,
        )

    def authorise(self, request: web.Request) -> None:
        if not self.key_digests:
            raise ApiError(
                401,
                "The HTTP API is switched off: set API_KEYS to one or more keys "
                "(16 characters or more each) and restart the bot",
                headers={"WWW-Authenticate": _BEARER_CHALLENGE},
            )
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "An API key is required: send the header 'Authorization: Bearer <key>' "
                "with a key from API_KEYS",
                headers={"WWW-Authenticate": _BEARER_CHALLENGE},
            )
        if not key_matches(token, self.key_digests):
            raise ApiError(
                401,
                "The API key is wrong: it is not one of API_KEYS",
                headers={"WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="invalid_token"'},
            )


API_KEY = web.AppKey("api", Api)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_api(
    app: web.Application,
    settings: Settings,
    visits: VisitService,
    clock: Clock,
    personal_link: PersonalLinkMaker | None = None,
) -> None:
    """Add the API's routes and its middleware (keys, JSON errors) to the bot's HTTP app.

    Routes added later under /api/ get the same key check and JSON errors for free.
    """
    app[API_KEY] = Api.create(
        visits, clock, settings.api_keys, settings.api_max_body, personal_link
    )
    app.middlewares.append(api_middleware)
    app.router.add_post(VISITS_PATH, post_visit)
    app.router.add_post(BATCH_PATH, post_batch)
    app.router.add_get(f"{VISITS_PATH}/{{visit_id}}", get_visit)
    app.router.add_get(OPENAPI_PATH, get_openapi)
    if personal_link is not None:
        app.router.add_get(CUSTOMER_LINK_PATH, get_customer_link)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/: the key first (even for paths that do not exist, so an unauthorised
    caller learns nothing), then every failure as JSON, never a traceback."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        if request.path not in PUBLIC_PATHS:
            request.app[API_KEY].authorise(request)
        return await handler(request)
    except ApiError as error:
        if error.status == 401:
            log.info("API call %s %s refused: %s", request.method, request.path, error.error)
        return error.response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(error.status, _http_error_message(error), headers=headers)
    except Exception:  # the client gets JSON, the log gets the traceback
        log.exception("API call %s %s failed", request.method, request.path)
        return error_response(500, "Internal error in the bot; the details are in its log")


def _http_error_message(error: web.HTTPException) -> str:
    if error.status == 404:
        return "No such API path; see /api/v1/openapi.json"
    if error.status == 405:
        return f"Method not allowed here; allowed: {error.headers.get('Allow', '')}"
    return error.reason


# -------------------------------------------------------------------------------- handlers


async def post_visit(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    body = await read_json(request, min(SINGLE_BODY_LIMIT, api.max_body))
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "The body must be one visit as a JSON object (for many, use /api/v1/visits:batch)",
            [FieldError("body", f"must be a JSON object (got {_json_type(body)})")],
        )
    parsed = parse_visit(body, VisitSource.API, api.clock.now())
    if isinstance(parsed, list):
        raise ApiError(422, "The visit has wrong fields; see details", parsed)
    try:
        view = await api.visits.record(parsed)
    except IntegrityError:
        raise ApiError(
            409, "The visit cannot be recorded", [FieldError("customer", CONFLICT_MESSAGE)]
        ) from None
    return web.json_response(
        visit_json(view),
        status=201 if view.created else 200,
        headers={"Location": visit_location(view.visit_id)},
    )


async def post_batch(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    items = _batch_items(await read_json(request, api.max_body))
    now = api.clock.now()
    parsed: list[VisitIn | list[FieldError]] = [
        parse_visit(item, VisitSource.API, now)
        if isinstance(item, dict)
        else [FieldError("", f"must be a JSON object (got {_json_type(item)})")]
        for item in items
    ]
    valid = [(index, visit) for index, visit in enumerate(parsed) if isinstance(visit, VisitIn)]
    recorded = await record_batch(api.visits, [visit for _, visit in valid])
    outcomes: dict[int, VisitView | None] = {
        index: view for (index, _), view in zip(valid, recorded, strict=True)
    }

    results: list[dict[str, Any]] = []
    for index, (item, outcome) in enumerate(zip(items, parsed, strict=True)):
        if isinstance(outcome, list):
            details = [_in_batch(index, error) for error in outcome]
            results.append(_item_error(index, item, 422, "The visit has wrong fields", details))
            continue
        view = outcomes[index]
        if view is None:
            details = [FieldError(f"visits[{index}].customer", CONFLICT_MESSAGE)]
            results.append(_item_error(index, item, 409, "The visit cannot be recorded", details))
            continue
        status = 201 if view.created else 200
        results.append({"index": index, "status": status, "visit": visit_json(view)})
    return web.json_response(
        {
            "created": sum(result["status"] == 201 for result in results),
            "duplicates": sum(result["status"] == 200 for result in results),
            "rejected": sum(result["status"] >= 400 for result in results),
            "results": results,
        }
    )


async def get_visit(request: web.Request) -> web.Response:
    visit_id = request.match_info["visit_id"]
    view = await request.app[API_KEY].visits.get(visit_id)
    if view is None:
        raise ApiError(404, f"No visit with visit_id {visit_id!r}")
    return web.json_response(visit_json(view))


async def get_customer_link(request: web.Request) -> web.Response:
    """The personal deep link of a customer known by ref: whoever presses Start through it
    becomes that customer, and their waiting surveys can be sent (see bot/links.py)."""
    api = request.app[API_KEY]
    ref = check_customer_ref(request.match_info["ref"])
    if isinstance(ref, list):
        details = [FieldError("ref", error.message) for error in ref]
        raise ApiError(422, "The customer ref is not valid", details)
    assert api.personal_link is not None  # the route exists only when it is set
    link = await api.personal_link(ref)
    return web.json_response({"ref": ref, "url": link.url, "payload": link.payload})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# ------------------------------------------------------------------------------ request body


async def read_json(request: web.Request, limit: int) -> object:
    """The request's JSON body, read no further than ``limit`` bytes: 415, 413 or 400 else."""
    if request.content_type != _JSON_TYPE:
        sent = request.headers.get("Content-Type")
        raise ApiError(
            415,
            "Send the body as JSON with 'Content-Type: application/json' "
            f"({'no Content-Type was sent' if sent is None else f'got {sent!r}'})",
        )
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            f"The body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
        ) from None
    except (ValueError, RecursionError):
        # Not UTF-8, nested thousands deep, or a number of thousands of digits.
        raise ApiError(
            400, "The body is not valid JSON (or not UTF-8, or absurdly nested)"
        ) from None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The body is larger than {limit} bytes"
        + (" (API_MAX_BODY)" if limit > SINGLE_BODY_LIMIT else "")
        + "; send fewer visits per request",
    )


def _batch_items(body: object) -> list[object]:
    if not isinstance(body, dict):
        raise ApiError(
            422,
            'The body must be a JSON object {"visits": [...]}',
            [FieldError("body", f"must be a JSON object (got {_json_type(body)})")],
        )
    errors = [
        FieldError(key, "is not a known field; allowed: visits") for key in body if key != "visits"
    ]
    items = body.get("visits")
    if not isinstance(items, list):
        errors.append(
            FieldError(
                "visits", f"is required: a list of 1-{MAX_BATCH} visits (got {_json_type(items)})"
            )
        )
    elif not 1 <= len(items) <= MAX_BATCH:
        errors.append(FieldError("visits", f"must hold 1-{MAX_BATCH} visits (got {len(items)})"))
    if errors or not isinstance(items, list):
        raise ApiError(422, "The batch is not well-formed; see details", errors)
    return items


def _in_batch(index: int, error: FieldError) -> FieldError:
    """The error's path from the top of the batch body: ``visits[3].customer.ref``."""
    suffix = f".{error.field}" if error.field else ""
    return FieldError(f"visits[{index}]{suffix}", error.message)


def _item_error(
    index: int, item: object, status: int, error: str, details: list[FieldError]
) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "status": status}
    visit_id = item.get("visit_id") if isinstance(item, dict) else None
    if isinstance(visit_id, str):
        result["visit_id"] = visit_id
    result["error"] = error
    result["details"] = [detail.as_dict() for detail in details]
    return result


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# -------------------------------------------------------------------------------- responses


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def visit_location(visit_id: str) -> str:
    return f"{VISITS_PATH}/{quote(visit_id, safe='')}"


def visit_json(view: VisitView) -> dict[str, Any]:
    """A visit as the API shows it (the OpenAPI schema ``Visit``)."""
    survey = None
    if view.survey_state is not None:
        survey = {
            "state": view.survey_state.value,
            "due_at": _iso(view.survey_due_at) if view.survey_due_at else None,
            "reason": view.survey_reason,
        }
    return {
        "visit_id": view.visit_id,
        "customer": {"ref": view.customer_ref},
        "location": view.location,
        "staff": view.staff,
        "service": view.service,
        "occurred_at": _iso(view.occurred_at),
        "source": view.source.value,
        "survey": survey,
    }


# --------------------------------------------------------------------------------- OpenAPI


def _nullable_string(max_length: int, description: str, **extra: object) -> dict[str, object]:
    return {
        "type": ["string", "null"],
        "maxLength": max_length,
        "description": description,
        **extra,
    }


def _error_responses(*statuses: int) -> dict[str, object]:
    meaning = {
        400: "The body is not valid JSON",
        401: "No API key, a wrong one, or API_KEYS is empty",
        404: "No visit with this visit_id",
        409: "The customer ref and telegram_user_id belong to two different customers",
        413: "The body is too large",
        415: "The body is not sent as application/json",
        422: "Wrong fields: each one named in details",
    }
    return {
        str(status): {
            "description": meaning[status],
            "content": {_JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


EXAMPLE_VISIT: dict[str, object] = {
    "visit_id": "pos-2026-000123",
    "customer": {
        "ref": "cust-42",
        "name": "Anna",
        "language": "en",
        "timezone": "Europe/Berlin",
    },
    "location": "Downtown",
    "staff": "Maria",
    "service": "Haircut",
    "occurred_at": "2026-01-05T14:30:00+01:00",
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API, built from the limits `parse_visit` enforces."""
    visit_ref = {"$ref": "#/components/schemas/Visit"}
    max_ahead_hours = int(MAX_AHEAD.total_seconds() // 3600)
    customer_in = {
        "type": "object",
        "description": "Who was served, as the business knows them. Unknown fields are refused.",
        "required": ["ref"],
        "additionalProperties": False,
        "properties": {
            "ref": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LENGTH["customer.ref"],
                "description": "The business's own id of the customer (trimmed)",
            },
            "telegram_user_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": TELEGRAM_USER_ID_MAX,
                "description": "The customer's Telegram user id, when the business knows it",
            },
            "name": _nullable_string(MAX_LENGTH["customer.name"], "How to address the customer"),
            "language": _nullable_string(
                MAX_LENGTH["customer.language"],
                "IETF language tag such as en or pt-br (stored lower case)",
                pattern=LANGUAGE_PATTERN,
            ),
            "timezone": _nullable_string(
                MAX_LENGTH["customer.timezone"], "IANA time zone such as Europe/Berlin"
            ),
        },
    }
    visit_in = {
        "type": "object",
        "description": (
            "One visit (service event). Strings are trimmed; an empty optional string counts "
            "as absent; control characters are refused. Unknown fields are refused."
        ),
        "required": ["visit_id", "customer", "occurred_at"],
        "additionalProperties": False,
        "properties": {
            "visit_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LENGTH["visit_id"],
                "description": "The business's own visit id: the idempotency key",
            },
            "customer": {"$ref": "#/components/schemas/CustomerIn"},
            "location": _nullable_string(MAX_LENGTH["location"], "Where the service happened"),
            "staff": _nullable_string(MAX_LENGTH["staff"], "Who served the customer"),
            "service": _nullable_string(MAX_LENGTH["service"], "What the service was"),
            "occurred_at": {
                "type": "string",
                "format": "date-time",
                "maxLength": MAX_LENGTH["occurred_at"],
                "description": (
                    "ISO-8601 date and time WITH a time zone (Z or an offset); at most "
                    f"{max_ahead_hours} hours in the future"
                ),
            },
        },
        "examples": [EXAMPLE_VISIT],
    }
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    schemas: dict[str, object] = {
        "CustomerIn": customer_in,
        "VisitIn": visit_in,
        "BatchIn": {
            "type": "object",
            "required": ["visits"],
            "additionalProperties": False,
            "properties": {
                "visits": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {"$ref": "#/components/schemas/VisitIn"},
                }
            },
        },
        "Survey": {
            "type": "object",
            "required": ["state", "due_at", "reason"],
            "properties": {
                "state": {"type": "string", "enum": [state.value for state in SurveyState]},
                "due_at": nullable_time,
                "reason": {
                    "type": ["string", "null"],
                    "description": "Why it was skipped, expired or failed (e.g. cooldown)",
                },
            },
        },
        "Visit": {
            "type": "object",
            "required": [
                "visit_id",
                "customer",
                "location",
                "staff",
                "service",
                "occurred_at",
                "source",
                "survey",
            ],
            "properties": {
                "visit_id": {"type": "string"},
                "customer": {
                    "type": "object",
                    "required": ["ref"],
                    "properties": {"ref": {"type": ["string", "null"]}},
                },
                "location": {"type": ["string", "null"]},
                "staff": {"type": ["string", "null"]},
                "service": {"type": ["string", "null"]},
                "occurred_at": {"type": "string", "format": "date-time"},
                "source": {"type": "string", "enum": [source.value for source in VisitSource]},
                "survey": {
                    "description": "The survey about this visit and where it stands",
                    "oneOf": [{"$ref": "#/components/schemas/Survey"}, {"type": "null"}],
                },
            },
        },
        "BatchItem": {
            "type": "object",
            "required": ["index", "status"],
            "properties": {
                "index": {"type": "integer", "minimum": 0},
                "status": {"type": "integer", "enum": [200, 201, 409, 422]},
                "visit": visit_ref,
                "visit_id": {"type": "string"},
                "error": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                },
            },
        },
        "BatchResult": {
            "type": "object",
            "required": ["created", "duplicates", "rejected", "results"],
            "properties": {
                "created": {"type": "integer", "minimum": 0},
                "duplicates": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "results": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/BatchItem"},
                },
            },
        },
        "FieldError": {
            "type": "object",
            "required": ["field", "message"],
            "properties": {
                "field": {
                    "type": "string",
                    "description": "Path in the request body, e.g. customer.telegram_user_id",
                },
                "message": {"type": "string", "description": "What is wrong and what is allowed"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "details"],
            "properties": {
                "error": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                },
            },
        },
    }
    visit_response = {
        "content": {_JSON_TYPE: {"schema": visit_ref}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hearback API",
            "version": "1",
            "description": (
                "Visits in from the business's own systems; each gets a survey by the bot's "
                "survey policy. Idempotent on visit_id: the first recording of a visit_id wins, "
                "later ones answer 200 with it unchanged."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            VISITS_PATH: {
                "post": {
                    "operationId": "recordVisit",
                    "summary": "Record one visit",
                    "requestBody": {
                        "required": True,
                        "description": f"At most {SINGLE_BODY_LIMIT} bytes",
                        "content": {
                            _JSON_TYPE: {
                                "schema": {"$ref": "#/components/schemas/VisitIn"},
                                "example": EXAMPLE_VISIT,
                            }
                        },
                    },
                    "responses": {
                        "201": {"description": "Recorded", **visit_response},
                        "200": {
                            "description": "Recorded before: the visit as first recorded",
                            **visit_response,
                        },
                        **_error_responses(400, 401, 409, 413, 415, 422),
                    },
                }
            },
            CUSTOMER_LINK_PATH: {
                "get": {
                    "operationId": "customerLink",
                    "summary": "A customer's personal deep link (to print or send them)",
                    "description": (
                        "Whoever presses Start through this link becomes the customer with "
                        "this ref, once: a link already claimed by another Telegram user is "
                        "refused. The same ref always gives the same link."
                    ),
                    "parameters": [
                        {
                            "name": "ref",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_LENGTH["customer.ref"],
                            },
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The link",
                            "content": {
                                _JSON_TYPE: {
                                    "schema": {
                                        "type": "object",
                                        "required": ["ref", "url", "payload"],
                                        "properties": {
                                            "ref": {"type": "string"},
                                            "url": {"type": "string", "format": "uri"},
                                            "payload": {
                                                "type": "string",
                                                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        **_error_responses(401, 422),
                    },
                }
            },
            BATCH_PATH: {
                "post": {
                    "operationId": "recordVisits",
                    "summary": f"Record up to {MAX_BATCH} visits in one transaction",
                    "description": (
                        "Answers 200 with a status per item: 201 recorded, 200 recorded before, "
                        "422 wrong fields (paths from the top of the body, e.g. "
                        "visits[3].occurred_at), 409 conflicting customer. Good items are "
                        "recorded even when others are wrong. The body is limited to "
                        "API_MAX_BODY bytes (default 1 MiB)."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            _JSON_TYPE: {
                                "schema": {"$ref": "#/components/schemas/BatchIn"},
                                "example": {"visits": [EXAMPLE_VISIT]},
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Each visit's outcome, in the order sent",
                            "content": {
                                _JSON_TYPE: {"schema": {"$ref": "#/components/schemas/BatchResult"}}
                            },
                        },
                        **_error_responses(400, 401, 413, 415, 422),
                    },
                }
            },
            f"{VISITS_PATH}/{{visit_id}}": {
                "get": {
                    "operationId": "getVisit",
                    "summary": "A visit and its survey's state",
                    "parameters": [
                        {
                            "name": "visit_id",
                            "in": "path",
                            "required": True,
                            "description": "Percent-encoded (a / in an id is %2F)",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "The visit", **visit_response},
                        **_error_responses(401, 404),
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document (no key needed)",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "For load balancers: 200 while the database answers (no key)",
                    "security": [],
                    "responses": {
                        "200": {"description": "Healthy"},
                        "503": {"description": "The database does not answer"},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from the API_KEYS setting",
                }
            },
            "schemas": schemas,
        },
    }
