"""The visits HTTP API over real HTTP on loopback, on a real database.

Most tests talk to the bot's own aiohttp app (`build_http_app`, as the Application builds it)
through aiohttp's test server with a FakeClock; one runs the whole Application against the
Bot API emulator to prove the API is served where the bot serves /healthz.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

import bot.api
from bot.api import MAX_BATCH, SINGLE_BODY_LIMIT
from bot.clock import FakeClock
from bot.http import build_http_app
from bot.policy import SurveyPolicy
from bot.settings import Settings
from bot.visit_input import CUSTOMER_FIELDS, TELEGRAM_USER_ID_MAX, VISIT_FIELDS
from bot.visits import SEND_SURVEY, VisitService
from storage.jobs import JobQueue
from storage.models import Customer, Job, Survey, Visit
from tests.e2e.conftest import e2e_settings, running

KEY = "key-one-0123456789abcdef"
OTHER_KEY = "key-two-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SMALL_MAX_BODY = 16_384  # the smallest API_MAX_BODY allowed: keeps the 413 tests quick

# The FakeClock's "now" is 2026-01-05 12:00 UTC.
NOW_ISO = "2026-01-05T12:00:00Z"


def a_visit(visit_id: str = "v-1", ref: str = "c-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "visit_id": visit_id,
        "customer": {"ref": ref, "name": "Anna", "language": "en"},
        "location": "Downtown",
        "occurred_at": "2026-01-05T10:30:00+01:00",
    }
    body.update(fields)
    return body


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Overrides the e2e settings: API keys, and no quiet hours to reason about."""
    return e2e_settings(database_url, api_keys=f"{KEY},{OTHER_KEY}", quiet_hours="")


@pytest.fixture
def visits(session_factory, engine, clock: FakeClock, settings: Settings) -> VisitService:
    policy = SurveyPolicy.from_settings(settings)
    return VisitService(session_factory, JobQueue(engine, clock=clock), policy, clock)


