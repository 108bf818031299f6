"""Many workers on one queue: no job is handed out twice, none is lost, dead workers' jobs return.

Each worker has its own engine (its own connections; for SQLite its own driver threads), as if
it were a separate process. Times are explicit `now` values: nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.clock import FakeClock
from storage.db import create_engine, create_session_factory
from storage.jobs import ClaimedJob, JobQueue
from storage.models import Job, JobState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


async def _schedule(database_url: str, count: int) -> set[int]:
    engine = create_engine(database_url)
    try:
        queue = JobQueue(engine, clock=FakeClock(NOW))
        async with create_session_factory(engine)() as session, session.begin():
            ids = {
                await queue.schedule(
                    "send_survey", NOW - timedelta(seconds=n % 60), {"n": n}, session=session
                )
                for n in range(count)
            }
        return ids
    finally:
        await engine.dispose()


async def _final_states(database_url: str) -> dict[int, tuple[JobState, int]]:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            rows = await session.execute(select(Job.id, Job.state, Job.attempts))
            return {row.id: (row.state, row.attempts) for row in rows}
    finally:
        await engine.dispose()


async def test_concurrent_claimers_hand_out_each_job_once(database_url: str) -> None:
    workers, jobs, batch = 12, 1200, 8
    ids = await _schedule(database_url, jobs)
    assert len(ids) == jobs

    claims: Counter[int] = Counter()
    in_flight: set[int] = set()
    retried: set[int] = set()
    overlaps: list[int] = []
    not_completed: list[int] = []

    async def work(number: int) -> int:
        engine = create_engine(database_url)
        queue = JobQueue(engine, clock=FakeClock(NOW))
        handled = 0
        try:
            while claimed := await queue.claim_due(NOW, batch, lease=LEASE, worker=f"w{number}"):
                for job in claimed:
                    if job.id in in_flight:
                        overlaps.append(job.id)
                    in_flight.add(job.id)
                    claims[job.id] += 1
                for job in claimed:
                    # Every 10th job fails once and is retried at once: the queue must hand it
                    # out again, exactly once more.
                    if job.payload["n"] % 10 == 0 and job.attempts == 1:
                        in_flight.discard(job.id)
                        retried.add(job.id)
                        ok = await queue.retry(job, NOW, "transient")
                    else:
                        in_flight.discard(job.id)
                        ok = await queue.complete(job)
                    if not ok:
                        not_completed.append(job.id)
                    handled += 1
            return handled
        finally:
            await engine.dispose()

    handled = await asyncio.gather(*(work(n) for n in range(workers)))

    assert overlaps == []
    assert not_completed == []
    assert set(claims) == ids  # none lost
    expected = {job_id: 2 if job_id in retried else 1 for job_id in ids}
    assert dict(claims) == expected  # none handed out twice
    assert len(retried) == jobs // 10
    assert sum(handled) == jobs + len(retried)
    assert sum(1 for count in handled if count) > 1, "the workers did not actually compete"

    final = await _final_states(database_url)
    assert final == {job_id: (JobState.DONE, expected[job_id]) for job_id in ids}


async def test_dead_workers_jobs_are_claimed_again_after_the_lease(database_url: str) -> None:
    workers, jobs = 8, 400
    ids = await _schedule(database_url, jobs)
    abandoned: dict[int, ClaimedJob] = {}

    async def first_round(number: int) -> None:
        engine = create_engine(database_url)
        queue = JobQueue(engine, clock=FakeClock(NOW))
        try:
            while batch := await queue.claim_due(NOW, 5, lease=LEASE, worker=f"a{number}"):
                for job in batch:
                    if job.payload["n"] % 7 == 3:
                        abandoned[job.id] = job  # the worker "dies" holding this job
                    else:
                        assert await queue.complete(job)
        finally:
            await engine.dispose()

    await asyncio.gather(*(first_round(n) for n in range(workers)))
    assert len(abandoned) == len([n for n in range(jobs) if n % 7 == 3])

    # Before the lease runs out nobody may take them; at expiry the survivors share them.
    second: Counter[int] = Counter()

    async def second_round(number: int) -> None:
        engine = create_engine(database_url)
        queue = JobQueue(engine, clock=FakeClock(NOW + LEASE))
        try:
            early = NOW + LEASE - timedelta(seconds=1)
            assert await queue.claim_due(early, 5, lease=LEASE, worker=f"b{number}") == []
            while batch := await queue.claim_due(NOW + LEASE, 5, lease=LEASE, worker=f"b{number}"):
                for job in batch:
                    second[job.id] += 1
                    assert job.attempts == 2
                    assert await queue.complete(job)
        finally:
            await engine.dispose()

    await asyncio.gather(*(second_round(n) for n in range(workers)))
    assert dict(second) == dict.fromkeys(abandoned, 1)

    # The dead workers come back to life, late: their leases are gone, they change nothing.
    engine = create_engine(database_url)
    try:
        queue = JobQueue(engine, clock=FakeClock(NOW + LEASE))
        for job in list(abandoned.values())[:20]:
            assert not await queue.complete(job)
            assert not await queue.fail(job, "late")
        async with create_session_factory(engine)() as session:
            states = await session.execute(
                select(Job.state, func.count()).group_by(Job.state).order_by(Job.state)
            )
            assert dict(states.all()) == {JobState.DONE: len(ids)}
    finally:
        await engine.dispose()
