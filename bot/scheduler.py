"""The scheduler: claims due jobs from the durable queue and runs them, a few dozen at a time.

All timed work — sending a survey, its reminder, its expiry, and later SLA reminders and
follow-ups — is a row in the job queue (storage.jobs). This module is the worker that turns
those rows into actions. It runs inside `Application.run()`; more processes may run it against
the same database, since the queue hands each job to one worker only.

How it works:

- Kinds. Each job kind has one handler, registered once (`Scheduler.register`): a coroutine
  taking the `ClaimedJob`. Adding a kind is one call; the loop itself knows no kinds.
- Claiming. Jobs are claimed in batches, but never more than there are free slots
  (``concurrency``), so every claimed job starts at once and no lease runs down while its job
  waits in memory. The loop tops up when a quarter of the slots are free, which keeps the rate
  limiter's pipe full without a database round trip per finished job.
- Concurrency. Sends are paced by the one rate limiter, not here; concurrency only has to keep
  enough sends queued at the limiter that it never idles (30–60 for Telegram's 30/s: a send
  takes a few hundred milliseconds end to end). Paid broadcast at 1,000/s needs a few hundred.
- Idling. With nothing due it sleeps ``poll_interval`` seconds, or less when `wake()` is called
  (code that schedules a job due now in this process can call it).
- Leases. A job is claimed with a lease of ``lease``; while its handler runs longer than a third
  of that, the lease is renewed, so only a worker that stalls or dies loses its jobs — which
  the next claim then picks up (after a crash: once the lease has run out).
- Failures. A handler that raises is retried later with exponential backoff (``retry_delay``,
  doubling, at most ``max_retry_delay``, with jitter) until ``attempts`` claims have been used,
  then the job fails for good with the error kept on the row, and the kind's ``on_give_up``
  hook lets the domain record why (a survey becomes "failed" with the reason). Every claim
  counts as an attempt, so a job whose worker keeps dying is given up too. Logs name the job,
  its kind and the exception's type only: messages can carry personal data, so the full error
  and traceback go to the job's ``last_error`` instead, beside the data they may mention.
- Shutdown (`shutdown`): no new claims; jobs in flight get the grace period to finish; those
  still running after it are cancelled and released back to the queue (`JobQueue.release`),
  to run again on the next start without waiting for their lease. A handler protects the write
  that records work already done outside (the "sent" mark after Telegram's OK) with
  `run_to_completion`, so cancellation never leaves that half-done.

Time for the queue (due times, leases, backoff) comes from the injected clock; sleeping and
lease renewal use real seconds, since that is what passes while a handler waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import traceback
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from bot.clock import Clock
from storage.jobs import MAX_ERROR_LENGTH, ClaimedJob, JobQueue

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "GiveUp",
    "Handler",
    "JobKind",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerStats",
    "run_to_completion",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Runs one claimed job. Returning means done; raising means "try again later".
Handler = Callable[[ClaimedJob], Awaitable[object]]
#: Called once when a job has failed for the last time, with the last error.
GiveUp = Callable[[ClaimedJob, BaseException], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    on_give_up: GiveUp | None = None


@dataclass(frozen=True)
class SchedulerConfig:
    """How the scheduler claims and retries; the defaults are the settings' defaults."""

    #: Most jobs claimed in one go (WORKER_BATCH).
    batch: int = 50
    #: Most jobs running at once (WORKER_CONCURRENCY).
    concurrency: int = 40
    #: How long a claim holds a job before another worker may take it (JOB_LEASE).
    lease: timedelta = timedelta(minutes=1)
    #: Seconds between looks at the queue while nothing is due (WORKER_POLL_INTERVAL).
    poll_interval: float = 1.0
    #: Claims of one job before it fails for good (JOB_ATTEMPTS).
    attempts: int = 6
    #: Pause before the first retry of a failed job; doubles each time (JOB_RETRY_DELAY).
    retry_delay: timedelta = timedelta(minutes=1)
    max_retry_delay: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.concurrency < 1 or self.attempts < 1:
            raise ValueError("batch, concurrency and attempts must be at least 1")
        if self.lease <= timedelta(0) or self.poll_interval <= 0:
            raise ValueError("lease and poll_interval must be positive")
        if self.retry_delay < timedelta(0) or self.max_retry_delay < self.retry_delay:
            raise ValueError("retry delays must satisfy 0 <= retry_delay <= max_retry_delay")

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerConfig:
        return cls(
            batch=settings.worker_batch,
            concurrency=settings.worker_concurrency,
            lease=settings.job_lease,
            poll_interval=settings.worker_poll_interval,
            attempts=settings.job_attempts,
            retry_delay=settings.job_retry_delay,
            max_retry_delay=max(settings.job_retry_delay, cls.max_retry_delay),
        )

    def backoff(self, failures: int, draw: float) -> timedelta:
        """The pause after ``failures`` failed attempts (1 or more), given ``draw`` uniform in
        [0, 1): between half and all of ``retry_delay · 2^(failures-1)`` (capped). Half is
        fixed so a retry never comes straight back; half is random so jobs that failed
        together (Telegram was down) do not all return at the same instant."""
        ceiling = min(self.max_retry_delay, self.retry_delay * 2 ** min(failures - 1, 32))
        return ceiling * (0.5 + 0.5 * draw)


