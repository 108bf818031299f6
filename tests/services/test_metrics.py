"""/metrics: Prometheus text; counters from the working code, gauges from the database."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.clock import FakeClock
from bot.dedupe import UpdateStats
from bot.metrics import Metrics
from bot.ratelimit import Bucket, LimiterStats, MemoryBudget, RedisBudget
from bot.scheduler import Scheduler
from bot.webhook import WebhookStats
from storage.db import create_engine
from storage.jobs import JobQueue
from storage.models import Case, CaseSeverity, CaseState, CaseTrigger
from tests.redis_server import redis_server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels); parsing fails on anything not in the format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics_for(engine: AsyncEngine, clock: FakeClock, **kwargs) -> Metrics:
    jobs = JobQueue(engine, clock=clock)
    values = {
        "updates": UpdateStats(),
        "limiter": LimiterStats(),
        "scheduler": Scheduler(jobs, clock),
        "in_flight": lambda: 0,
        "jobs": jobs,
        "engine": engine,
        "clock": clock,
        **kwargs,
    }
    return Metrics(**values)


async def test_counters_are_read_from_the_stats_the_code_keeps(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    updates = UpdateStats(handled=7, duplicates=2, failed=1, seconds=4.5)
    limiter = LimiterStats(sent=40, too_many_requests=3, retried=5, gave_up=1, refused=4)
    webhook = WebhookStats(accepted=9, unauthorized=2)
    metrics = metrics_for(
        engine, clock, updates=updates, limiter=limiter, webhook=webhook, in_flight=lambda: 3
    )

    found = samples((await metrics.render()).decode())

    assert found[("hearback_updates_total", (("result", "handled"),))] == 7
    assert found[("hearback_updates_total", (("result", "duplicate"),))] == 2
    assert found[("hearback_updates_total", (("result", "failed"),))] == 1
    assert found[("hearback_updates_in_flight", ())] == 3
    assert found[("hearback_update_seconds_count", ())] == 8
    assert found[("hearback_update_seconds_sum", ())] == 4.5
    assert found[("hearback_telegram_sends_total", (("result", "ok"),))] == 40
    assert found[("hearback_telegram_sends_total", (("result", "refused"),))] == 4
    assert found[("hearback_telegram_sends_total", (("result", "gave_up"),))] == 1
    assert found[("hearback_telegram_429_total", ())] == 3
    assert found[("hearback_telegram_retries_total", ())] == 5
    assert found[("hearback_webhook_requests_total", (("result", "accepted"),))] == 9
    assert found[("hearback_webhook_requests_total", (("result", "unauthorized"),))] == 2

    # Live objects, not copies: what happens next shows in the next scrape.
    updates.handled += 1
    limiter.too_many_requests += 1
    found = samples((await metrics.render()).decode())
    assert found[("hearback_updates_total", (("result", "handled"),))] == 8
    assert found[("hearback_telegram_429_total", ())] == 4


async def test_queue_depth_and_lag_and_cases_are_read_from_the_database(
    engine: AsyncEngine, session_factory: async_sessionmaker, clock: FakeClock
) -> None:
    jobs = JobQueue(engine, clock=clock)
    now = clock.now()
    await jobs.schedule("send_survey", now - timedelta(minutes=5), {})
    await jobs.schedule("send_survey", now - timedelta(minutes=1), {})
    await jobs.schedule("send_survey", now + timedelta(hours=2), {})
    hour = timedelta(hours=1)
    async with session_factory.begin() as session:
        session.add_all(
            [
                # open, first answer due in an hour: open, on time
                Case(
                    state=CaseState.OPEN,
                    severity=CaseSeverity.MEDIUM,
                    trigger=CaseTrigger.LOW_SCORE,
                    first_response_due_at=now + hour,
                    created_at=now - hour,
                ),
                # taken and answered, but its resolution was due an hour ago: overdue
                Case(
                    state=CaseState.TAKEN,
                    severity=CaseSeverity.MEDIUM,
                    trigger=CaseTrigger.LOW_SCORE,
                    first_response_due_at=now - 2 * hour,
                    first_responded_at=now - 3 * hour,
                    resolution_due_at=now - hour,
                    created_at=now - 4 * hour,
                ),
                # resolved long ago, its deadlines long past: neither open nor overdue
                Case(
                    state=CaseState.CONFIRMED,
                    severity=CaseSeverity.LOW,
                    trigger=CaseTrigger.LOW_SCORE,
                    first_response_due_at=now - 30 * hour,
                    resolution_due_at=now - 20 * hour,
                    created_at=now - 40 * hour,
                ),
            ]
        )
    metrics = metrics_for(engine, clock, jobs=jobs)

    found = samples((await metrics.render()).decode())

    assert found[("hearback_database_up", ())] == 1
    assert found[("hearback_job_queue", (("state", "due"),))] == 2
    assert found[("hearback_job_queue", (("state", "scheduled"),))] == 1
    assert found[("hearback_job_queue", (("state", "running"),))] == 0
    assert found[("hearback_job_queue_lag_seconds", ())] == 300
    assert found[("hearback_cases_open", ())] == 2
    assert found[("hearback_cases_overdue", ())] == 1

    clock.advance(minutes=10)  # read at scrape time: the lag grows with the clock
    found = samples((await metrics.render()).decode())
    assert found[("hearback_job_queue_lag_seconds", ())] == 900
    assert found[("hearback_cases_overdue", ())] == 1


async def test_without_the_database_the_counters_are_still_served(
    tmp_path, clock: FakeClock
) -> None:
    # A SQLite file in a directory that does not exist: every query fails.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/hearback.db")
    try:
        metrics = metrics_for(engine, clock, updates=UpdateStats(handled=5))
        found = samples((await metrics.render()).decode())
    finally:
        await engine.dispose()
    assert found[("hearback_database_up", ())] == 0
    assert found[("hearback_updates_total", (("result", "handled"),))] == 5
    assert not any(name == "hearback_cases_open" for name, _ in found)


async def test_a_worker_that_lost_the_shared_send_budget_shows_it(
    engine: AsyncEngine, clock: FakeClock, tmp_path
) -> None:
    overall = [Bucket("overall", 3, 29.5)]
    alone = metrics_for(engine, clock, budget=MemoryBudget())
    assert not any(
        n == "hearback_send_budget_shared" for n, _ in samples((await alone.render()).decode())
    )

    async with redis_server(tmp_path) as url:
        budget = RedisBudget.from_url(url, 123456)
        metrics = metrics_for(engine, clock, budget=budget)
        await budget.take(overall)
        found = samples((await metrics.render()).decode())
        assert found[("hearback_send_budget_shared", ())] == 1
    try:
        await budget.take(overall)  # Redis is gone: this worker falls back to its share
        found = samples((await metrics.render()).decode())
        assert found[("hearback_send_budget_shared", ())] == 0
    finally:
        await budget.close()
