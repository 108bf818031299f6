"""Link targets in the database: long names fit, the same target gives the same payload, the
secret is made once and shared, and a payload only ever leads to a target of its own kind."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from bot.links import (
    SECRET_SETTING_KEY,
    Links,
    LocationLink,
    PersonalLink,
    location_link,
    personal_link,
)
from storage.models import LinkKind, LinkTarget, Setting

TELEGRAM_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONFIGURED = "a configured link secret, long enough"


@pytest.fixture
def links(session_factory, clock) -> Links:
    return Links(session_factory, clock)


@pytest.mark.parametrize(
    "location",
    [
        "Downtown",
        "Кафе «Центр» на Невском проспекте, второй этаж, у большого окна рядом с лестницей",
        "東京駅八重洲口 地下街 第二店舗 カウンター席",
        "🍚" * 128,
        "x" * 128,
    ],
)
async def test_long_and_non_ascii_locations_fit_and_come_back(links: Links, location: str) -> None:
    payload = await links.location_payload(location, staff="Анна-Мария", service="Стрижка")
    assert TELEGRAM_PAYLOAD.fullmatch(payload)
    assert len(payload) <= 64
    assert await links.resolve(payload) == LocationLink(location, "Анна-Мария", "Стрижка")


async def test_the_same_target_gives_the_same_payload(links: Links, session) -> None:
    first = await links.location_payload("Downtown", staff="Li")
    assert await links.location_payload("  Downtown ", staff="Li") == first
    # The same name in another Unicode spelling is the same place.
    assert await links.location_payload("Cafe\u0301") == await links.location_payload("Café")
    assert await links.location_payload("Downtown", staff="Omar") != first
    assert await links.location_payload("Downtown") != first
    assert await session.scalar(select(func.count()).select_from(LinkTarget)) == 4


async def test_making_the_same_link_at_once_makes_one_target(links: Links, session) -> None:
    payloads = await asyncio.gather(*(links.personal_payload("c-1") for _ in range(5)))
    assert len(set(payloads)) == 1
    assert await session.scalar(select(func.count()).select_from(LinkTarget)) == 1


async def test_a_personal_payload_leads_to_its_ref(links: Links) -> None:
    payload = await links.personal_payload("crm:00042")
    assert await links.resolve(payload) == PersonalLink("crm:00042")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda links: links.location_payload(""), "location must not be empty"),
        (lambda links: links.location_payload("   "), "location must not be empty"),
        (lambda links: links.location_payload("x" * 129), "at most 128"),
        (lambda links: links.location_payload("x", staff="s" * 129), "staff must be at most"),
        (lambda links: links.personal_payload(""), "ref must not be empty"),
        (lambda links: links.personal_payload("r" * 129), "at most 128"),
    ],
)
async def test_targets_that_do_not_fit_are_refused(links: Links, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await call(links)


async def test_a_payload_leads_only_to_a_target_of_its_own_kind(links: Links) -> None:
    payload = await links.location_payload("Downtown")
    signer = await links.signer()
    target_id = signer.verify(payload).target_id
    # Correctly signed, but for a personal link: the row says location, so it leads nowhere.
    assert await links.resolve(signer.sign(LinkKind.CUSTOMER, target_id)) is None
    # Correctly signed, for a target that does not exist.
    assert await links.resolve(signer.sign(LinkKind.LOCATION, target_id + 1000)) is None


async def test_the_generated_secret_is_made_once_and_shared(session_factory, clock, session):
    first, second = Links(session_factory, clock), Links(session_factory, clock)
    signers = await asyncio.gather(first.signer(), second.signer())
    payload = await first.location_payload("Downtown")
    assert await second.resolve(payload) == LocationLink("Downtown")
    assert signers[0].verify(payload) == signers[1].verify(payload)
    stored = await session.scalar(select(Setting.value).where(Setting.key == SECRET_SETTING_KEY))
    assert stored and len(stored) >= 32
    assert await session.scalar(select(func.count()).select_from(Setting)) == 1


async def test_a_new_secret_invalidates_every_link(session_factory, clock) -> None:
    generated = Links(session_factory, clock)
    configured = Links(session_factory, clock, CONFIGURED)
    old = await generated.location_payload("Downtown")
    assert await configured.resolve(old) is None
    new = await configured.location_payload("Downtown")
    assert new != old
    assert await configured.resolve(new) == LocationLink("Downtown")
    assert await Links(session_factory, clock, CONFIGURED + "!").resolve(new) is None


async def test_link_functions_give_the_url_and_the_payload(links: Links) -> None:
    place = await location_link(links, "rice_shop_bot", "Downtown", service="Sushi")
    assert place.url == f"https://t.me/rice_shop_bot?start={place.payload}"
    assert await links.resolve(place.payload) == LocationLink("Downtown", None, "Sushi")
    person = await personal_link(links, "rice_shop_bot", "c-9")
    assert person.url.endswith(person.payload)
    assert await links.resolve(person.payload) == PersonalLink("c-9")