@dataclass
class SchedulerStats:
    """What the scheduler did since it started, for logs, tests and benchmarks."""

    claimed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    lost_leases: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


async def run_to_completion(work: Awaitable[T]) -> T:
    """Await ``work`` to the end even if the calling job is cancelled meanwhile (shutdown).

    For the write that records something already done outside — "sent" after Telegram said OK:
    cut off half-way, the job would run again and do it twice. The cancellation is not lost:
    it is raised again once ``work`` has finished.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _describe(error: BaseException) -> str:
    """The error with its traceback, for the job row; the end is kept, where the cause is."""
    text = "".join(traceback.format_exception(error)).strip()
    return text[-MAX_ERROR_LENGTH:]


class Scheduler:
    def __init__(
        self,
        jobs: JobQueue,
        clock: Clock,
        config: SchedulerConfig | None = None,
        *,
        worker: str | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config or SchedulerConfig()
        self.stats = SchedulerStats()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._jobs = jobs
        self._clock = clock
        self._jitter = jitter
        self._kinds: dict[str, JobKind] = {}
        self._running: dict[asyncio.Task[None], ClaimedJob] = {}
        # Set by wake() and stop: look at the queue now. Set when a job finishes: a slot is free.
        self._wakeup = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        # Top up once this many slots are free (a quarter), not after every finished job.
        self._low_water = max(1, min(self.config.batch, self.config.concurrency) // 4)

    # ------------------------------------------------------------------------------ kinds

    def register(self, kind: str, handler: Handler, *, on_give_up: GiveUp | None = None) -> None:
        """Run ``handler`` for jobs of ``kind``. ``on_give_up`` is told when such a job has
        failed for the last time, so the domain can record why (it must be idempotent)."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} already has a handler")
        self._kinds[kind] = JobKind(kind, handler, on_give_up)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._kinds)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # ---------------------------------------------------------------------------- running

    def start(self) -> None:
        """Run the claim loop in the background until `shutdown`."""
        if self._loop_task is not None and not self._loop_task.done():
            raise RuntimeError("the scheduler is already running")
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._loop(), name="scheduler")

    def wake(self) -> None:
        """Look at the queue now rather than at the end of the idle pause."""
        self._wakeup.set()

    def request_stop(self) -> None:
        """Stop claiming jobs (jobs in flight carry on); `shutdown` then waits for them."""
        self._stopping.set()
        self._wakeup.set()
        self._slot_freed.set()

    async def shutdown(self, grace: float) -> None:
        """Stop claiming, give the jobs in flight ``grace`` seconds, cancel and release the
        rest. Returns once no job of this scheduler is running."""
        self.request_stop()
        if self._loop_task is not None:
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            except Exception as error:
                # Shutdown goes on regardless: whatever the loop held runs again after its lease.
                log.error("The scheduler loop had failed (%s)", type(error).__name__)
            self._loop_task = None
        running = list(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        if late:
            log.warning(
                "%d job(s) still running after %.0fs; handing them back to the queue",
                len(late),
                grace,
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def run_due(self) -> int:
        """Run every job due now to its end, then return how many ran (claims included that
        ended in a retry). For tests and one-off runs; the loop started by `start` does the
        same continuously."""
        ran = 0
        while claimed := await self._claim(self.config.concurrency):
            await asyncio.gather(*(self._launch(job) for job in claimed))
            ran += len(claimed)
        return ran

    async def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            free = self.config.concurrency - len(self._running)
            if self._running and free < self._low_water:
                self._slot_freed.clear()
                await self._pause(self._slot_freed, self.config.poll_interval)
                continue
            wanted = min(self.config.batch, free)
            self._wakeup.clear()
            try:
                claimed = await self._claim(wanted)
            except Exception as error:
                # The database is away (restarting, network): keep trying, more slowly.
                failures += 1
                delay = min(30.0, self.config.poll_interval * 2**failures)
                log.warning(
                    "Could not claim jobs (%s); trying again in %.0fs", type(error).__name__, delay
                )
                await self._pause(self._stopping, delay)
                continue
            failures = 0
            if self._stopping.is_set():
                # Claimed while stopping: not started, so hand them straight back (any the
                # database refuses now come back when their lease ends).
                await asyncio.gather(
                    *(self._release(job) for job in claimed), return_exceptions=True
                )
                break
            for job in claimed:
                self._launch(job)
            if len(claimed) < wanted:  # nothing more is due: idle until woken or polled
                await self._pause(self._wakeup, self.config.poll_interval)

    async def _pause(self, event: asyncio.Event, seconds: float) -> None:
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        claimed = await self._jobs.claim_due(
            self._clock.now(), limit, lease=self.config.lease, worker=self.worker
        )
        self.stats.claimed += len(claimed)
        return claimed

    def _launch(self, job: ClaimedJob) -> asyncio.Task[None]:
        task = asyncio.create_task(self._execute(job), name=f"job-{job.id}-{job.kind}")
        self._running[task] = job
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        job = self._running.pop(task, None)
        self._slot_freed.set()
        if job is not None and not task.cancelled() and (error := task.exception()) is not None:
            # _execute deals with every failure of a handler; this is a failure of the queue
            # itself (e.g. the database went away while completing the job). Its lease runs
            # out and it is claimed again.
            log.error(
                "Job %d (%s) could not be settled (%s); it runs again when its lease ends",
                job.id,
                job.kind,
                type(error).__name__,
            )

    # ------------------------------------------------------------------------- one job

    async def _execute(self, job: ClaimedJob) -> None:
        kind = self._kinds.get(job.kind)
        if kind is None:
            log.error("Job %d has kind %r, which no handler is registered for", job.id, job.kind)
            await self._jobs.fail(job, f"no handler is registered for job kind {job.kind!r}")
            self.stats.failed += 1
            return
        if job.attempts > self.config.attempts:
            # Claimed again after its worker died (its lease ran out) too many times.
            error = RuntimeError(f"abandoned by its worker {job.attempts - 1} times")
            await self._give_up(job, kind, error)
            return
        keeper = asyncio.create_task(self._keep_lease(job), name=f"lease-{job.id}")
        try:
            await kind.handler(job)
        except asyncio.CancelledError:
            keeper.cancel()
            await run_to_completion(self._release(job))
            raise
        except Exception as error:
            keeper.cancel()
            await run_to_completion(self._failed(job, kind, error))
            return
        finally:
            keeper.cancel()
        if await run_to_completion(self._jobs.complete(job)):
            self.stats.completed += 1
            self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1
        else:
            self._lease_lost(job)

    async def _keep_lease(self, job: ClaimedJob) -> None:
        every = self.config.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await self._jobs.extend(job, self._clock.now(), self.config.lease)
            except Exception as error:
                log.warning("Could not renew the lease of job %d: %s", job.id, type(error).__name__)
                continue
            if renewed is None:
                self._lease_lost(job)
                return

    def _lease_lost(self, job: ClaimedJob) -> None:
        self.stats.lost_leases += 1
        log.warning(
            "Job %d (%s) outlived its lease; another worker may have run it as well",
            job.id,
            job.kind,
        )

    async def _failed(self, job: ClaimedJob, kind: JobKind, error: Exception) -> None:
        if job.attempts >= self.config.attempts:
            await self._give_up(job, kind, error)
            return
        at = self._clock.now() + self.config.backoff(job.attempts, self._jitter())
        if await self._jobs.retry(job, at, _describe(error)):
            self.stats.retried += 1
            log.warning(
                "Job %d (%s) failed on attempt %d of %d (%s); trying again at %s",
                job.id,
                job.kind,
                job.attempts,
                self.config.attempts,
                type(error).__name__,
                at.isoformat(timespec="seconds"),
            )
        else:
            self._lease_lost(job)

    async def _give_up(self, job: ClaimedJob, kind: JobKind, error: BaseException) -> None:
        if kind.on_give_up is not None:
            try:
                await kind.on_give_up(job, error)
            except Exception as hook_error:
                # The job still fails; the next claim would only fail the same way.
                log.error(
                    "Job %d (%s): recording the failure failed too (%s)",
                    job.id,
                    job.kind,
                    type(hook_error).__name__,
                )
        if await self._jobs.fail(job, _describe(error)):
            self.stats.failed += 1
            log.error(
                "Job %d (%s) failed for good after %d attempt(s) (%s)",
                job.id,
                job.kind,
                job.attempts,
                type(error).__name__,
            )
        else:
            self._lease_lost(job)

    async def _release(self, job: ClaimedJob) -> None:
        if await self._jobs.release(job):
            self.stats.released += 1
