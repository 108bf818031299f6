"""The job queue's protocol, one worker at a time (concurrency has its own module)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FakeClock
from storage.jobs import ClaimedJob, JobQueue
from storage.models import Job, JobState

LEASE = timedelta(minutes=5)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def queue(engine: AsyncEngine, clock: FakeClock) -> JobQueue:
    return JobQueue(engine, clock=clock)


async def _claim_one(queue: JobQueue, now: datetime, worker: str = "w1") -> ClaimedJob:
    jobs = await queue.claim_due(now, 10, lease=LEASE, worker=worker)
    assert len(jobs) == 1, jobs
    return jobs[0]


async def _state(queue: JobQueue, job_id: int) -> Job:
    job = await queue.get(job_id)
    assert job is not None
    return job


async def test_schedule_claim_complete(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    job_id = await queue.schedule("send_survey", now, {"survey_id": 7, "name": "Анна 🌸"})
    job = await _claim_one(queue, now)
    assert job.id == job_id
    assert job.kind == "send_survey"
    assert job.payload == {"survey_id": 7, "name": "Анна 🌸"}
    assert job.attempts == 1
    assert job.due_at == now
    assert job.lease_expires_at == now + LEASE

    row = await _state(queue, job_id)
    assert row.state is JobState.RUNNING
    assert row.claimed_by == "w1"
    assert row.lease_token == job.lease_token

    assert await queue.complete(job)
    row = await _state(queue, job_id)
    assert row.state is JobState.DONE
    assert row.lease_token is None
    # Done jobs are never handed out again, not even long after.
    assert await queue.claim_due(now + timedelta(days=30), 10, lease=LEASE, worker="w2") == []


async def test_jobs_not_yet_due_are_not_claimed(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    await queue.schedule("reminder", now + timedelta(seconds=1), {})
    assert await queue.claim_due(now, 10, lease=LEASE, worker="w1") == []
    job = await _claim_one(queue, now + timedelta(seconds=1))
    assert job.kind == "reminder"


async def test_claims_oldest_first_up_to_the_limit(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    for minutes in (3, 1, 2, 5, 4):
        await queue.schedule("k", now - timedelta(minutes=minutes), {"m": minutes})
    first = await queue.claim_due(now, 2, lease=LEASE, worker="w1")
    assert [job.payload["m"] for job in first] == [5, 4]
    rest = await queue.claim_due(now, 10, lease=LEASE, worker="w1")
    assert [job.payload["m"] for job in rest] == [3, 2, 1]
    assert await queue.claim_due(now, 0, lease=LEASE, worker="w1") == []


async def test_never_claims_more_than_the_limit(queue: JobQueue, clock: FakeClock) -> None:
    """Guards the PostgreSQL plan trap described in JobQueue._claim."""
    now = clock.now()
    for _ in range(20):
        await queue.schedule("k", now, {})
    assert len(await queue.claim_due(now, 7, lease=LEASE, worker="w1")) == 7
    depth = await queue.depth(now)
    assert (depth.running, depth.due) == (7, 13)


async def test_dedupe_key_schedules_once(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    first = await queue.schedule("sla", now, {"case": 1}, dedupe_key="case:1:sla-first")
    again = await queue.schedule(
        "sla", now + timedelta(hours=1), {"case": 1}, dedupe_key="case:1:sla-first"
    )
    other = await queue.schedule(
        "sla", now + timedelta(days=1), {"case": 2}, dedupe_key="case:2:sla-first"
    )
    assert again == first
    assert other != first
    # Also once it ran: a duplicate delivery later must not bring the job back.
    job = await _claim_one(queue, now)
    assert job.dedupe_key == "case:1:sla-first"
    await queue.complete(job)
    assert await queue.schedule("sla", now, {}, dedupe_key="case:1:sla-first") == first
    assert (await _state(queue, first)).due_at == now


async def test_schedule_inside_the_callers_transaction(
    queue: JobQueue, session_factory: Sessions, clock: FakeClock
) -> None:
    now = clock.now()
    async with session_factory() as session:
        job_id = await queue.schedule("send_survey", now, {}, dedupe_key="s:1", session=session)
        assert await queue.schedule("send_survey", now, {}, dedupe_key="s:1", session=session) == (
            job_id
        )
        await session.rollback()
    # Rolled back with the caller's work: nothing to claim.
    assert await queue.claim_due(now, 10, lease=LEASE, worker="w1") == []
    async with session_factory() as session, session.begin():
        job_id = await queue.schedule("send_survey", now, {}, session=session)
    assert (await _claim_one(queue, now)).id == job_id


async def test_retry_puts_the_job_back_later(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    job_id = await queue.schedule("send_survey", now, {})
    job = await _claim_one(queue, now)
    later = now + timedelta(seconds=30)
    clock.advance(seconds=1)
    assert await queue.retry(job, later, "HTTP 502 from Telegram")

    row = await _state(queue, job_id)
    assert row.state is JobState.PENDING
    assert row.due_at == later
    assert row.last_error == "HTTP 502 from Telegram"
    assert row.updated_at == clock.now()
    assert await queue.claim_due(now + timedelta(seconds=29), 10, lease=LEASE, worker="w1") == []
    again = await _claim_one(queue, later)
    assert again.attempts == 2
    # The old claim's token is dead: its worker cannot touch the job any more.
    assert not await queue.complete(job)
    assert await queue.complete(again)


async def test_fail_keeps_the_reason(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    job_id = await queue.schedule("send_survey", now, {})
    job = await _claim_one(queue, now)
    assert await queue.fail(job, ValueError("chat not found"))
    row = await _state(queue, job_id)
    assert row.state is JobState.FAILED
    assert row.last_error == "ValueError: chat not found"
    assert not await queue.complete(job)
    assert await queue.claim_due(now + timedelta(days=1), 10, lease=LEASE, worker="w") == []


async def test_error_text_is_bounded(queue: JobQueue, clock: FakeClock) -> None:
    job_id = await queue.schedule("k", clock.now(), {})
    job = await _claim_one(queue, clock.now())
    await queue.fail(job, "x" * 100_000)
    assert len((await _state(queue, job_id)).last_error or "") == 4000


async def test_expired_lease_is_claimed_again(queue: JobQueue, clock: FakeClock) -> None:
    """A worker claims a job and dies. After the lease, another worker gets it; the dead one's
    late calls are refused, so it cannot overwrite the new owner's outcome."""
    now = clock.now()
    job_id = await queue.schedule("send_survey", now, {"survey_id": 1})
    dead = await _claim_one(queue, now, worker="dies")

    just_before = now + LEASE - timedelta(microseconds=1)
    assert await queue.claim_due(just_before, 10, lease=LEASE, worker="w2") == []

    at_expiry = now + LEASE
    heir = await _claim_one(queue, at_expiry, worker="w2")
    assert heir.id == job_id
    assert heir.attempts == 2
    assert heir.lease_token != dead.lease_token
    assert (await _state(queue, job_id)).claimed_by == "w2"

    assert not await queue.complete(dead)
    assert not await queue.retry(dead, now, "late")
    assert not await queue.fail(dead, "late")
    assert await queue.extend(dead, at_expiry, LEASE) is None
    assert await queue.complete(heir)
    assert (await _state(queue, job_id)).state is JobState.DONE


