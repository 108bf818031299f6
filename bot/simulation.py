"""Simulated customers for the emulator: people who pressed Start, and visits due now.

Shared by the end-to-end tests and the benchmarks (and the sandbox demo to come), so that they
all set up the world the same way. Customers are written directly, as the bot would have after
their /start, so that the only messages in a run are the ones it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.emulator import BotAccount, Emulator, SimUser
from bot.visits import CustomerIn, VisitIn
from storage.models import VisitSource
from storage.repositories import CustomerRepository, TelegramProfile

if TYPE_CHECKING:
    from bot.app import Application

__all__ = ["started_customers", "visits_due_now"]

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
    async with app.session_factory.begin() as session:
        repository = CustomerRepository(session)
        for person in people:
            person.started.add(bot.id)
            await repository.get_or_create_by_telegram(
                TelegramProfile(
                    user_id=person.id, first_name=person.first_name, language_code=language
                ),
                now=app.clock.now() - timedelta(days=1),
            )
    return people


async def visits_due_now(
    app: Application, people: Sequence[SimUser], locations: Sequence[str] = ("Downtown",)
) -> None:
    """One visit each, two hours ago, so each survey is due now; the locations take turns."""
    now = app.clock.now()
    visits = [
        VisitIn(
            visit_id=f"visit-{person.id}",
            customer=CustomerIn(telegram_user_id=person.id),
            occurred_at=now - timedelta(hours=2),
            source=VisitSource.API,
            location=locations[n % len(locations)],
        )
        for n, person in enumerate(people)
    ]
    for start in range(0, len(visits), _BATCH):
        await app.visits.record_many(visits[start : start + _BATCH])
