"""An admin's test survey (/test_survey): the survey a customer gets, sent to the admin at once.

A test survey is an ordinary visit and survey whose visit id starts with `TEST_VISIT_PREFIX`, so
statistics can leave test answers out (`is_test_visit`). It ignores quiet hours and the cooldown,
not /stop; it sends no reminder and expires like any survey. Every tap and word after it goes
through the customer's own conversation (a low score opens a case, as for a customer).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.customers import customer_started
from bot.policy import expires_at
from bot.surveys import MessageSender, Outcome, SurveyService
from bot.texts import Texts
from bot.visits import EXPIRE_SURVEY, VisitService, expire_job_key
from storage.jobs import JobQueue
from storage.models import Survey, SurveyState, Visit, VisitSource
from storage.repositories import TelegramProfile
from storage.test_visits import TEST_VISIT_PREFIX

__all__ = [
    "TEST_VISIT_PREFIX",
    "PreparedTestSurvey",
    "Refusal",
    "TestSurveyService",
    "is_test_visit",
    "make_test_visit_id",
]

# Visit ids of test surveys start with TEST_VISIT_PREFIX (real visit ids come from the business,
# and "link:" from QR scans); storage.test_visits holds it, with its SQL.


def make_test_visit_id(telegram_user_id: int, message_id: int, sent_at: datetime) -> str:
    """The visit id of a test survey: the /test_survey message that asked for it, so a command
    Telegram delivers twice makes one survey."""
    return f"{TEST_VISIT_PREFIX}{telegram_user_id}:{message_id}:{int(sent_at.timestamp())}"


def is_test_visit(visit_id: str) -> bool:
    """Whether a visit (by its `Visit.external_id`) is an admin's test survey."""
    return visit_id.startswith(TEST_VISIT_PREFIX)


class Refusal(enum.StrEnum):
    STOPPED = "stopped"  # the admin, as a customer, said /stop


@dataclass(frozen=True, slots=True)
class PreparedTestSurvey:
    """A test survey ready to send, or why there is none."""

    survey_id: int | None
    #: False when the visit was recorded before (a re-delivered command).
    created: bool
    refusal: Refusal | None = None

    @property
    def stopped(self) -> bool:
        return self.refusal is Refusal.STOPPED


class TestSurveyService:
    """An admin's test survey: recorded like a visit, sent at once by `SurveyService`.

    The survey is sent by a `SurveyService` of its own whose policy has no cooldown and no
    reminder; everything else (the message, the buttons, the 403/400 handling, recording it
    as sent) is the customers' path. No send job is queued, so the scheduler, which applies
    the real policy, never races to send (or skip) it. Policy and scale are read from the
    app's services on each call, so settings changed in the chat apply.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        surveys: SurveyService,
        visits: VisitService,
        clock: Clock,
        bot: MessageSender,
        words: Texts,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._surveys = surveys
        self._visits = visits
        self._clock = clock
        self._bot = bot
        self._words = words

    async def prepare(
        self,
        person: TelegramProfile,
        *,
        location: str | None,
        message_id: int,
        sent_at: datetime,
    ) -> PreparedTestSurvey:
        """Record the admin as a customer who has started the bot, and a test visit with its
        survey (scheduled, due now) and expiry job, in one transaction."""
        visit_id = make_test_visit_id(person.user_id, message_id, sent_at)
        now = self._clock.now()
        policy = self._surveys.policy
        async with self._sessions.begin() as session:
            existing = await session.scalar(
                select(Survey.id)
                .join(Visit, Visit.id == Survey.visit_id)
                .where(Visit.external_id == visit_id)
            )
            if existing is not None:
                return PreparedTestSurvey(existing, created=False)
            customer, _ = await customer_started(session, person, now=now, jobs=None)
            if customer.opted_out_at is not None:
                return PreparedTestSurvey(None, created=False, refusal=Refusal.STOPPED)
            visit = Visit(
                external_id=visit_id,
                customer_id=customer.id,
                location=location,
                occurred_at=now,
                source=VisitSource.LINK,
                created_at=now,
            )
            session.add(visit)
            await session.flush()
            survey = Survey(
                visit_id=visit.id,
                customer_id=customer.id,
                state=SurveyState.SCHEDULED,
                scale=self._visits.scale,
                due_at=now,
                expires_at=expires_at(policy, due_at=now),
                created_at=now,
            )
            session.add(survey)
            await session.flush()
            await self._jobs.schedule(
                EXPIRE_SURVEY,
                survey.expires_at or now,
                {"survey_id": survey.id},
                dedupe_key=expire_job_key(survey.id),
                session=session,
            )
            return PreparedTestSurvey(survey.id, created=True)

    async def send(self, survey_id: int) -> Outcome:
        """Send the prepared survey now, through the customers' own sending code."""
        policy = replace(self._surveys.policy, cooldown=timedelta(0), reminder=timedelta(0))
        sender = SurveyService(
            self._sessions, self._jobs, policy, self._clock, self._bot, words=self._words
        )
        return await sender.send(survey_id)