async def test_extend_keeps_a_long_job(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    await queue.schedule("retrain", now, {})
    job = await _claim_one(queue, now)
    later = now + LEASE - timedelta(seconds=1)
    extended = await queue.extend(job, later, LEASE)
    assert extended is not None
    assert extended.lease_expires_at == later + LEASE
    # The original lease time has passed, but the extended one holds.
    assert await queue.claim_due(now + LEASE, 10, lease=LEASE, worker="w2") == []
    assert await queue.complete(extended)


async def test_release_hands_back_without_an_attempt(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    job_id = await queue.schedule("send_survey", now - timedelta(minutes=1), {})
    job = await _claim_one(queue, now)
    assert await queue.release(job)
    row = await _state(queue, job_id)
    assert (row.state, row.attempts, row.due_at) == (
        JobState.PENDING,
        0,
        now - timedelta(minutes=1),
    )
    assert not await queue.complete(job)
    assert (await _claim_one(queue, now)).attempts == 1


async def test_cancel_removes_only_pending(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    await queue.schedule("reminder", now + timedelta(hours=1), {}, dedupe_key="r:1")
    await queue.schedule("reminder", now, {}, dedupe_key="r:2")
    assert await queue.cancel("r:1")
    assert not await queue.cancel("r:1")
    assert not await queue.cancel("never-scheduled")
    running = await _claim_one(queue, now)
    assert not await queue.cancel("r:2")  # its worker is on it
    assert await queue.complete(running)
    # A cancelled key is free again.
    assert await queue.schedule("reminder", now, {}, dedupe_key="r:1") > 0


async def test_depth_and_lag(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    empty = await queue.depth(now)
    assert (empty.due, empty.scheduled, empty.running, empty.failed) == (0, 0, 0, 0)
    assert empty.oldest_due_at is None
    assert empty.lag == timedelta(0)

    await queue.schedule("a", now - timedelta(seconds=90), {})
    await queue.schedule("b", now - timedelta(seconds=10), {})
    await queue.schedule("c", now + timedelta(hours=1), {})
    await queue.schedule("d", now - timedelta(hours=2), {})
    oldest = await _claim_one_of(queue, now, limit=1)  # "d": running now
    depth = await queue.depth(now)
    assert (depth.due, depth.scheduled, depth.running, depth.expired_leases) == (2, 1, 1, 0)
    assert depth.oldest_due_at == now - timedelta(seconds=90)
    assert depth.lag == timedelta(seconds=90)
    assert (await queue.depth(now + LEASE)).expired_leases == 1
    await queue.fail(oldest, "boom")
    assert (await queue.depth(now)).failed == 1


async def _claim_one_of(queue: JobQueue, now: datetime, *, limit: int) -> ClaimedJob:
    jobs = await queue.claim_due(now, limit, lease=LEASE, worker="w")
    assert len(jobs) == 1
    return jobs[0]


async def test_purge_drops_old_finished_jobs(queue: JobQueue, clock: FakeClock) -> None:
    now = clock.now()
    for key in ("done", "failed", "pending"):
        await queue.schedule("k", now, {}, dedupe_key=key)
    jobs = await queue.claim_due(now, 2, lease=LEASE, worker="w")
    await queue.complete(jobs[0])
    await queue.fail(jobs[1], "no")
    assert await queue.purge(now) == 0  # touched exactly at `now`, not before
    assert await queue.purge(now + timedelta(days=7)) == 2
    depth = await queue.depth(now)
    assert (depth.due, depth.failed) == (1, 0)


async def test_times_must_be_aware(queue: JobQueue) -> None:
    naive = datetime(2026, 1, 5, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await queue.schedule("k", naive, {})
    with pytest.raises(ValueError, match="timezone-aware"):
        await queue.claim_due(naive, 1, lease=LEASE, worker="w")
    with pytest.raises(ValueError, match="lease"):
        await queue.claim_due(datetime.now(UTC), 1, lease=timedelta(0), worker="w")


async def test_available_at_is_kept_consistent_by_the_database(
    queue: JobQueue, session_factory: Sessions, clock: FakeClock
) -> None:
    """Code that finishes a job by hand, forgetting `available_at`, fails loudly rather than
    leaving a done job that would be claimed again."""
    job_id = await queue.schedule("k", clock.now(), {})
    async with session_factory() as session:
        with pytest.raises(IntegrityError):
            await session.execute(update(Job).where(Job.id == job_id).values(state=JobState.DONE))


async def test_ensure_due_adds_revives_or_brings_forward_one_keyed_job(
    queue: JobQueue, session_factory: Sessions, clock: FakeClock
) -> None:
    now = clock.now()
    later = now + timedelta(hours=5)
    key = "survey:1:send"

    async with session_factory.begin() as session:  # none yet: added
        added = await queue.ensure_due(
            "send_survey", now, {"survey_id": 1}, dedupe_key=key, session=session
        )
    assert await queue.complete(await _claim_one(queue, now))

    async with session_factory.begin() as session:  # finished: revived, attempts reset
        revived = await queue.ensure_due(
            "send_survey", now, {"survey_id": 1}, dedupe_key=key, session=session
        )
    assert revived == added
    job = await _claim_one(queue, now)
    assert job.attempts == 1
    assert await queue.retry(job, later, "Telegram answered 502")

    async with session_factory.begin() as session:  # waiting for later: brought forward
        await queue.ensure_due(
            "send_survey", now, {"survey_id": 1}, dedupe_key=key, session=session
        )
    assert (await _claim_one(queue, now)).id == added

    async with session_factory.begin() as session:  # running: left alone, no second copy
        await queue.ensure_due(
            "send_survey", now, {"survey_id": 1}, dedupe_key=key, session=session
        )
    assert await queue.claim_due(now, 10, lease=LEASE, worker="w2") == []
