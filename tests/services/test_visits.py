"""Recording visits: idempotent on the visit id, the survey scheduled by policy or skipped with
the reason, and its jobs written in the same transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.policy import SurveyPolicy
from bot.values import QuietHours
from bot.visits import SEND_SURVEY, CustomerIn, VisitIn, VisitService, send_job_key
from storage.jobs import JobQueue
from storage.models import Customer, Job, SurveyState, VisitSource

NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def service(session_factory, engine, clock) -> VisitService:
    policy = SurveyPolicy(quiet_hours=QuietHours.off())
    return VisitService(session_factory, JobQueue(engine, clock=clock), policy, clock)


def visit(visit_id: str, ref: str = "c-1", at: datetime = NOON, **kwargs) -> VisitIn:
    return VisitIn(
        visit_id=visit_id,
        customer=CustomerIn(ref=ref, name="Anna"),
        occurred_at=at,
        source=VisitSource.API,
        **kwargs,
    )


async def test_a_new_visit_schedules_its_survey_and_the_send_job(service, session) -> None:
    recorded = await service.record(visit("v1", location="Downtown"))
    assert recorded.created
    assert recorded.survey_state is SurveyState.SCHEDULED
    assert recorded.survey_due_at == NOON + timedelta(hours=2)
    job = await session.scalar(select(Job).where(Job.kind == SEND_SURVEY))
    assert job.due_at == NOON + timedelta(hours=2)
    assert job.dedupe_key.startswith("survey:")


async def test_the_same_visit_id_again_changes_nothing(service, session) -> None:
    first = await service.record(visit("v1"))
    again = await service.record(visit("v1", at=NOON + timedelta(hours=5)))
    assert not again.created
    assert again.survey_due_at == first.survey_due_at
    assert await session.scalar(select(func.count()).select_from(Job)) == 2  # send + expire


async def test_the_same_visit_arriving_twice_at_once_is_recorded_once(service, session) -> None:
    results = await asyncio.gather(*(service.record(visit("v9", ref="new")) for _ in range(4)))
    assert sum(result.created for result in results) == 1
    assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_a_second_visit_within_the_cooldown_is_skipped_with_the_reason(service) -> None:
    await service.record(visit("v1"))
    later = await service.record(visit("v2", at=NOON + timedelta(days=3)))
    assert later.survey_state is SurveyState.SKIPPED
    assert later.survey_reason == "cooldown"
    after = await service.record(visit("v3", at=NOON + timedelta(days=31)))
    assert after.survey_state is SurveyState.SCHEDULED


async def test_an_opted_out_customer_is_not_asked(service, session, clock) -> None:
    await service.record(visit("v1", ref="quiet"))
    customer = await session.scalar(select(Customer).where(Customer.external_ref == "quiet"))
    customer.opted_out_at = clock.now()
    await session.commit()
    recorded = await service.record(visit("v2", ref="quiet", at=NOON + timedelta(days=40)))
    assert recorded.survey_state is SurveyState.SKIPPED
    assert recorded.survey_reason == "opted_out"


async def test_a_batch_is_recorded_in_one_go_and_repeats_inside_it_count_once(service) -> None:
    results = await service.record_many(
        [visit("b1", ref="x"), visit("b2", ref="y"), visit("b1", ref="x")]
    )
    assert [r.created for r in results] == [True, True, False]
    assert (await service.get("b2")).customer_ref == "y"
    assert await service.get("missing") is None


async def test_the_telegram_id_joins_a_customer_known_by_ref(service, session) -> None:
    await service.record(visit("v1", ref="r-7"))
    await service.record(
        VisitIn(
            visit_id="v2",
            customer=CustomerIn(ref="r-7", telegram_user_id=555),
            occurred_at=NOON + timedelta(days=60),
            source=VisitSource.API,
        )
    )
    customers = (await session.scalars(select(Customer))).all()
    assert [(c.external_ref, c.telegram_user_id) for c in customers] == [("r-7", 555)]


async def test_the_send_job_key_is_stable(service, session) -> None:
    await service.record(visit("v1"))
    job = await session.scalar(select(Job).where(Job.kind == SEND_SURVEY))
    assert job.dedupe_key == send_job_key(job.payload["survey_id"])
