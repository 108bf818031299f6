"""The weekly digest: at WEEKLY_DIGEST (e.g. Monday 09:00 in TIMEZONE) each active staff chat
gets last week's figures for what it handles, and the chart; also how /stats sends its answer.

One durable job per week (`WEEKLY_DIGEST_JOB`), its dedupe key naming the week, so several
workers scheduling it at start send it once. After each run the next week's is scheduled; a
changed setting cancels the pending one and schedules the new slot (`apply`). A chat with
nothing last week gets a one-line "quiet week" note, not an empty chart. Telegram refusing one
chat (the bot was removed: 403) marks that chat as left and the others still get theirs; no
failure of one chat makes the job retry, which would send the others theirs twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import BufferedInputFile

from bot.clock import Clock
from bot.periods import parse_period
from bot.scheduler import Scheduler
from bot.staffchats import StaffChatService
from bot.stats import Figures, StatsService, render
from bot.values import WeeklySlot
from storage.jobs import ClaimedJob, JobQueue
from storage.models import JobState

__all__ = ["CAPTION_LIMIT", "QUIET_WEEK", "WEEKLY_DIGEST_JOB", "WeeklyDigest", "send_figures"]

log = logging.getLogger(__name__)

WEEKLY_DIGEST_JOB = "weekly_digest"
#: Telegram's limit for a photo's caption.
CAPTION_LIMIT = 1024
QUIET_WEEK = "📊 Quiet week: nothing recorded for {scope} in {period}."
DIGEST_HEADING = "Weekly digest"


async def send_figures(
    bot: Bot,
    chat_id: int,
    figures: Figures,
    zone: tzinfo,
    *,
    thread_id: int | None = None,
    heading: str | None = None,
) -> None:
    """The text and, when there is data, the chart: one photo with the text as its caption
    when it fits, else the photo and then the text. No data: the text alone."""
    text = render(figures, zone)
    if heading:
        text = f"{heading}\n{text}"
    if not figures.has_data:
        await bot.send_message(chat_id, text, message_thread_id=thread_id)
        return
    from bot.charts import stats_chart  # matplotlib loads on the first chart, not at start-up

    png = await asyncio.to_thread(stats_chart, figures)
    photo = BufferedInputFile(png, filename="hearback-stats.png")
    if len(text) <= CAPTION_LIMIT:
        await bot.send_photo(chat_id, photo, caption=text, message_thread_id=thread_id)
        return
    await bot.send_photo(chat_id, photo, message_thread_id=thread_id)
    await bot.send_message(chat_id, text, message_thread_id=thread_id)


def next_slot(slot: WeeklySlot, after: datetime, zone: tzinfo) -> datetime:
    """The first moment of ``slot`` (local time in ``zone``) strictly after ``after``, in UTC."""
    local = after.astimezone(zone)
    day = local.date() + timedelta(days=(slot.weekday - local.weekday()) % 7)
    while True:
        moment = datetime.combine(day, slot.at, tzinfo=zone).astimezone(UTC)
        if moment > after:
            return moment
        day += timedelta(days=7)


def week_key(moment: datetime, zone: tzinfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{WEEKLY_DIGEST_JOB}:{year}-W{week:02d}"


class WeeklyDigest:
    def __init__(
        self,
        jobs: JobQueue,
        clock: Clock,
        bot: Bot,
        stats: StatsService,
        staff_chats: StaffChatService,
        *,
        slot: WeeklySlot | None,
        zone: Callable[[], tzinfo],
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self._bot = bot
        self._stats = stats
        self._staff_chats = staff_chats
        self._zone = zone
        #: WEEKLY_DIGEST as it is now; None: no digest.
        self.slot = slot
        self._started = False
        self._pending: set[asyncio.Task[None]] = set()

    def register(self, scheduler: Scheduler) -> None:
        scheduler.register(WEEKLY_DIGEST_JOB, self.handle)

    async def start(self) -> None:
        """Schedule the next digest (a no-op if another worker already did)."""
        self._started = True
        await self.reschedule()

    def apply(self, slot: WeeklySlot | None) -> None:
        """WEEKLY_DIGEST (or TIMEZONE) changed: move the pending digest to the new slot."""
        previous, self.slot = self.slot, slot
        if self._started and previous != slot:
            task = asyncio.get_running_loop().create_task(self.reschedule(previous=previous))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Wait for reschedules in flight (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def reschedule(
        self, *, after: datetime | None = None, previous: WeeklySlot | None = None
    ) -> datetime | None:
        """Make the pending digest job the one for the current slot; its due time (None: off).
        ``previous``: the slot before a change, whose pending job is taken back."""
        zone = self._zone()
        now = after or self._clock.now()
        if previous is not None:
            await self._jobs.cancel(week_key(next_slot(previous, now, zone), zone))
        if self.slot is None:
            return None
        due = next_slot(self.slot, now, zone)
        while True:
            key = week_key(due, zone)
            job_id = await self._jobs.schedule(
                WEEKLY_DIGEST_JOB, due, {"due": due.isoformat()}, dedupe_key=key
            )
            job = await self._jobs.get(job_id)
            if job is None or job.due_at == due:
                return due
            if job.state is JobState.PENDING:  # the same week at another time: move it
                await self._jobs.cancel(key)
                continue
            due = next_slot(self.slot, due, zone)  # this week's went out already: the next

    async def handle(self, job: ClaimedJob) -> str:
        zone = self._zone()
        # A job left from a slot that has changed since (e.g. while the bot was down) is stale.
        current = self.slot is not None and job.due_at == next_slot(
            self.slot, job.due_at - _TICK, zone
        )
        sent = await self.send(job.due_at) if current else 0
        await self.reschedule(after=job.due_at)
        return f"sent to {sent} staff chat(s)" if current else "stale slot: skipped"

    async def send(self, at: datetime) -> int:
        """Last week's figures to every active staff chat; how many got theirs."""
        zone = self._zone()
        period = parse_period("lastweek", at, zone)
        sent = 0
        for chat in await self._staff_chats.list():
            scope = await self._stats.scope_of(chat)
            figures = await self._stats.figures(period, scope)
            try:
                if figures.has_data:
                    await send_figures(
                        self._bot, chat.chat_id, figures, zone, heading=DIGEST_HEADING
                    )
                else:
                    quiet = QUIET_WEEK.format(scope=figures.scope_label, period=period.label)
                    await self._bot.send_message(chat.chat_id, quiet)
            except TelegramForbiddenError:
                log.warning("Staff chat %d refused the weekly digest: marked as left", chat.id)
                await self._staff_chats.bot_left(chat.chat_id)
                continue
            except TelegramAPIError:
                log.warning("Staff chat %d: the weekly digest failed", chat.id, exc_info=True)
                continue
            sent += 1
        return sent


_TICK = timedelta(seconds=1)