@pytest.fixture
async def make_client(
    engine, visits: VisitService, clock: FakeClock
) -> AsyncIterator[Callable[[Settings], Awaitable[TestClient]]]:
    """Clients of the bot's HTTP app built with other settings, over loopback HTTP."""
    clients: list[TestClient] = []

    async def make(settings: Settings) -> TestClient:
        app = build_http_app(settings, engine, visits=visits, clock=clock)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(
    settings: Settings, engine, visits: VisitService, clock
) -> AsyncIterator[TestClient]:
    app = build_http_app(settings, engine, visits=visits, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def count(session_factory, model, *where) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def assert_error(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    """The response has ``status`` and the API's error shape: JSON error + details."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error", "details"}
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], list)
    assert "Traceback" not in json.dumps(body)
    return body


# ------------------------------------------------------------------- created, again, fetched


async def test_a_visit_is_201_then_200_when_sent_again_with_one_survey_job(
    client: TestClient, session_factory
) -> None:
    first = await client.post("/api/v1/visits", json=a_visit(), headers=AUTH)
    assert first.status == 201
    assert first.headers["Location"] == "/api/v1/visits/v-1"
    body = await first.json()
    assert body == {
        "visit_id": "v-1",
        "customer": {"ref": "c-1"},
        "location": "Downtown",
        "staff": None,
        "service": None,
        "occurred_at": "2026-01-05T09:30:00Z",
        "source": "api",
        "survey": {"state": "scheduled", "due_at": "2026-01-05T11:30:00Z", "reason": None},
    }

    # Later, with other content: the first recording wins and is what comes back.
    again = await client.post(
        "/api/v1/visits", json=a_visit(location="Uptown", occurred_at=NOW_ISO), headers=AUTH
    )
    assert again.status == 200
    assert await again.json() == body
    assert await count(session_factory, Visit) == 1
    assert await count(session_factory, Job, Job.kind == SEND_SURVEY) == 1


async def test_the_same_visit_sent_many_times_at_once_is_recorded_once(
    client: TestClient, session_factory
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/v1/visits", json=a_visit("race"), headers=AUTH) for _ in range(10))
    )
    assert sorted(response.status for response in responses) == [200] * 9 + [201]
    bodies = [await response.json() for response in responses]
    assert all(body == bodies[0] for body in bodies)
    assert await count(session_factory, Visit) == 1
    assert await count(session_factory, Customer) == 1
    assert await count(session_factory, Survey) == 1
    assert await count(session_factory, Job, Job.kind == SEND_SURVEY) == 1


async def test_get_answers_the_visit_and_its_survey_state(client: TestClient) -> None:
    await client.post("/api/v1/visits", json=a_visit("a/b c"), headers=AUTH)
    await client.post(
        "/api/v1/visits",
        json=a_visit("later", occurred_at="2026-01-06T10:00:00Z"),
        headers=AUTH,
    )

    found = await client.get("/api/v1/visits/a%2Fb%20c", headers=AUTH)
    assert found.status == 200
    assert (await found.json())["survey"]["state"] == "scheduled"
    # The same customer's next visit within the cooldown: recorded, its survey skipped.
    later = await (await client.get("/api/v1/visits/later", headers=AUTH)).json()
    assert later["survey"] == {
        "state": "skipped",
        "due_at": "2026-01-06T12:00:00Z",
        "reason": "cooldown",
    }

    missing = await client.get("/api/v1/visits/nope", headers=AUTH)
    body = await assert_error(missing, 404)
    assert "nope" in body["error"]


async def test_strings_are_trimmed_and_empty_optional_ones_are_absent(client: TestClient) -> None:
    body = a_visit("  v-trim  ", staff="   ", service=" Haircut ")
    body["customer"] = {"ref": " c-9 ", "language": "PT-BR", "timezone": " Europe/Berlin "}
    response = await client.post("/api/v1/visits", json=body, headers=AUTH)
    assert response.status == 201
    shown = await response.json()
    assert (shown["visit_id"], shown["customer"]["ref"]) == ("v-trim", "c-9")
    assert (shown["staff"], shown["service"]) == (None, "Haircut")


# ------------------------------------------------------------------------------------ keys


async def test_no_key_or_a_wrong_key_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {KEY}x"},
    ):
        response = await client.post("/api/v1/visits", json=a_visit(), headers=headers)
        body = await assert_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "API_KEYS" in body["error"] or "Authorization" in body["error"]
    # Unknown paths too, so a caller without a key learns nothing about the API.
    await assert_error(await client.get("/api/v1/secret-things"), 401)
    # Either key works, and the scheme is case-insensitive.
    for headers in (AUTH, {"Authorization": f"bearer {OTHER_KEY}"}):
        response = await client.get("/api/v1/visits/none", headers=headers)
        assert response.status == 404


async def test_without_api_keys_every_call_is_401_saying_to_set_them(
    make_client: Callable, settings: Settings
) -> None:
    client = await make_client(settings.model_copy(update={"api_keys": []}))
    for method, path in (("POST", "/api/v1/visits"), ("GET", "/api/v1/visits/v-1")):
        response = await client.request(method, path, json=a_visit(), headers=AUTH)
        body = await assert_error(response, 401)
        assert "set API_KEYS" in body["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/api/v1/openapi.json")).status == 200


async def test_keys_are_compared_in_constant_time_against_every_key(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(bot.api.hmac, "compare_digest", spy)
    for key in (KEY, OTHER_KEY, "wrong-key-0123456789abcdef", "x" * 500):
        calls.clear()
        await client.get("/api/v1/visits/none", headers={"Authorization": f"Bearer {key}"})
        # Every configured key is compared, even after a match, and always as equal-length
        # digests, so neither which key matched nor the length of the key sent shows in time.
        assert calls == [(32, 32), (32, 32)], key


# ----------------------------------------------------------------------- 415, 413, 400, 422


async def test_a_body_that_is_not_declared_json_is_415(client: TestClient) -> None:
    text = json.dumps(a_visit())
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form"}):
        response = await client.post("/api/v1/visits", data=text, headers={**AUTH, **headers})
        body = await assert_error(response, 415)
        assert "application/json" in body["error"]


async def test_a_body_over_the_limit_is_413(make_client: Callable, settings: Settings) -> None:
    client = await make_client(settings.model_copy(update={"api_max_body": SMALL_MAX_BODY}))
    batch = {"visits": [a_visit(f"v-{n}", note="x" * 200) for n in range(100)]}
    response = await client.post("/api/v1/visits:batch", json=batch, headers=AUTH)
    body = await assert_error(response, 413)
    assert f"{SMALL_MAX_BODY} bytes" in body["error"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 4096

    # Without a Content-Length (chunked), reading stops at the limit all the same.
    response = await client.post(
        "/api/v1/visits:batch", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    await assert_error(response, 413)


async def test_a_single_visit_over_64_kib_is_413(client: TestClient) -> None:
    response = await client.post(
        "/api/v1/visits", json=a_visit(staff="x" * SINGLE_BODY_LIMIT), headers=AUTH
    )
    await assert_error(response, 413)


async def test_malformed_json_is_400_saying_where(client: TestClient) -> None:
    json_headers = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/api/v1/visits", data='{"visit_id": ', headers=json_headers)
    body = await assert_error(response, 400)
    assert "not valid JSON" in body["error"]
    assert "line 1" in body["error"]
    for data in (b"", b"[" * 100_000, b"\xff\xfe{}"):
        response = await client.post("/api/v1/visits:batch", data=data, headers=json_headers)
        await assert_error(response, 400)


async def test_every_wrong_field_is_named_with_what_is_allowed(client: TestClient) -> None:
    body = {
        "visit_id": "   ",
        "customer": {
            "ref": "r" * 129,
            "telegram_user_id": -5,
            "language": "english",
            "timezone": "Mars/Olympus",
            "email": "anna@example.com",
        },
        "location": "x" * 129,
        "occurred_at": "2026-01-05 11:00",
        "colour": "red",
    }
    response = await client.post("/api/v1/visits", json=body, headers=AUTH)
    details = (await assert_error(response, 422))["details"]
    messages = {detail["field"]: detail["message"] for detail in details}
    assert set(messages) == {
        "colour",
        "visit_id",
        "customer.email",
        "customer.ref",
        "customer.telegram_user_id",
        "customer.language",
        "customer.timezone",
        "location",
        "occurred_at",
    }
    assert "1-128 characters" in messages["visit_id"]
    assert "at most 128 characters" in messages["customer.ref"]
    assert "positive integer" in messages["customer.telegram_user_id"]
    assert "en, de or pt-br" in messages["customer.language"]
    assert "IANA time zone" in messages["customer.timezone"]
    assert "needs a time zone" in messages["occurred_at"]
    assert "allowed: visit_id, customer" in messages["colour"]
    assert "allowed: ref, telegram_user_id" in messages["customer.email"]


@pytest.mark.parametrize(
    ("change", "field", "explanation"),
    [
        ({"visit_id": "v" * 129}, "visit_id", "at most 128 characters"),
        ({"visit_id": 17}, "visit_id", "must be a string (got 17)"),
        ({"visit_id": "a\nb"}, "visit_id", "control characters"),
        ({"occurred_at": "yesterday"}, "occurred_at", "ISO-8601"),
        ({"occurred_at": "2026-01-05"}, "occurred_at", "needs a time zone"),
        ({"occurred_at": "2026-01-06T12:00:01Z"}, "occurred_at", "more than 1 day in the future"),
        ({"occurred_at": None}, "occurred_at", "is required"),
        ({"customer": None}, "customer", "is required"),
        ({"customer": "c-1"}, "customer", "must be an object"),
        ({"customer": {"ref": "c", "telegram_user_id": "42"}}, "customer.telegram_user_id", ""),
        ({"customer": {"ref": "c", "telegram_user_id": True}}, "customer.telegram_user_id", ""),
        ({"customer": {"ref": "c", "telegram_user_id": 0}}, "customer.telegram_user_id", ""),
        (
            {"customer": {"ref": "c", "telegram_user_id": TELEGRAM_USER_ID_MAX + 1}},
            "customer.telegram_user_id",
            f"up to {TELEGRAM_USER_ID_MAX}",
        ),
        ({"customer": {"ref": "c", "name": "n" * 257}}, "customer.name", "at most 256"),
        ({"customer": {"ref": "c", "language": "e"}}, "customer.language", "language tag"),
        ({"customer": {"telegram_user_id": 42}}, "customer.ref", "is required"),
        ({"staff": ["Maria"]}, "staff", "must be a string (got a list)"),
    ],
)
async def test_one_wrong_field_is_422_naming_it(
    client: TestClient, change: dict[str, Any], field: str, explanation: str
) -> None:
    response = await client.post("/api/v1/visits", json=a_visit(**change), headers=AUTH)
    details = (await assert_error(response, 422))["details"]
    assert [detail["field"] for detail in details] == [field]
    assert explanation in details[0]["message"]


async def test_a_visit_up_to_a_day_ahead_and_a_json_list_body(client: TestClient) -> None:
    ahead = a_visit("soon", occurred_at="2026-01-06T11:59:59Z")
    assert (await client.post("/api/v1/visits", json=ahead, headers=AUTH)).status == 201
    response = await client.post("/api/v1/visits", json=[a_visit()], headers=AUTH)
    details = (await assert_error(response, 422))["details"]
    assert details == [{"field": "body", "message": "must be a JSON object (got a list)"}]


async def started_the_bot(session_factory, clock: FakeClock, telegram_user_id: int) -> None:
    """A customer known only by Telegram id, as one who pressed Start is."""
    async with session_factory.begin() as session:
        session.add(Customer(telegram_user_id=telegram_user_id, created_at=clock.now()))


async def test_a_ref_and_telegram_id_of_two_different_customers_is_409(
    client: TestClient, session_factory, clock: FakeClock
) -> None:
    await started_the_bot(session_factory, clock, 777)
    assert (
        await client.post("/api/v1/visits", json=a_visit("v-1", "ref-a"), headers=AUTH)
    ).status == 201
    clash = a_visit("v-2", occurred_at="2026-01-04T10:00:00Z")
    clash["customer"] = {"ref": "ref-a", "telegram_user_id": 777}

    response = await client.post("/api/v1/visits", json=clash, headers=AUTH)
    body = await assert_error(response, 409)
    assert body["details"][0]["field"] == "customer"
    assert "two different customers" in body["details"][0]["message"]

    # In a batch only that visit is refused; the others are recorded.
    batch = {"visits": [a_visit("v-3", "ref-x"), clash, a_visit("v-4", "ref-y")]}
    response = await client.post("/api/v1/visits:batch", json=batch, headers=AUTH)
    results = (await response.json())["results"]
    assert results[1]["status"] == 409
    assert results[1]["details"][0]["field"] == "visits[1].customer"
    # v-3 may show as recorded before (200): VisitService.record_many recorded it on its own
    # fallback before it gave up at v-2 (see bot.visit_input.record_batch).
    assert [results[0]["status"] in (200, 201), results[2]["status"]] == [True, 201]
    assert await count(session_factory, Visit) == 3


# ----------------------------------------------------------------------------------- batch


async def test_a_batch_answers_per_item_and_records_the_good_ones(
    client: TestClient, session_factory
) -> None:
    await client.post("/api/v1/visits", json=a_visit("old", ref="c-old"), headers=AUTH)
    items: list[Any] = [
        a_visit("b-1", ref="c-1"),
        a_visit("b-2", ref="c-2", occurred_at="2026-01-05T10:00:00"),
        a_visit("old", ref="c-old"),
        a_visit("b-1", ref="c-1"),
        "not a visit",
        a_visit("b-3", ref="c-3", customer={"ref": "c-3", "timezone": "Nowhere"}),
        a_visit("b-4", ref="c-4"),
    ]
    response = await client.post("/api/v1/visits:batch", json={"visits": items}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert [result["status"] for result in body["results"]] == [201, 422, 200, 200, 422, 422, 201]
    assert [result["index"] for result in body["results"]] == list(range(7))
    assert (body["created"], body["duplicates"], body["rejected"]) == (2, 2, 3)
    assert body["results"][0]["visit"]["visit_id"] == "b-1"
    bad = body["results"][1]
    assert bad["visit_id"] == "b-2"
    assert [d["field"] for d in bad["details"]] == ["visits[1].occurred_at"]
    assert body["results"][4]["details"][0]["field"] == "visits[4]"
    assert body["results"][5]["details"][0]["field"] == "visits[5].customer.timezone"
    assert await count(session_factory, Visit) == 3  # old, b-1, b-4
    assert await count(session_factory, Job, Job.kind == SEND_SURVEY) == 3


@pytest.mark.parametrize(
    ("body", "field", "explanation"),
    [
        ([a_visit()], "body", "must be a JSON object"),
        ({}, "visits", "is required"),
        ({"visits": []}, "visits", "1-1000 visits (got 0)"),
        ({"visits": [{}] * (MAX_BATCH + 1)}, "visits", f"(got {MAX_BATCH + 1})"),
        ({"visits": [a_visit()], "dry_run": True}, "dry_run", "not a known field"),
    ],
)
async def test_a_batch_that_is_not_well_formed_is_422(
    client: TestClient, body: object, field: str, explanation: str
) -> None:
    response = await client.post("/api/v1/visits:batch", json=body, headers=AUTH)
    details = (await assert_error(response, 422))["details"]
    assert details[0]["field"] == field
    assert explanation in details[0]["message"]


async def test_a_full_batch_of_1000_visits_fits_the_default_limit(
    client: TestClient, session_factory
) -> None:
    items = [a_visit(f"full-{n:04}", ref=f"cust-{n:04}", staff="Maria") for n in range(MAX_BATCH)]
    response = await client.post("/api/v1/visits:batch", json={"visits": items}, headers=AUTH)
    assert response.status == 200
    assert (await response.json())["created"] == MAX_BATCH
    assert await count(session_factory, Visit) == MAX_BATCH


# ------------------------------------------------------------------------ other failures


async def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    await assert_error(await client.get("/api/v1/customers", headers=AUTH), 404)
    response = await client.delete("/api/v1/visits", headers=AUTH)
    body = await assert_error(response, 405)
    assert response.headers["Allow"] == "POST"
    assert "POST" in body["error"]


async def test_a_failure_inside_the_bot_is_a_json_500_without_a_traceback(
    client: TestClient, visits: VisitService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(visit: object) -> None:
        raise RuntimeError("the disk is on fire at /srv/hearback/secret.db")

    monkeypatch.setattr(visits, "record", broken)
    response = await client.post("/api/v1/visits", json=a_visit(), headers=AUTH)
    body = await assert_error(response, 500)
    assert "secret.db" not in json.dumps(body)


async def test_healthz_stays_open_without_a_key(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


# -------------------------------------------------------------------------------- OpenAPI


def conforms(
    value: Any, schema: dict[str, Any], document: dict[str, Any], at: str = "$"
) -> list[str]:
    """Where ``value`` breaks ``schema`` (the JSON Schema subset the document uses): a small
    structural validator, so the test needs no extra dependency."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return conforms(value, document["components"]["schemas"][name], document, at)
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not conforms(value, s, document, at)]
        return [] if len(matching) == 1 else [f"{at}: matches {len(matching)} of oneOf"]
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        kinds = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "null": value is None,
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
        }
        if not any(kinds[kind] for kind in allowed):
            return [f"{at}: {type(value).__name__} is not {allowed}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            problems.append(f"{at}: length {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not schema.get("minimum", -(10**30)) <= value <= schema.get("maximum", 10**30)
    ):
        problems.append(f"{at}: {value} out of range")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            problems.append(f"{at}: {len(value)} items")
        for index, item in enumerate(value):
            problems += conforms(item, schema.get("items", {}), document, f"{at}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        problems += [
            f"{at}.{key}: required" for key in schema.get("required", []) if key not in value
        ]
        for key, item in value.items():
            if key in properties:
                problems += conforms(item, properties[key], document, f"{at}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{at}.{key}: not allowed")
    return problems


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method]


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    return operation(document, path, "post")["requestBody"]["content"]["application/json"]["schema"]


