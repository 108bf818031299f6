"""The durable job queue: the one timer for all timed work (surveys, reminders, SLA, follow-ups).

A job is a row in `jobs`. Its life:

    schedule() ─► pending ──claim_due()──► running ──complete()──► done
                     ▲                        │ └───fail()──────► failed
                     └──retry(at)/release()───┘
                     (lease expired: claimed again by the next claim_due)

`claim_due` hands a job to exactly one worker, with a *lease*: a deadline and a fresh random
token. If the worker dies, the lease runs out and a later `claim_due` takes the job again (and
counts another attempt). Every later call about the job (`complete`, `retry`, `fail`, `extend`,
`release`) must present the token and only succeeds while that lease is the current one: a
worker that stalled past its lease, while someone else re-claimed the job, gets False back and
changes nothing. So a job runs at most once at a time; it can run twice only when a worker is
slower than its lease, which callers bound by choosing the lease (and `extend` for long work).
Attempts count every claim; a worker decides from `ClaimedJob.attempts` when to `fail` a job
that keeps failing (or keeps killing its workers).

One column, `available_at`, says when a job can next be claimed: its due time while pending,
the end of its lease while running, NULL once done or failed (a CHECK keeps this true). A claim
is therefore a single index range scan, `available_at <= now`, for due jobs and abandoned ones.

Atomic claiming, in one statement:
- PostgreSQL: `WITH candidates AS MATERIALIZED (SELECT id … ORDER BY available_at LIMIT n
  FOR UPDATE SKIP LOCKED) UPDATE jobs … WHERE id IN (SELECT id FROM candidates) RETURNING …`;
  concurrent claimers skip each other's rows instead of waiting for them.
- SQLite: the same `UPDATE … RETURNING` (SQLite ≥ 3.35), without the row locks: SQLite runs it
  under its single writer lock, and claimers queue for that lock on the busy timeout (see
  storage.db). Should the lock stay busy even past that, the transaction is retried with backoff.

Times passed in must be timezone-aware. `claim_due`, `extend` and `depth` take `now` explicitly
(the scheduler's clock); bookkeeping times (`created_at`, `updated_at`) come from the queue's
clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Update, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot.clock import Clock, SystemClock
from storage.models import Job, JobState

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Longest error text kept on a job; the rest is cut (the full error belongs in the logs).
MAX_ERROR_LENGTH = 4000

_ACTIVE = (JobState.PENDING, JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job handed to one worker. `lease_token` proves the lease in later calls."""

    id: int
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int  # including this claim
    lease_token: str
    lease_expires_at: datetime
    dedupe_key: str | None


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """The queue at one instant, for metrics and health checks."""

    due: int  # pending and due: waiting for a worker
    scheduled: int  # pending, due later
    running: int
    expired_leases: int  # running, but the lease has run out (the worker probably died)
    failed: int
    oldest_due_at: datetime | None
    lag: timedelta  # how long the oldest due job has been waiting (zero when none is)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value


def _error_text(error: str | BaseException) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_LENGTH]


def is_sqlite_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" errors, which are worth retrying."""
    if not isinstance(error, OperationalError):
        return False
    message = str(error.orig).lower()
    return "database is locked" in message or "database table is locked" in message


