"""Customers arriving at the bot: who they are, and whether we have met them before."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.repositories import CustomerRepository, TelegramProfile


@dataclass(frozen=True, slots=True)
class Arrival:
    customer_id: int
    name: str
    is_new: bool


class CustomerService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def arrived(
        self,
        *,
        telegram_user_id: int,
        first_name: str | None,
        username: str | None,
        language: str | None,
    ) -> Arrival:
        """Record that this person started the bot (idempotent: a repeated /start is no harm)."""
        profile = TelegramProfile(
            user_id=telegram_user_id,
            first_name=first_name,
            username=username,
            language_code=language,
        )
        async with self._sessions.begin() as session:
            customer, created = await CustomerRepository(session).get_or_create_by_telegram(
                profile, now=self._clock.now()
            )
            return Arrival(
                customer_id=customer.id, name=customer.first_name or "there", is_new=created
            )