def response_schema(
    document: dict[str, Any], path: str, method: str, status: int
) -> dict[str, Any]:
    response = operation(document, path, method)["responses"][str(status)]
    return response["content"]["application/json"]["schema"]


async def test_the_openapi_document_is_served_and_matches_what_the_api_does(
    client: TestClient,
) -> None:
    response = await client.get("/api/v1/openapi.json")  # no key needed
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    assert tuple(schemas["VisitIn"]["properties"]) == VISIT_FIELDS
    assert tuple(schemas["CustomerIn"]["properties"]) == CUSTOMER_FIELDS
    assert document["paths"].keys() >= {
        "/api/v1/visits",
        "/api/v1/visits:batch",
        "/api/v1/visits/{visit_id}",
        "/api/v1/openapi.json",
        "/healthz",
    }
    single, batch = (
        request_schema(document, "/api/v1/visits"),
        request_schema(document, "/api/v1/visits:batch"),
    )

    # The document's own examples are valid by it, and the API accepts them.
    example = operation(document, "/api/v1/visits", "post")["requestBody"]["content"][
        "application/json"
    ]["example"]
    assert conforms(example, single, document) == []
    created = await client.post("/api/v1/visits", json=example, headers=AUTH)
    assert created.status == 201
    shown = await created.json()
    assert conforms(shown, response_schema(document, "/api/v1/visits", "post", 201), document) == []
    fetched = await (await client.get(f"/api/v1/visits/{example['visit_id']}", headers=AUTH)).json()
    schema = response_schema(document, "/api/v1/visits/{visit_id}", "get", 200)
    assert conforms(fetched, schema, document) == []

    # Requests the schema refuses, the API refuses too, naming the same field.
    refused = [
        (a_visit(colour="red"), "colour"),
        (a_visit("v" * 129), "visit_id"),
        (a_visit(customer={"ref": "c", "telegram_user_id": "42"}), "customer.telegram_user_id"),
        (a_visit(customer={"ref": "c", "language": "english"}), "customer.language"),
        (a_visit(customer={"name": "Anna"}), "customer.ref"),
        (a_visit(occurred_at=None), "occurred_at"),
    ]
    for body, field in refused:
        assert conforms(body, single, document) != [], body
        response = await client.post("/api/v1/visits", json=body, headers=AUTH)
        error = await assert_error(response, 422)
        assert (
            conforms(error, response_schema(document, "/api/v1/visits", "post", 422), document)
            == []
        )
        assert [detail["field"] for detail in error["details"]] == [field]

    # A batch and its per-item answer have the documented shapes.
    items = {"visits": [a_visit("doc-1", "d-1"), a_visit("doc-2", "d-2", occurred_at="now")]}
    assert conforms(items, batch, document) == []
    answer = await (await client.post("/api/v1/visits:batch", json=items, headers=AUTH)).json()
    schema = response_schema(document, "/api/v1/visits:batch", "post", 200)
    assert conforms(answer, schema, document) == []
    assert [result["status"] for result in answer["results"]] == [201, 422]


