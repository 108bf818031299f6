"""Customers arriving at the bot: who they are, and whether we have met them before."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.visits import SEND_SURVEY, send_job_key
from storage.jobs import JobQueue
from storage.models import Customer, Survey, SurveyState
from storage.repositories import CustomerRepository, TelegramProfile


@dataclass(frozen=True, slots=True)
class Arrival:
    customer_id: int
    name: str | None  # the first name, when known
    is_new: bool


# Built once: the locale middleware asks it of everyone's first update in a process.
_LANGUAGE_OF = select(Customer.language).where(
    Customer.telegram_user_id == bindparam("telegram_user_id")
)


class CustomerService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        jobs: JobQueue | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._jobs = jobs

    async def arrived(
        self,
        *,
        telegram_user_id: int,
        first_name: str | None,
        username: str | None,
        language: str | None,
    ) -> Arrival:
        """Record that this person started the bot (idempotent: a repeated /start is no harm);
        see `customer_started` for all that pressing Start means."""
        profile = TelegramProfile(
            user_id=telegram_user_id,
            first_name=first_name,
            username=username,
            language_code=language,
        )
        async with self._sessions.begin() as session:
            customer, created = await customer_started(
                session, profile, now=self._clock.now(), jobs=self._jobs
            )
            return Arrival(customer_id=customer.id, name=customer.first_name, is_new=created)

    async def language_of(self, telegram_user_id: int) -> str | None:
        """The language the customer chose (or their Telegram app's, kept when they came)."""
        async with self._sessions() as session:
            return await session.scalar(_LANGUAGE_OF, {"telegram_user_id": telegram_user_id})

    async def started_among(self, telegram_user_ids: Iterable[int]) -> set[int]:
        """Those of these people who have pressed Start (Telegram lets the bot reach only them)."""
        ids = list(telegram_user_ids)
        if not ids:
            return set()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Customer.telegram_user_id).where(
                    Customer.telegram_user_id.in_(ids), Customer.started_at.is_not(None)
                )
            )
            return {row for row in rows if row is not None}

    async def set_language(self, profile: TelegramProfile, language: str) -> None:
        """/language: from now on the customer reads ``language``."""
        async with self._sessions.begin() as session:
            customer, _ = await CustomerRepository(session).get_or_create_by_telegram(
                profile, now=self._clock.now()
            )
            await session.execute(
                update(Customer)
                .where(Customer.id == customer.id)
                .values(language=language)
                .execution_options(synchronize_session=False)
            )


async def customer_started(
    session: AsyncSession, profile: TelegramProfile, *, now: datetime, jobs: JobQueue | None
) -> tuple[Customer, bool]:
    """What pressing Start means, inside the caller's transaction; True when the customer is new.

    The person is a customer (created when new; `started_at` set the first time). If Telegram
    had said they blocked the bot, they are reachable again: pressing Start unblocks it. And,
    given the job queue, surveys that waited for them to start become sendable now.
    """
    customer, created = await CustomerRepository(session).get_or_create_by_telegram(
        profile, now=now
    )
    if customer.unreachable_at is not None:
        await session.execute(
            update(Customer)
            .where(Customer.id == customer.id)
            .values(unreachable_at=None)
            .execution_options(synchronize_session=False)
        )
    if jobs is not None:
        await release_waiting_surveys(session, jobs, customer.id, now)
    return customer, created


async def release_waiting_surveys(
    session: AsyncSession, jobs: JobQueue, customer_id: int, now: datetime
) -> int:
    """Give every waiting survey of the customer that is due (and not expired) a send job due
    now; return how many. Its own job ran while the customer had not started the bot and
    finished without sending (bot.surveys), or waits for a later retry: `JobQueue.ensure_due`
    revives or brings it forward. The sender re-checks the policy before it sends."""
    survey_ids = list(
        await session.scalars(
            select(Survey.id)
            .where(
                Survey.customer_id == customer_id,
                Survey.state == SurveyState.SCHEDULED,
                Survey.due_at <= now,
                or_(Survey.expires_at.is_(None), Survey.expires_at > now),
            )
            .order_by(Survey.due_at, Survey.id)
        )
    )
    for survey_id in survey_ids:
        await jobs.ensure_due(
            SEND_SURVEY,
            now,
            {"survey_id": survey_id},
            dedupe_key=send_job_key(survey_id),
            session=session,
        )
    return len(survey_ids)
