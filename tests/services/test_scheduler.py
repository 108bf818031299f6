"""The scheduler on a real job queue: dispatch by kind, concurrency, retries and giving up, leases,
waking, and a shutdown that finishes or hands back every job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.scheduler import Scheduler, SchedulerConfig, run_to_completion
from storage.jobs import ClaimedJob, JobQueue
from storage.models import Job, JobState


@pytest.fixture
def jobs(engine, clock) -> JobQueue:
    return JobQueue(engine, clock=clock)


def make(jobs: JobQueue, clock, **config: Any) -> Scheduler:
    return Scheduler(jobs, clock, SchedulerConfig(**config), worker="test", jitter=lambda: 0.0)


async def all_jobs(session_factory) -> list[Job]:
    async with session_factory() as session:
        return list(await session.scalars(select(Job).order_by(Job.id)))


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for ``predicate`` to come true."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never came true")


async def test_each_job_goes_to_the_handler_of_its_kind_and_is_completed(
    jobs, clock, session_factory
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def record(job: ClaimedJob) -> None:
        seen.append((job.kind, job.payload))

    scheduler = make(jobs, clock)
    scheduler.register("alpha", record)
    scheduler.register("beta", record)
    await jobs.schedule("alpha", clock.now(), {"n": 1})
    await jobs.schedule("beta", clock.now(), {"n": 2})
    await jobs.schedule("alpha", clock.now() + timedelta(hours=1), {"n": 3})  # not due yet

    assert await scheduler.run_due() == 2

    assert sorted(seen, key=lambda item: item[1]["n"]) == [("alpha", {"n": 1}), ("beta", {"n": 2})]
    states = [job.state for job in await all_jobs(session_factory)]
    assert states == [JobState.DONE, JobState.DONE, JobState.PENDING]
    assert scheduler.kinds == {"alpha", "beta"}


async def test_a_kind_has_one_handler(jobs, clock) -> None:
    scheduler = make(jobs, clock)

    async def handler(job: ClaimedJob) -> None:
        return None

    scheduler.register("alpha", handler)
    with pytest.raises(ValueError, match="already has a handler"):
        scheduler.register("alpha", handler)


async def test_a_job_of_an_unknown_kind_fails_with_that_said(jobs, clock, session_factory) -> None:
    scheduler = make(jobs, clock)
    await jobs.schedule("mystery", clock.now(), {})
    await scheduler.run_due()
    [job] = await all_jobs(session_factory)
    assert job.state is JobState.FAILED
    assert "no handler is registered for job kind 'mystery'" in job.last_error


async def test_a_failing_job_is_retried_with_growing_pauses_then_given_up(
    jobs, clock, session_factory
) -> None:
    given_up: list[tuple[int, str]] = []

    async def broken(job: ClaimedJob) -> None:
        raise RuntimeError(f"boom {job.attempts}")

    async def on_give_up(job: ClaimedJob, error: BaseException) -> None:
        given_up.append((job.attempts, str(error)))

    scheduler = make(jobs, clock, attempts=3, retry_delay=timedelta(minutes=2))
    scheduler.register("fragile", broken, on_give_up=on_give_up)
    start = clock.now()
    await jobs.schedule("fragile", start, {})

    await scheduler.run_due()
    [job] = await all_jobs(session_factory)
    # jitter 0 gives half the ceiling: 1 minute after the first failure, 2 after the second.
    assert (job.state, job.attempts, job.due_at) == (
        JobState.PENDING,
        1,
        start + timedelta(minutes=1),
    )
    assert "RuntimeError: boom 1" in job.last_error
    assert "Traceback" in job.last_error
    assert await scheduler.run_due() == 0  # not due again yet

    clock.advance(minutes=1)
    await scheduler.run_due()
    [job] = await all_jobs(session_factory)
    assert (job.state, job.due_at) == (JobState.PENDING, clock.now() + timedelta(minutes=2))

    clock.advance(minutes=2)
    await scheduler.run_due()
    [job] = await all_jobs(session_factory)
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert "boom 3" in job.last_error
    assert given_up == [(3, "boom 3")]
    assert (scheduler.stats.retried, scheduler.stats.failed) == (2, 1)


def test_backoff_doubles_up_to_the_ceiling_with_at_least_half_of_it() -> None:
    config = SchedulerConfig(retry_delay=timedelta(minutes=1), max_retry_delay=timedelta(hours=1))
    assert config.backoff(1, 0.0) == timedelta(seconds=30)
    assert config.backoff(1, 0.999) < timedelta(minutes=1)
    assert config.backoff(3, 0.0) == timedelta(minutes=2)
    assert config.backoff(40, 0.0) == timedelta(minutes=30)


async def test_a_job_whose_workers_keep_dying_is_given_up_without_running_again(
    jobs, clock, session_factory
) -> None:
    ran: list[int] = []
    given_up: list[str] = []

    async def handler(job: ClaimedJob) -> None:
        ran.append(job.attempts)

    async def on_give_up(job: ClaimedJob, error: BaseException) -> None:
        given_up.append(str(error))

    lease = timedelta(minutes=1)
    scheduler = make(jobs, clock, attempts=2, lease=lease)
    scheduler.register("deadly", handler, on_give_up=on_give_up)
    await jobs.schedule("deadly", clock.now(), {})
    for _ in range(2):  # two workers claim it and die (never settle it)
        assert await jobs.claim_due(clock.now(), 1, lease=lease, worker="doomed")
        clock.advance(lease)

    await scheduler.run_due()

    assert ran == []
    assert given_up == ["abandoned by its worker 2 times"]
    [job] = await all_jobs(session_factory)
    assert job.state is JobState.FAILED


async def test_no_more_jobs_run_at_once_than_the_concurrency_allows(
    jobs, clock, session_factory
) -> None:
    running = 0
    most = 0
    release = asyncio.Event()

    async def slow(job: ClaimedJob) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    scheduler = make(jobs, clock, concurrency=3, batch=10, poll_interval=0.05)
    scheduler.register("slow", slow)
    for n in range(10):
        await jobs.schedule("slow", clock.now(), {"n": n})
    scheduler.start()
    try:
        await wait_until(lambda: running == 3)
        await asyncio.sleep(0.2)  # give it every chance to over-claim
        assert most == 3
        release.set()
        await wait_until(lambda: scheduler.stats.completed == 10)
    finally:
        await scheduler.shutdown(1.0)
    assert most == 3
    assert {job.state for job in await all_jobs(session_factory)} == {JobState.DONE}


async def test_wake_runs_a_newly_due_job_before_the_idle_pause_ends(jobs, clock) -> None:
    done = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        done.set()

    scheduler = make(jobs, clock, poll_interval=30.0)
    scheduler.register("now", handler)
    scheduler.start()
    try:
        await asyncio.sleep(0.1)  # the loop found nothing and is idling for 30 s
        await jobs.schedule("now", clock.now(), {})
        scheduler.wake()
        async with asyncio.timeout(2):
            await done.wait()
    finally:
        await scheduler.shutdown(1.0)


async def test_the_lease_is_renewed_while_a_long_job_runs(jobs, clock) -> None:
    lease = timedelta(seconds=0.3)
    started = asyncio.Event()
    finish = asyncio.Event()

    async def long(job: ClaimedJob) -> None:
        started.set()
        await finish.wait()

    scheduler = make(jobs, clock, lease=lease)
    scheduler.register("long", long)
    await jobs.schedule("long", clock.now(), {})
    run = asyncio.create_task(scheduler.run_due())
    await started.wait()
    claimed_at = clock.now()
    clock.advance(seconds=0.2)
    await asyncio.sleep(0.25)  # the renewal (every 0.1 s) moves the lease to now + 0.3 s
    clock.advance(seconds=0.2)

    # Past the first lease's end, but not the renewed one: nobody else may take the job.
    assert clock.now() > claimed_at + lease
    assert await jobs.claim_due(clock.now(), 1, lease=lease, worker="other") == []
    finish.set()
    await run
    assert scheduler.stats.completed == 1
    assert scheduler.stats.lost_leases == 0


async def test_shutdown_lets_quick_jobs_finish(jobs, clock, session_factory) -> None:
    async def quick(job: ClaimedJob) -> None:
        await asyncio.sleep(0.2)

    scheduler = make(jobs, clock, poll_interval=0.05)
    scheduler.register("quick", quick)
    for _ in range(5):
        await jobs.schedule("quick", clock.now(), {})
    scheduler.start()
    await wait_until(lambda: scheduler.in_flight == 5)
    await scheduler.shutdown(grace=5.0)
    assert {job.state for job in await all_jobs(session_factory)} == {JobState.DONE}


async def test_shutdown_hands_jobs_that_do_not_finish_back_to_the_queue(
    jobs, clock, session_factory
) -> None:
    cancelled = asyncio.Event()

    async def stuck(job: ClaimedJob) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler = make(jobs, clock, poll_interval=0.05)
    scheduler.register("stuck", stuck)
    await jobs.schedule("stuck", clock.now(), {})
    scheduler.start()
    await wait_until(lambda: scheduler.in_flight == 1)

    await scheduler.shutdown(grace=0.1)

    assert cancelled.is_set()
    [job] = await all_jobs(session_factory)
    # Pending and due at once, and this claim does not count as an attempt.
    assert (job.state, job.attempts, job.available_at) == (JobState.PENDING, 0, job.due_at)
    assert scheduler.stats.released == 1


async def test_the_loop_survives_a_database_that_is_away_for_a_while(jobs, clock) -> None:
    class Flaky(JobQueue):
        failures = 2

        async def claim_due(self, *args: Any, **kwargs: Any) -> list[ClaimedJob]:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database restarting")
            return await super().claim_due(*args, **kwargs)

    flaky = Flaky(jobs._engine, clock=clock)
    done = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        done.set()

    scheduler = make(flaky, clock, poll_interval=0.02)
    scheduler.register("work", handler)
    await flaky.schedule("work", clock.now(), {})
    scheduler.start()
    try:
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        await scheduler.shutdown(1.0)
    assert flaky.failures == 0


async def test_run_to_completion_finishes_the_write_even_when_cancelled() -> None:
    written: list[str] = []

    async def write() -> None:
        await asyncio.sleep(0.05)
        written.append("sent")

    async def job() -> None:
        await run_to_completion(write())
        written.append("after")

    task = asyncio.create_task(job())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert written == ["sent"]
