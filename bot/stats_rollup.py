"""Keeps /stats's daily roll-up (storage.stats_rollup) up to date: a job every
STATS_ROLLUP_EVERY recounts the days that changed since and adds the days just closed.

/stats never waits for it: a day that changed and is not recounted yet is counted from the raw
rows, so the figures are exact whether the job ran a minute ago, an hour ago or never (then
/stats is as slow as without a roll-up). The job only decides how much /stats can take from
the roll-up.

One job per slot of STATS_ROLLUP_EVERY, its dedupe key naming the slot, so several workers
schedule it once; at start the current slot's job is scheduled, so a new deployment (or one
whose roll-up another time zone built) builds it right away. A refresh is a series of short
transactions of at most `storage.stats_rollup.DAYS_PER_STEP` days each: on SQLite the bot's
own writes get the lock in between. A change of TIMEZONE schedules a run at once; until it
has rebuilt the roll-up for the new zone, /stats counts raw rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.scheduler import Scheduler
from storage.jobs import ClaimedJob, JobQueue
from storage.stats_rollup import DAYS_PER_STEP, refresh_step, zone_name

__all__ = ["STATS_ROLLUP_JOB", "RollupRun", "StatsRollup", "slot_of"]

log = logging.getLogger(__name__)

STATS_ROLLUP_JOB = "stats_rollup"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def slot_of(moment: datetime, every: timedelta) -> datetime:
    """The start of the slot of length ``every`` (counted from 2000-01-01 UTC) holding
    ``moment``: the same for every worker."""
    return _EPOCH + ((moment - _EPOCH) // every) * every


@dataclass(frozen=True, slots=True)
class RollupRun:
    """What a refresh did, for logs and the benchmark."""

    steps: int
    recounted: int  # days recounted
    rebuilt: bool  # started over (first build, or a new time zone)
    first: date
    end: date  # the roll-up holds the days [first, end)
    seconds: float


class StatsRollup:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        zone: Callable[[], tzinfo],
        every: timedelta = timedelta(minutes=10),
        jobs: JobQueue | None = None,
        days_per_step: int = DAYS_PER_STEP,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._zone = zone
        self._jobs = jobs
        self._days_per_step = days_per_step
        #: STATS_ROLLUP_EVERY.
        self.every = every
        self._zone_seen = zone_name(zone())
        self._pending: set[asyncio.Task[int]] = set()

    def register(self, scheduler: Scheduler) -> None:
        scheduler.register(STATS_ROLLUP_JOB, self.handle)

    async def refresh(self) -> RollupRun:
        """Recount what changed and cover the days up to yesterday, a step at a time."""
        started = time.perf_counter()
        zone = self._zone()
        steps = recounted = 0
        rebuilt = False
        while True:
            async with self._sessions.begin() as session:
                step = await refresh_step(
                    session, zone, self._clock.now(), days=self._days_per_step
                )
            steps += 1
            recounted += step.recounted
            rebuilt = rebuilt or step.rebuilt
            if step.done:
                break
        run = RollupRun(
            steps, recounted, rebuilt, step.first, step.end, time.perf_counter() - started
        )
        if run.rebuilt or run.recounted > self._days_per_step:
            log.info(
                "Stats roll-up: %d day(s) recounted in %.1fs; it holds %s to %s (%s)",
                run.recounted,
                run.seconds,
                run.first,
                run.end - timedelta(days=1),
                zone_name(zone),
            )
        return run

    # -- the job ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule the current slot's refresh (a no-op if it ran or another worker did)."""
        if self.every and self._jobs is not None:
            await self._schedule(slot_of(self._clock.now(), self.every))

    async def handle(self, job: ClaimedJob) -> str:
        try:
            run = await self.refresh()
        finally:
            if self.every and self._jobs is not None:
                await self._schedule(slot_of(self._clock.now(), self.every) + self.every)
        return f"{run.recounted} day(s) recounted in {run.steps} step(s)"

    def apply(self, every: timedelta) -> None:
        """Settings changed: STATS_ROLLUP_EVERY from the next run on; a new TIMEZONE gets its
        roll-up rebuilt now rather than at the next slot."""
        self.every = every
        zone = zone_name(self._zone())
        if zone != self._zone_seen and self._jobs is not None and self.every:
            self._zone_seen = zone
            now = self._clock.now()
            key = f"{STATS_ROLLUP_JOB}:zone:{zone}:{now.isoformat()}"
            task = asyncio.get_running_loop().create_task(
                self._jobs.schedule(STATS_ROLLUP_JOB, now, {}, dedupe_key=key)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Wait for schedules in flight (tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _schedule(self, due: datetime) -> None:
        assert self._jobs is not None
        key = f"{STATS_ROLLUP_JOB}:{due.isoformat(timespec='seconds')}"
        await self._jobs.schedule(STATS_ROLLUP_JOB, due, {}, dedupe_key=key)
