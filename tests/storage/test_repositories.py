"""Repositories against the real database: idempotent writes, including under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from storage.models import Customer, RoleName
from storage.repositories import (
    AuditRepository,
    CustomerRepository,
    RoleRepository,
    SettingRepository,
    TelegramProfile,
)

Sessions = async_sessionmaker[AsyncSession]

ANNA = TelegramProfile(
    user_id=5_000_000_001, first_name="Anna", username="anna", language_code="de"
)


async def test_start_creates_a_customer_once(session_factory: Sessions, clock: FakeClock) -> None:
    async with session_factory() as session, session.begin():
        customer, created = await CustomerRepository(session).get_or_create_by_telegram(
            ANNA, now=clock.now()
        )
        assert created
        assert (customer.first_name, customer.username, customer.language) == ("Anna", "anna", "de")
        assert customer.started_at == clock.now()
        first_id = customer.id

    clock.advance(hours=1)
    renamed = TelegramProfile(ANNA.user_id, first_name="Anne", username=None, language_code="en")
    async with session_factory() as session, session.begin():
        customer, created = await CustomerRepository(session).get_or_create_by_telegram(
            renamed, now=clock.now()
        )
        assert not created
        assert customer.id == first_id
        # Telegram's name and @username win; the language they had stays theirs.
        assert (customer.first_name, customer.username, customer.language) == ("Anne", None, "de")
        assert customer.started_at == clock.now() - timedelta(hours=1)


async def test_a_known_customer_who_starts_gets_started_at(
    session_factory: Sessions, clock: FakeClock
) -> None:
    """A customer the business sent with a Telegram id, who had not pressed Start yet."""
    async with session_factory() as session, session.begin():
        session.add(
            Customer(telegram_user_id=ANNA.user_id, external_ref="C-9", created_at=clock.now())
        )
    clock.advance(days=1)
    async with session_factory() as session, session.begin():
        customer, created = await CustomerRepository(session).get_or_create_by_telegram(
            ANNA, now=clock.now()
        )
        assert not created
        assert customer.external_ref == "C-9"
        assert customer.started_at == clock.now()


async def test_the_same_start_twice_at_once_makes_one_customer(
    session_factory: Sessions, clock: FakeClock
) -> None:
    """Telegram may deliver an update twice; both deliveries run concurrently."""

    async def start() -> tuple[int, bool]:
        async with session_factory() as session, session.begin():
            customer, created = await CustomerRepository(session).get_or_create_by_telegram(
                ANNA, now=clock.now()
            )
            return customer.id, created

    results = await asyncio.gather(*(start() for _ in range(6)))
    assert len({customer_id for customer_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_lookups(session_factory: Sessions, clock: FakeClock) -> None:
    async with session_factory() as session, session.begin():
        session.add(Customer(external_ref="REF-1", created_at=clock.now()))
        await CustomerRepository(session).get_or_create_by_telegram(ANNA, now=clock.now())
    async with session_factory() as session:
        customers = CustomerRepository(session)
        by_ref = await customers.by_ref("REF-1")
        by_tg = await customers.by_telegram_id(ANNA.user_id)
        assert by_ref is not None and by_ref.telegram_user_id is None
        assert by_tg is not None and by_tg.first_name == "Anna"
        assert await customers.get(by_tg.id) is by_tg
        assert await customers.by_ref("nope") is None
        assert await customers.by_telegram_id(1) is None


async def test_roles_are_idempotent(session_factory: Sessions, clock: FakeClock) -> None:
    async with session_factory() as session, session.begin():
        roles = RoleRepository(session)
        assert await roles.grant(42, RoleName.ADMIN, granted_by=1, now=clock.now())
        assert not await roles.grant(42, RoleName.ADMIN, granted_by=2, now=clock.now())
        assert await roles.grant(42, RoleName.STAFF, granted_by=1, now=clock.now())
        assert await roles.grant(43, RoleName.ADMIN, granted_by=1, now=clock.now())
    async with session_factory() as session, session.begin():
        roles = RoleRepository(session)
        assert await roles.has(42, RoleName.ADMIN)
        assert await roles.users(RoleName.ADMIN) == [42, 43]
        assert await roles.revoke(42, RoleName.ADMIN)
        assert not await roles.revoke(42, RoleName.ADMIN)
        assert not await roles.has(42, RoleName.ADMIN)
        assert await roles.has(42, RoleName.STAFF)


async def test_settings_upsert(session_factory: Sessions, clock: FakeClock) -> None:
    async with session_factory() as session, session.begin():
        settings = SettingRepository(session)
        await settings.put("SURVEY_DELAY", "2h", updated_by=1, now=clock.now())
        await settings.put("SURVEY_DELAY", "3h", updated_by=2, now=clock.now())
        await settings.put("QUIET_HOURS", "22:00-08:00", updated_by=2, now=clock.now())
    async with session_factory() as session, session.begin():
        settings = SettingRepository(session)
        assert await settings.all() == {"SURVEY_DELAY": "3h", "QUIET_HOURS": "22:00-08:00"}
        assert await settings.get("SURVEY_DELAY") == "3h"
        assert await settings.remove("SURVEY_DELAY")
        assert not await settings.remove("SURVEY_DELAY")
        assert await settings.get("SURVEY_DELAY") is None


async def test_audit_latest_first(session_factory: Sessions, clock: FakeClock) -> None:
    async with session_factory() as session, session.begin():
        audit = AuditRepository(session)
        for n in range(25):
            await audit.record(
                at=clock.advance(minutes=1),
                action="text.set",
                actor_id=7,
                target=f"t{n}",
                new={"text": f"v{n}"},
            )
    async with session_factory() as session:
        latest = await AuditRepository(session).latest()
        assert len(latest) == 20
        assert [entry.target for entry in latest[:2]] == ["t24", "t23"]
        assert latest[0].new_value == {"text": "v24"}
