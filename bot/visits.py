"""Visits come in (HTTP API, deep link, CSV); each gets its survey decided and scheduled.

This is the one way in for a visit, whatever brought it: the API, a scanned QR code and a CSV
import all call `VisitService.record`, so the three are idempotent in the same way (on the
business's own visit id) and follow the same survey policy.

One visit is one transaction: the visit, its customer, its survey (scheduled, or skipped with the
reason) and the job that will send it are written together or not at all, so a crash never
leaves a survey without its job or a job without its survey.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.policy import SurveyPolicy, expires_at, skip_reason, survey_due_at
from storage.jobs import JobQueue
from storage.models import Customer, Survey, SurveyScale, SurveyState, Visit, VisitSource

SEND_SURVEY = "send_survey"
EXPIRE_SURVEY = "expire_survey"

# Surveys that asked, or will ask, the customer something: these count for the cooldown.
_ASKING_STATES = (
    SurveyState.SCHEDULED,
    SurveyState.SENT,
    SurveyState.ANSWERED,
    SurveyState.EXPIRED,
)


def send_job_key(survey_id: int) -> str:
    return f"survey:{survey_id}:send"


def expire_job_key(survey_id: int) -> str:
    return f"survey:{survey_id}:expire"


@dataclass(frozen=True, slots=True)
class CustomerIn:
    """Who was served, as the business knows them. At least one of ref and telegram_user_id."""

    ref: str | None = None
    telegram_user_id: int | None = None
    name: str | None = None
    language: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class VisitIn:
    visit_id: str
    customer: CustomerIn
    occurred_at: datetime
    source: VisitSource
    location: str | None = None
    staff: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class VisitView:
    """A visit and where its survey stands: what the API answers and the importer counts."""

    visit_id: str
    created: bool
    customer_ref: str | None
    location: str | None
    staff: str | None
    service: str | None
    occurred_at: datetime
    source: VisitSource
    survey_state: SurveyState | None
    survey_due_at: datetime | None
    survey_reason: str | None


class VisitService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        policy: SurveyPolicy,
        clock: Clock,
        scale: SurveyScale = SurveyScale.CSAT,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self.policy = policy
        self._clock = clock
        self.scale = scale

    async def record(self, visit: VisitIn) -> VisitView:
        """Record a visit once. The same visit_id again answers what was recorded the first time
        (created=False), even when two deliveries of it race each other."""
        try:
            async with self._sessions.begin() as session:
                return await self._record_in(session, visit)
        except IntegrityError:
            # A concurrent delivery of the same visit (or of a new customer) won the race: what
            # it wrote is what this call should answer.
            async with self._sessions.begin() as session:
                return await self._record_in(session, visit)

    async def record_many(self, visits: Sequence[VisitIn]) -> list[VisitView]:
        """Record several visits in one transaction (batch API, CSV import): much faster than one
        each. A visit id repeated within the batch is recorded once; if anything conflicts with a
        writer running at the same time, the batch falls back to one transaction per visit."""
        try:
            async with self._sessions.begin() as session:
                return [await self._record_in(session, visit) for visit in visits]
        except IntegrityError:
            return [await self.record(visit) for visit in visits]

    async def get(self, visit_id: str) -> VisitView | None:
        async with self._sessions() as session:
            row = await self._existing(session, visit_id)
            return None if row is None else self._view(*row, created=False)

    # -- inside one transaction --------------------------------------------------------------

    async def _record_in(self, session: AsyncSession, incoming: VisitIn) -> VisitView:
        existing = await self._existing(session, incoming.visit_id)
        if existing is not None:
            return self._view(*existing, created=False)

        now = self._clock.now()
        customer = await self._customer_for(session, incoming.customer, now)
        visit = Visit(
            external_id=incoming.visit_id,
            customer_id=customer.id,
            location=incoming.location,
            staff=incoming.staff,
            service=incoming.service,
            occurred_at=incoming.occurred_at,
            source=incoming.source,
            created_at=now,
        )
        session.add(visit)
        await session.flush()
        survey = await self._decide_survey(session, customer, visit, now)
        return self._view(visit, customer.external_ref, survey, created=True)

    async def _decide_survey(
        self, session: AsyncSession, customer: Customer, visit: Visit, now: datetime
    ) -> Survey:
        policy = self.policy
        due = survey_due_at(policy, visit.occurred_at, policy.zone_for(customer.timezone))
        reason = skip_reason(
            policy,
            due_at=due,
            last_surveyed_at=await self._nearest_survey(session, customer.id, due),
            opted_out=customer.opted_out_at is not None,
            unreachable=customer.unreachable_at is not None,
            erased=customer.erased_at is not None,
        )
        survey = Survey(
            visit_id=visit.id,
            customer_id=customer.id,
            state=SurveyState.SKIPPED if reason else SurveyState.SCHEDULED,
            scale=self.scale,
            due_at=due,
            expires_at=None if reason else expires_at(policy, due_at=due),
            closed_at=now if reason else None,
            state_reason=reason.value if reason else None,
            created_at=now,
        )
        session.add(survey)
        await session.flush()
        if reason is None:
            # Both jobs commit with the survey. The expiry job fires at the earliest moment the
            # survey could expire; whoever sends the survey moves `expires_at` later, and the
            # expiry job then checks the survey's own time rather than trusting its due time.
            await self._jobs.schedule(
                SEND_SURVEY,
                due,
                {"survey_id": survey.id},
                dedupe_key=send_job_key(survey.id),
                session=session,
            )
            await self._jobs.schedule(
                EXPIRE_SURVEY,
                survey.expires_at,
                {"survey_id": survey.id},
                dedupe_key=expire_job_key(survey.id),
                session=session,
            )
        return survey

    async def _nearest_survey(
        self, session: AsyncSession, customer_id: int, due: datetime
    ) -> datetime | None:
        """When the customer's closest other survey asked (or will ask), within the cooldown on
        either side of `due`; None when there is none."""
        cooldown = self.policy.cooldown
        if not cooldown:
            return None
        rows = await session.execute(
            select(Survey.sent_at, Survey.due_at).where(
                Survey.customer_id == customer_id,
                Survey.state.in_(_ASKING_STATES),
                or_(
                    Survey.due_at.between(due - cooldown, due + cooldown),
                    Survey.sent_at.between(due - cooldown, due + cooldown),
                ),
            )
        )
        moments = [sent_at or due_at for sent_at, due_at in rows]
        return min(moments, key=lambda moment: abs(moment - due), default=None)

    async def _customer_for(
        self, session: AsyncSession, incoming: CustomerIn, now: datetime
    ) -> Customer:
        """The customer this visit belongs to, found by Telegram id or by the business's ref,
        created when new; what the business tells us fills in what we do not know yet."""
        if incoming.telegram_user_id is None and incoming.ref is None:
            raise ValueError("a visit needs a customer ref or a telegram_user_id")
        customer = None
        if incoming.telegram_user_id is not None:
            customer = await session.scalar(
                select(Customer).where(Customer.telegram_user_id == incoming.telegram_user_id)
            )
        if customer is None and incoming.ref is not None:
            customer = await session.scalar(
                select(Customer).where(Customer.external_ref == incoming.ref)
            )
        if customer is None:
            customer = Customer(
                external_ref=incoming.ref,
                telegram_user_id=incoming.telegram_user_id,
                first_name=incoming.name,
                language=incoming.language,
                timezone=incoming.timezone,
                created_at=now,
            )
            session.add(customer)
            await session.flush()
            return customer
        # Fill gaps only: what the customer told the bot themselves (name, language) wins.
        if customer.external_ref is None and incoming.ref is not None:
            customer.external_ref = incoming.ref
        if customer.telegram_user_id is None and incoming.telegram_user_id is not None:
            customer.telegram_user_id = incoming.telegram_user_id
        customer.first_name = customer.first_name or incoming.name
        customer.language = customer.language or incoming.language
        customer.timezone = customer.timezone or incoming.timezone
        await session.flush()
        return customer

    async def _existing(
        self, session: AsyncSession, visit_id: str
    ) -> tuple[Visit, str | None, Survey | None] | None:
        row = (
            await session.execute(
                select(Visit, Customer.external_ref, Survey)
                .join(Customer, Customer.id == Visit.customer_id)
                .outerjoin(Survey, Survey.visit_id == Visit.id)
                .where(Visit.external_id == visit_id)
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    @staticmethod
    def _view(
        visit: Visit, customer_ref: str | None, survey: Survey | None, *, created: bool
    ) -> VisitView:
        return VisitView(
            visit_id=visit.external_id,
            created=created,
            customer_ref=customer_ref,
            location=visit.location,
            staff=visit.staff,
            service=visit.service,
            occurred_at=visit.occurred_at,
            source=visit.source,
            survey_state=survey.state if survey else None,
            survey_due_at=survey.due_at if survey else None,
            survey_reason=survey.state_reason if survey else None,
        )
