"""Simulated customers for the emulator: people who pressed Start, and visits due now.

Shared by the end-to-end tests and the benchmarks (and the sandbox demo to come), so that they
all set up the world the same way. Customers are written directly, as the bot would have after
their /start, so that the only messages in a run are the ones it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import SystemClock
from bot.emulator import BotAccount, Emulator, SimUser
from bot.policy import SurveyPolicy
from bot.values import QuietHours
from bot.visits import CustomerIn, VisitIn, VisitService
from storage.jobs import JobQueue
from storage.models import VisitSource
from storage.repositories import CustomerRepository, TelegramProfile

if TYPE_CHECKING:
    from bot.app import Application

__all__ = [
    "record_started",
    "record_visits",
    "started_customers",
    "surveys_due_before_start",
    "visits_due_now",
]

# record_many takes this many visits per transaction.
_BATCH = 500


async def started_customers(
    app: Application,
    emulator: Emulator,
    bot: BotAccount,
    count: int,
    *,
    prefix: str = "Guest",
    language: str = "en",
) -> list[SimUser]:
    """``count`` people who pressed Start a day ago, as Telegram and the bot both know."""
    people = [
        emulator.add_user(first_name=f"{prefix}{n}", language_code=language) for n in range(count)
    ]
    await record_started(app.session_factory, bot, people, now=app.clock.now(), language=language)
    return people


async def visits_due_now(
    app: Application, people: Sequence[SimUser], locations: Sequence[str] = ("Downtown",)
) -> None:
    """One visit each, two hours ago, so each survey is due now; the locations take turns."""
    await record_visits(app.visits, people, now=app.clock.now(), locations=locations)


async def surveys_due_before_start(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    bot: BotAccount,
    people: Sequence[SimUser],
) -> None:
    """For a bot that runs in another process and has not started yet: its customers, who
    pressed Start a day ago, and a visit each three hours ago, written to its database, so that
    every survey is due the moment it starts."""
    clock = SystemClock()
    now = clock.now()
    await record_started(sessions, bot, people, now=now)
    policy = SurveyPolicy(quiet_hours=QuietHours.off())
    visits = VisitService(sessions, JobQueue(engine, clock=clock), policy, clock)
    await record_visits(visits, people, now=now, ago=timedelta(hours=3))


async def record_started(
    sessions: async_sessionmaker[AsyncSession],
    bot: BotAccount,
    people: Sequence[SimUser],
    *,
    now: datetime,
    language: str | None = None,
) -> None:
    """``people`` pressed Start a day before ``now``: the emulator lets the bot write to them,
    and the bot has them as customers."""
    async with sessions.begin() as session:
        repository = CustomerRepository(session)
        for person in people:
            person.started.add(bot.id)
            await repository.get_or_create_by_telegram(
                TelegramProfile(
                    user_id=person.id, first_name=person.first_name, language_code=language
                ),
                now=now - timedelta(days=1),
            )


async def record_visits(
    visits: VisitService,
    people: Sequence[SimUser],
    *,
    now: datetime,
    ago: timedelta = timedelta(hours=2),
    locations: Sequence[str] = ("Downtown",),
) -> None:
    """One visit each, ``ago`` before ``now``, through the one way in for visits."""
    batch = [
        VisitIn(
            visit_id=f"visit-{person.id}",
            customer=CustomerIn(telegram_user_id=person.id),
            occurred_at=now - ago,
            source=VisitSource.API,
            location=locations[n % len(locations)],
        )
        for n, person in enumerate(people)
    ]
    for start in range(0, len(batch), _BATCH):
        await visits.record_many(batch[start : start + _BATCH])