class JobQueue:
    """The queue over an `AsyncEngine` (from `storage.db.create_engine`).

    It works with Core connections rather than ORM sessions: each call is one short
    transaction, and on the hot path (claim, complete) the ORM's bookkeeping would only cost
    time. `schedule` and `cancel` also accept `session=`, to run inside the caller's unit of
    work without committing, so that e.g. recording a visit and scheduling its survey commit
    together or not at all.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        busy_retries: int = 8,
    ) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()
        self._busy_retries = busy_retries
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # ---------------------------------------------------------------------------- scheduling

    async def schedule(
        self,
        kind: str,
        due_at: datetime,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        session: AsyncSession | None = None,
    ) -> int:
        """Add a job and return its id. If a job with this `dedupe_key` exists (in any state),
        nothing is added and that job's id is returned."""
        job_id, _ = await self._schedule(
            kind, due_at, payload, dedupe_key=dedupe_key, session=session
        )
        return job_id

    async def _schedule(
        self,
        kind: str,
        due_at: datetime,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None,
        session: AsyncSession | None,
    ) -> tuple[int, bool]:
        """`schedule`, also telling whether the job is new (False: it existed)."""
        _aware(due_at, "due_at")
        now = self._clock.now()
        statement = (
            self._insert(Job)
            .values(
                kind=kind,
                due_at=due_at,
                available_at=due_at,
                payload=payload,
                state=JobState.PENDING,
                attempts=0,
                dedupe_key=dedupe_key,
                created_at=now,
                updated_at=now,
            )
            .returning(Job.id)
        )
        if dedupe_key is not None:
            # ON CONFLICT rather than catching IntegrityError: on PostgreSQL an error would
            # abort the caller's whole transaction.
            statement = statement.on_conflict_do_nothing(index_elements=[Job.dedupe_key])

        async def insert(connection: AsyncConnection | AsyncSession) -> tuple[int, bool]:
            while True:
                job_id = (await connection.execute(statement)).scalar_one_or_none()
                if job_id is not None:
                    return int(job_id), True
                existing = (
                    await connection.execute(select(Job.id).where(Job.dedupe_key == dedupe_key))
                ).scalar_one_or_none()
                if existing is not None:
                    return int(existing), False
                # The conflicting job was cancelled or purged meanwhile: insert after all.

        if session is not None:
            return await insert(session)
        return await self._transaction(insert)

    async def ensure_due(
        self,
        kind: str,
        at: datetime,
        payload: dict[str, Any],
        *,
        dedupe_key: str,
        session: AsyncSession,
    ) -> int:
        """Make sure the job with this key runs at `at` at the latest, whatever became of it:
        added if there is none, re-armed (attempts reset) if it already finished, brought
        forward if it waits for later. A running job is left alone: it is already under way.

        For work that an event makes due again, such as a survey that waited for its customer
        to press Start: the key stays taken once used, so the job is revived rather than
        duplicated."""
        _aware(at, "at")
        job_id, new = await self._schedule(
            kind, at, payload, dedupe_key=dedupe_key, session=session
        )
        if new:  # just added as asked: nothing to revive or bring forward
            return job_id
        now = self._clock.now()
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_((JobState.DONE, JobState.FAILED)))
            .values(
                state=JobState.PENDING,
                due_at=at,
                available_at=at,
                attempts=0,
                lease_token=None,
                lease_expires_at=None,
                claimed_by=None,
                last_error=None,
                updated_at=now,
            )
        )
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.PENDING, Job.available_at > at)
            .values(due_at=at, available_at=at, updated_at=now)
        )
        return job_id

    async def cancel(self, dedupe_key: str, *, session: AsyncSession | None = None) -> bool:
        """Remove the pending job with this key (e.g. a reminder no longer needed); False if
        there is none, or it is already running or finished. The key becomes free again."""
        statement = delete(Job).where(Job.dedupe_key == dedupe_key, Job.state == JobState.PENDING)
        if session is not None:
            return _rowcount(await session.execute(statement)) > 0
        return await self._changed(statement)

    # ------------------------------------------------------------------------------ claiming

    async def claim_due(
        self, now: datetime, limit: int, *, lease: timedelta, worker: str
    ) -> list[ClaimedJob]:
        """Hand up to `limit` jobs to `worker`, longest-waiting first: pending jobs due by
        `now`, and running jobs whose lease ran out by `now` (their worker died). Each gets
        `attempts + 1` and a lease until `now + lease`; no other claimer can get it meanwhile.
        """
        _aware(now, "now")
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        until = now + lease
        claimable = Job.available_at <= now
        # FOR UPDATE SKIP LOCKED is rendered on PostgreSQL only. The candidates are a
        # MATERIALIZED CTE, not a plain `IN (subquery)`: PostgreSQL may plan the latter as a
        # semi-join that re-runs the LIMITed subquery for each row, and every re-run skips the
        # rows this statement already updated — so it would claim more than `limit` jobs.
        candidates = (
            select(Job.id)
            .where(claimable)
            .order_by(Job.available_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        statement = (
            update(Job)
            # `claimable` again: a row that changed between the scan and the lock must not be
            # claimed on a stale reading.
            .where(Job.id.in_(select(candidates.c.id)), claimable)
            .values(
                state=JobState.RUNNING,
                attempts=Job.attempts + 1,
                lease_token=token,
                lease_expires_at=until,
                available_at=until,
                claimed_by=worker[:128],
                updated_at=now,
            )
            .returning(Job.id, Job.kind, Job.payload, Job.due_at, Job.attempts, Job.dedupe_key)
        )

        async def claim(connection: AsyncConnection) -> list[ClaimedJob]:
            rows = (await connection.execute(statement)).all()
            return [
                ClaimedJob(
                    id=row.id,
                    kind=row.kind,
                    payload=row.payload,
                    due_at=row.due_at,
                    attempts=row.attempts,
                    lease_token=token,
                    lease_expires_at=until,
                    dedupe_key=row.dedupe_key,
                )
                for row in rows
            ]

        claimed = await self._transaction(claim)
        # RETURNING gives no order; callers get the longest-waiting first.
        claimed.sort(key=lambda job: (job.due_at, job.id))
        return claimed

    # ---------------------------------------------------------------- lease-guarded changes

    async def complete(self, job: ClaimedJob) -> bool:
        """Mark the job done. False if this lease is no longer the job's current one."""
        return await self._finish(job, state=JobState.DONE, available_at=None)

    async def fail(self, job: ClaimedJob, error: str | BaseException) -> bool:
        """Give up on the job for good, keeping the reason. False if the lease was lost."""
        return await self._finish(
            job, state=JobState.FAILED, available_at=None, last_error=_error_text(error)
        )

    async def retry(self, job: ClaimedJob, at: datetime, error: str | BaseException) -> bool:
        """Run the job again at `at` (its attempt count stays). False if the lease was lost."""
        _aware(at, "at")
        return await self._finish(
            job,
            state=JobState.PENDING,
            due_at=at,
            available_at=at,
            last_error=_error_text(error),
        )

    async def release(self, job: ClaimedJob) -> bool:
        """Hand the job back untouched (e.g. on shutdown, before starting it): pending again
        at its own due time, and this claim does not count as an attempt."""
        return await self._finish(
            job, state=JobState.PENDING, available_at=Job.due_at, attempts=Job.attempts - 1
        )

    async def extend(self, job: ClaimedJob, now: datetime, lease: timedelta) -> ClaimedJob | None:
        """Renew the lease to `now + lease`, for long work; returns the job with its new
        deadline, or None if the lease was already lost."""
        _aware(now, "now")
        until = now + lease
        statement = _guarded(job).values(
            lease_expires_at=until, available_at=until, updated_at=self._clock.now()
        )
        if not await self._changed(statement):
            return None
        return replace(job, lease_expires_at=until)

    async def _finish(self, job: ClaimedJob, *, state: JobState, **values: Any) -> bool:
        statement = _guarded(job).values(
            state=state,
            lease_token=None,
            lease_expires_at=None,
            updated_at=self._clock.now(),
            **values,
        )
        return await self._changed(statement)

    # ---------------------------------------------------------------------------- inspection

    async def get(self, job_id: int) -> Job | None:
        """The job's row as it is now (a detached object), or None."""
        async with AsyncSession(self._engine, expire_on_commit=False) as session:
            return await session.get(Job, job_id)

    async def depth(self, now: datetime) -> QueueDepth:
        """Counts by state and the lag of the oldest due job, as of `now`."""
        _aware(now, "now")
        pending = Job.state == JobState.PENDING
        running = Job.state == JobState.RUNNING
        due = and_(pending, Job.due_at <= now)
        statement = select(
            func.count().filter(due),
            func.count().filter(and_(pending, Job.due_at > now)),
            func.count().filter(running),
            func.count().filter(and_(running, Job.lease_expires_at <= now)),
            func.count().filter(Job.state == JobState.FAILED),
            select(func.min(Job.due_at)).where(due).scalar_subquery(),
        ).where(Job.state.in_((*_ACTIVE, JobState.FAILED)))
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).one()
        oldest: datetime | None = row[5]
        return QueueDepth(
            due=row[0],
            scheduled=row[1],
            running=row[2],
            expired_leases=row[3],
            failed=row[4],
            oldest_due_at=oldest,
            lag=max(now - oldest, timedelta(0)) if oldest is not None else timedelta(0),
        )

    async def purge(self, before: datetime) -> int:
        """Delete done and failed jobs last changed before `before`; returns how many. Their
        dedupe keys become free again."""
        _aware(before, "before")
        statement = delete(Job).where(
            Job.state.in_((JobState.DONE, JobState.FAILED)), Job.updated_at < before
        )
        return await self._transaction(
            lambda connection: _rowcount_of(connection.execute(statement))
        )

    # ------------------------------------------------------------------------------ plumbing

    async def _changed(self, statement: Any) -> bool:
        count = await self._transaction(
            lambda connection: _rowcount_of(connection.execute(statement))
        )
        return count > 0

    async def _transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in a fresh transaction and commit. On SQLite, retry the whole
        transaction if the writer lock stayed busy even past the busy timeout."""
        attempt = 0
        while True:
            try:
                async with self._engine.begin() as connection:
                    return await work(connection)
            except OperationalError as error:
                if attempt >= self._busy_retries or not is_sqlite_busy(error):
                    raise
                logger.warning("SQLite stayed locked past the busy timeout; retrying: %s", error)
            # Jittered backoff, so that retrying writers do not collide again in step.
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
            attempt += 1


def _guarded(job: ClaimedJob) -> Update:
    """An UPDATE of this job that only matches while the caller's lease is the current one."""
    return update(Job).where(
        Job.id == job.id,
        Job.state == JobState.RUNNING,
        Job.lease_token == job.lease_token,
    )


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


async def _rowcount_of(pending: Awaitable[Any]) -> int:
    return _rowcount(await pending)