# ------------------------------------------------------------------- the running bot


async def test_the_running_bot_serves_the_api_next_to_healthz(make_app, clock: FakeClock) -> None:
    async with running(make_app(clock=clock)) as app, aiohttp.ClientSession(app.http_url) as http:
        response = await http.post("/api/v1/visits", json=a_visit(), headers=AUTH)
        assert response.status == 201
        response = await http.get("/api/v1/visits/v-1", headers=AUTH)
        assert (await response.json())["survey"]["state"] == "scheduled"
        assert (await http.get("/healthz")).status == 200
        assert (await http.get("/api/v1/visits/v-1")).status == 401


async def test_a_customer_known_by_ref_is_reached_through_the_personal_link_from_the_api(
    make_app, emulator, telegram_bot, clock: FakeClock, session_factory
) -> None:
    async with running(make_app(clock=clock)) as app, aiohttp.ClientSession(app.http_url) as http:
        recorded = await http.post("/api/v1/visits", json=a_visit(ref="c-77"), headers=AUTH)
        assert recorded.status == 201
        response = await http.get("/api/v1/customers/c-77/link", headers=AUTH)
        assert response.status == 200
        link = await response.json()
        assert link["url"] == f"https://t.me/{telegram_bot.username}?start={link['payload']}"
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", link["payload"])
        again = await (await http.get("/api/v1/customers/c-77/link", headers=AUTH)).json()
        assert again == link  # the same ref always gives the same link

        assert (await http.get("/api/v1/customers/c-77/link")).status == 401
        await assert_error(await http.get("/api/v1/customers/%20/link", headers=AUTH), 422)

        anna = emulator.add_user(first_name="Anna")
        await anna.send(telegram_bot, f"/start {link['payload']}")
        await emulator.wait_for(lambda: anna.inbox(telegram_bot), timeout=10)
    async with session_factory() as session:
        customer = await session.scalar(select(Customer).where(Customer.external_ref == "c-77"))
    assert customer.telegram_user_id == anna.id


async def test_the_openapi_document_describes_the_customer_link(client: TestClient) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/customers/{ref}/link" in document["paths"]
