"""The roll-up's job: scheduled once per slot whatever the workers, run at start, and each run
schedules the next; /stats takes whole past days from what it built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import FakeClock
from bot.scheduler import Scheduler, SchedulerConfig
from bot.stats_rollup import STATS_ROLLUP_JOB, StatsRollup, slot_of
from storage.jobs import JobQueue
from storage.models import Job, JobState
from storage.stats_rollup import coverage
from tests.services.test_stats_reference import NOW, seed

ZONE = ZoneInfo("Europe/Berlin")


async def test_the_job_builds_the_roll_up_at_start_then_runs_every_slot(
    engine, session_factory
) -> None:
    await seed(session_factory, 11)
    clock = FakeClock(NOW)
    jobs = JobQueue(engine, clock=clock)
    every = timedelta(minutes=10)
    workers = [
        StatsRollup(session_factory, clock, zone=lambda: ZONE, every=every, jobs=jobs)
        for _ in range(2)
    ]
    scheduler = Scheduler(jobs, clock, SchedulerConfig(), worker="test", jitter=lambda: 0.0)
    workers[0].register(scheduler)
    for worker in workers:  # two workers starting: one job
        await worker.start()

    assert await scheduler.run_due() == 1
    async with session_factory() as session:
        cover = await coverage(session, ZONE)
        rows = list(await session.scalars(select(Job).where(Job.kind == STATS_ROLLUP_JOB)))
    assert cover.end == NOW.astimezone(ZONE).date()
    assert cover.plan(datetime(2000, 1, 1, tzinfo=UTC), NOW).rolled_days > 100
    assert sorted((job.state, job.due_at) for job in rows) == [
        (JobState.DONE, slot_of(NOW, every)),
        (JobState.PENDING, slot_of(NOW, every) + every),
    ]
    assert await scheduler.run_due() == 0  # the next slot is not due yet
    clock.advance(every)
    assert await scheduler.run_due() == 1


async def test_a_new_time_zone_schedules_a_rebuild_at_once(engine, session_factory) -> None:
    clock = FakeClock(NOW)
    jobs = JobQueue(engine, clock=clock)
    zone = {"now": ZONE}
    rollup = StatsRollup(session_factory, clock, zone=lambda: zone["now"], jobs=jobs)
    rollup.apply(timedelta(minutes=10))  # nothing changed: nothing scheduled
    await rollup.settled()
    zone["now"] = ZoneInfo("Asia/Shanghai")
    rollup.apply(timedelta(minutes=10))
    await rollup.settled()
    async with session_factory() as session:
        due = list(await session.scalars(select(Job.due_at).where(Job.kind == STATS_ROLLUP_JOB)))
    assert due == [NOW]
