"""Customers answering their surveys at once: the real bot beside a bare aiogram echo bot.

Each bot under test runs in its own OS process, as it runs in production (bench/_bot_process.py:
the real `Application` with a FakeClock and pacing lifted; a bare aiogram echo bot with no
Hearback code and no database). This process, the driver, holds what stands in for the rest of
the world: the Bot API emulator, the simulated customers and all the measuring. The emulator
stands in for Telegram's servers, which do not share our CPU, and does work of its own (it
checks every request against the Bot API spec). When everything shared one process and one
event loop (as bench/updates.py still does), a bot paid for that work as well as its own, and
the more Bot API calls it made per update the more it paid: Hearback makes several per update
(a tap: answerCallbackQuery, the edit of the survey, a reply), the echo bot one or two. With two
cores, the driver now has one and the bot under test the other; the table shows each process's
CPU per update.

Each repeat makes a fresh SQLite database and a fresh emulator with Telegram's limits off. The
echo bot runs first and is stopped (SIGTERM, a graceful stop) before the real bot starts, so
only one bot process is alive at a time.

1. Set-up (not timed): ``--customers`` people (1,000), plus ``rate × seconds / 2`` more for the
   steady run, each with a survey the real scheduler sent into their chat, all in the inboxes
   and recorded as sent. The driver writes the customers and their visits to the bot's database
   with its own engine (the same code as the end-to-end tests, `bot.simulation`); the bot's
   scheduler, polling its job queue, sends the surveys. The echo bot's customers get a score
   question, sent by the driver with the echo bot's token.
2. Burst: all ``--customers`` answer at once. Each taps a score (about 30 % 1–3, the rest 4–5),
   waits for the bot's reply, then types one comment (after a low score the typed words are the
   comment and the bot asks whether a manager may contact them): about 2,000 updates. Updates/s
   = updates answered ÷ (first update pushed → the bot's last call for them). An update counts
   as answered when the bot's reply came; a reply still missing once the bot has had nothing to
   do for QUIET seconds never comes (its handler failed), and is counted as missing instead.
3. Steady: ``--rate`` updates/s (50) for ``--seconds`` (20), open loop: updates start on a fixed
   schedule whatever the replies (a comment at least two seconds after its tap). p50 and p99
   from an update to the bot's reply: the goal is p99 < 100 ms on SQLite.
4. Echo: the same number of customers and the same mix against the echo bot (a tap is answered
   with answerCallbackQuery and a message, a message with the same text), before the real bot,
   in the same emulator: the burst, and the steady run for the latency floor. ``ratio`` = the
   real bot's updates/s ÷ the echo bot's, within a repeat (goal ≥ 0.5).

An update's latency runs from the moment it is pushed into the emulator to the emulator's
record of the bot's next sendMessage to that chat (`Call.time`, the driver's monotonic clock,
so both ends are read in one process). The customers learn of replies from a hook on the
emulator's call recording, not by polling, so watching costs next to nothing. Whether the real
bot is idle (nothing being handled) the driver reads from an 8-byte map the bot process keeps
its in-flight count in. "CPU per update, bot process" is the bot process's CPU time (all its
threads, from /proc/<pid>/stat) over a run ÷ its updates; the driver's own (emulator and
customers) is shown beside it. After set-up the objects alive in the driver are frozen out of
the garbage collector: full collections over the emulator's thousands of chats would otherwise
land in the measured latencies. The bot processes freeze theirs once started
(`Application.run` does; the echo bot does the same).

Bot processes are always stopped: at the end of each bot's runs, and on an exception or Ctrl-C
(SIGTERM, then SIGKILL after STOP_LIMIT seconds). They run in their own session, so Ctrl-C
reaches only the driver, which stops them in order; should the driver die regardless, the end
of their stdin stops them. A bot that fails to start, or exits during a run, stops the benchmark
with its exit code (its traceback is on stderr, after a line naming the bot).

    .venv/bin/python bench/conversation.py [--customers 1000] [--rate 50] [--seconds 20]
        [--repeat 1]

About 2½ minutes a repeat on the 2-core machine. Prints a table (medians over the repeats),
then one JSON object as the last line: {"updates_per_s", "echo_updates_per_s", "ratio",
"p50_ms", "p99_ms", …} (p50/p99 from the steady run; ``burst_*`` from the burst).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import mmap
import os
import random
import signal
import statistics
import struct
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.callbacks import ScoreCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.recording import Call
from bot.emulator.world import StoredMessage
from bot.policy import SurveyPolicy
from bot.settings import Settings
from bot.simulation import started_customers, visits_due_now
from bot.visits import VisitService
from storage.db import create_engine, create_session_factory
from storage.jobs import JobQueue
from storage.migrate import upgrade_async
from storage.models import Survey, SurveyScale, SurveyState

if TYPE_CHECKING:
    from bot.app import Application

BUSINESS = "Rice Shop"
REVIEW = "https://reviews.example.com/rice-shop"
LOW_SHARE = 0.3
#: Seconds between a customer's tap and their comment in the steady run.
TYPING = 2.0
#: Replies still awaited once the bot has nothing queued and has made no call for this long
#: are counted missing (a handler failed); and no run waits longer than RUN_LIMIT.
QUIET = 3.0
RUN_LIMIT = 300.0
#: The bot processes: the script, how long one may take to start, and to stop after SIGTERM.
BOT_SCRIPT = Path(__file__).with_name("_bot_process.py")
START_LIMIT = 120.0
STOP_LIMIT = 30.0
#: Lines of a bot process's stdout meant for the driver start with this (see BOT_SCRIPT).
PREFIX = "bench: "

HIGH_COMMENTS = (
    "The new barista was lovely and quick!",
    "Great food, friendly staff, we will come back.",
    "Everything was perfect, thank you.",
    "Tasty rice and a warm welcome as always",
    "Quick service and the table was spotless.",
)
LOW_COMMENTS = (
    "We waited forty minutes for a table and nobody said sorry.",
    "The waiter was rude and the soup was cold.",
    "Too slow, and the order was wrong.",
    "The floor was dirty and the music far too loud.",
    "Nobody came to take our order for half an hour",
)


# ---------------------------------------------------------------------------- a bot's process


class BotFailed(RuntimeError):
    """A bot process did not start, exited during a run, or did not stop."""


def ended(code: int) -> str:
    """How a bot process ended, from its exit code."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code} (its error is above)"


class BotProcess:
    """A bot under test in its own OS process (bench/_bot_process.py), as in production.

    ``async with`` starts it and returns once it serves; leaving the block, however it is left
    (an exception, Ctrl-C), stops it: SIGTERM, a graceful stop, and SIGKILL if it has not
    stopped within STOP_LIMIT seconds. It runs in its own session, so Ctrl-C on the terminal
    reaches the driver only, which then stops it in order.
    """

    def __init__(
        self, kind: str, folder: Path, options: dict[str, Any], name: str | None = None
    ) -> None:
        self.kind = kind
        #: How messages name the bot (and its counter file): the kind, unless several run.
        self.name = name or kind
        self._counter = folder / f"{self.name}.in_flight"
        self._options = {"kind": kind, **options, "in_flight": str(self._counter)}
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._shared: mmap.mmap | None = None
        self._ready = asyncio.Event()
        #: What the process said as it ended: cpu_s, handler_failures, first_failure.
        self.report: dict[str, Any] = {}

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        failure = await self.stop()
        if failure and error is None:
            raise BotFailed(failure)
        if failure and not isinstance(error, BotFailed):  # else the error says so already
            print(f"also: {failure}", file=sys.stderr)

    async def start(self) -> None:
        self._counter.write_bytes(bytes(8))
        with self._counter.open("r+b") as file:
            self._shared = mmap.mmap(file.fileno(), 8)
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(BOT_SCRIPT),
                json.dumps(self._options),
                stdin=asyncio.subprocess.PIPE,  # held open: its end tells the bot we are gone
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            self._reader = asyncio.create_task(self._read())
            ready = asyncio.create_task(self._ready.wait())
            exited = asyncio.create_task(self._process.wait())
            try:
                await asyncio.wait(
                    {ready, exited}, timeout=START_LIMIT, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                ready.cancel()
                exited.cancel()
            if not self._ready.is_set():
                code = self._process.returncode
                raise BotFailed(
                    f"the {self.name} bot did not start within {START_LIMIT:.0f} s"
                    if code is None
                    else f"the {self.name} bot {ended(code)} while starting"
                )
        except BaseException:
            await self.stop()
            raise

    async def _read(self) -> None:
        """The driver's messages from the bot's stdout; anything else goes on to stderr."""
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            if text.startswith(PREFIX):
                message = json.loads(text[len(PREFIX) :])
                if message.get("ready"):
                    self._ready.set()
                else:
                    self.report = message
            elif text:
                print(f"{self.name} bot: {text}", file=sys.stderr)

    def check(self) -> None:
        """Raise if the bot process has exited."""
        if self._process is None:
            raise BotFailed(f"the {self.name} bot is not running")
        if self._process.returncode is not None:
            raise BotFailed(f"the {self.name} bot {ended(self._process.returncode)} during the run")

    def idle(self) -> bool:
        """Whether the bot is handling no update (the echo bot reports none: always idle)."""
        return self.in_flight() == 0

    def in_flight(self) -> int:
        """Updates the bot is handling now (the echo bot reports none)."""
        self.check()
        assert self._shared is not None
        return struct.unpack_from("q", self._shared, 0)[0]

    def cpu_seconds(self) -> float:
        """CPU time the bot process has used so far, all its threads, user and system."""
        if self._process is None:
            return math.nan
        try:
            stat = Path(f"/proc/{self._process.pid}/stat").read_bytes()
        except OSError:
            return math.nan
        fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, …
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    async def stop(self) -> str | None:
        """Stop the bot and wait for it; what went wrong, if anything."""
        process, self._process = self._process, None
        failure = None
        if process is not None:
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_LIMIT)
                except TimeoutError:
                    failure = f"did not stop within {STOP_LIMIT:.0f} s of SIGTERM and was killed"
                    with suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
                except asyncio.CancelledError:
                    with suppress(ProcessLookupError):
                        process.kill()
                    raise
            if self._reader is not None:
                with suppress(Exception):
                    await asyncio.wait_for(self._reader, 5)
            if process.stdin is not None:
                process.stdin.close()
            if failure is None and process.returncode:
                failure = ended(process.returncode)
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        return f"the {self.name} bot {failure}" if failure else None


# ------------------------------------------------------------------------------ watching replies


class ReplyWatch:
    """When each bot sent a message to each chat, as the emulator recorded it; wakes waiters.
    Listens to the emulator's `call_listeners`, so watching costs no polling."""

    def __init__(self, emulator: Emulator) -> None:
        self._sent: dict[tuple[str, int], list[float]] = defaultdict(list)
        self._waiting: dict[tuple[str, int], list[tuple[float, asyncio.Future[float]]]] = {}
        self._last_call: dict[str, float] = {}
        emulator.call_listeners.append(self._recorded)

    def _recorded(self, call: Call) -> None:
        if call.method != "getUpdates":
            self._last_call[call.token] = call.time
        if call.method == "sendMessage" and call.status == 200:
            self._seen(call)

    def _seen(self, call: Call) -> None:
        key = (call.token, int(call.params["chat_id"]))
        self._sent[key].append(call.time)
        waiting = self._waiting.pop(key, None)
        if not waiting:
            return
        still = []
        for since, future in waiting:
            if future.done():
                continue
            if call.time >= since:
                future.set_result(call.time)
            else:
                still.append((since, future))
        if still:
            self._waiting[key] = still

    async def reply_after(self, bot: BotAccount, chat_id: int, since: float) -> float:
        """The time of the bot's first message to ``chat_id`` at or after ``since``."""
        key = (bot.token, chat_id)
        for sent in self._sent.get(key, ()):
            if sent >= since:
                return sent
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((since, future))
        return await future

    async def until_quiet(
        self, bot: BotAccount, tasks: Sequence[asyncio.Task[Any]], child: BotProcess
    ) -> None:
        """Wait for ``tasks``; give up on those left once ``bot`` is idle, has nothing queued
        and has made no call for ``QUIET`` seconds (the replies they wait for are not coming).
        Raises at once if the bot's process has exited."""
        pending = set(tasks)
        deadline = time.monotonic() + RUN_LIMIT
        try:
            while pending:
                _, pending = await asyncio.wait(pending, timeout=0.25)
                child.check()
                now = time.monotonic()
                quiet = (
                    now - self._last_call.get(bot.token, 0.0) > QUIET
                    and not bot.updates
                    and child.idle()
                )
                if pending and (quiet or now > deadline):
                    break
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


# ------------------------------------------------------------------------------- a conversation


@dataclass(frozen=True)
class Turns:
    """One customer's part: what they tap on which message, then what they type."""

    person: SimUser
    message: StoredMessage
    data: str
    comment: str
    low: bool


@dataclass
class Run:
    """One burst or steady run of one bot."""

    pushed: int = 0  # updates the customers sent
    seconds: float = 0.0  # first update pushed → the bot's last call for them
    latencies: list[float] = field(default_factory=list)  # update → reply, ms, of those answered
    taps: list[float] = field(default_factory=list)  # the same, of the taps only
    comments: list[float] = field(default_factory=list)  # and of the comments
    late_comments: int = 0  # steady: comments pushed before the tap's reply had come
    pushed_per_s: float = math.nan
    errors: int = 0  # the bot's calls the emulator answered with an error
    cpu_s: float = 0.0  # CPU time of the bot's process
    driver_cpu_s: float = 0.0  # CPU time of this process: the emulator, the customers, measuring

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def missing(self) -> int:
        return self.pushed - self.answered

    @property
    def per_s(self) -> float:
        """Updates answered per second."""
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu_s / self.pushed if self.pushed else math.nan

    @property
    def driver_cpu_ms_per_update(self) -> float:
        return 1000 * self.driver_cpu_s / self.pushed if self.pushed else math.nan

    def add(self, latency: float, comment: bool) -> None:
        self.latencies.append(latency)
        (self.comments if comment else self.taps).append(latency)

    def percentile(self, q: float, of: str = "latencies") -> float:
        values: list[float] = getattr(self, of)
        if len(values) < 2:
            return values[0] if values else math.nan
        return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]

    def finish(
        self,
        emulator: Emulator,
        bot: BotAccount,
        began: float,
        child: BotProcess,
        cpu: tuple[float, float],
    ) -> None:
        """Close the books: the span up to the bot's last call, its errors, the CPU spent
        (``cpu``: the bot process's and this process's CPU time when the run began)."""
        self.cpu_s = child.cpu_seconds() - cpu[0]
        self.driver_cpu_s = time.process_time() - cpu[1]
        latest = began
        for call in reversed(emulator.calls):
            if call.time < began:
                break
            if call.token == bot.token and call.method != "getUpdates":
                latest = max(latest, call.time)
                self.errors += call.status != 200
        self.seconds = latest - began


def cpu_now(child: BotProcess) -> tuple[float, float]:
    """CPU time used so far: by the bot's process, and by this one."""
    return child.cpu_seconds(), time.process_time()


def mix(count: int, seed: int) -> list[tuple[int, str, bool]]:
    """(score, comment, low) for ``count`` customers: about 30 % score 1–3, the rest 4–5."""
    rng = random.Random(seed)
    plan = []
    for _ in range(count):
        low = rng.random() < LOW_SHARE
        score = rng.randint(1, 3) if low else rng.randint(4, 5)
        plan.append((score, rng.choice(LOW_COMMENTS if low else HIGH_COMMENTS), low))
    return plan


async def burst(
    emulator: Emulator,
    bot: BotAccount,
    child: BotProcess,
    watch: ReplyWatch,
    turns: Sequence[Turns],
) -> Run:
    """Everyone taps at once; each types their comment as soon as the bot has answered the tap."""
    run = Run()

    async def converse(turn: Turns) -> None:
        chat = turn.person.id
        tapped = time.monotonic()
        run.pushed += 1
        await turn.person.tap(bot, turn.message, turn.data)
        answered = await watch.reply_after(bot, chat, tapped)
        run.add((answered - tapped) * 1000, comment=False)
        typed = time.monotonic()
        run.pushed += 1
        await turn.person.send(bot, turn.comment)
        replied = await watch.reply_after(bot, chat, typed)
        run.add((replied - typed) * 1000, comment=True)

    cpu, began = cpu_now(child), time.monotonic()
    await watch.until_quiet(bot, [asyncio.create_task(converse(turn)) for turn in turns], child)
    await settled(child)
    run.finish(emulator, bot, began, child, cpu)
    return run


async def settled(child: BotProcess) -> None:
    """Until the bot has finished what it was doing (a thanks may follow the reply)."""
    for _ in range(12_000):  # a minute at most
        if child.idle():
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)


def timetable(count: int, rate: float) -> list[tuple[float, int, bool]]:
    """(offset s, customer, is the comment): one update every 1 / ``rate`` s from first to last.

    Taps and comments take turns; a comment waits at least ``TYPING`` after its tap, so the
    first ``TYPING`` seconds are taps only and the last stretch comments only.
    """
    gap = max(1, math.ceil(TYPING * rate))
    schedule: list[tuple[float, int, bool]] = []
    tapped_at: list[int] = []
    comments = 0
    slot = 0
    while comments < count:
        due = comments < len(tapped_at) and slot - tapped_at[comments] >= gap
        if due and (slot % 2 or len(tapped_at) == count):
            schedule.append((slot / rate, comments, True))
            comments += 1
        elif len(tapped_at) < count:
            schedule.append((slot / rate, len(tapped_at), False))
            tapped_at.append(slot)
        slot += 1
    return schedule


async def steady(
    emulator: Emulator,
    bot: BotAccount,
    child: BotProcess,
    watch: ReplyWatch,
    turns: Sequence[Turns],
    rate: float,
) -> Run:
    """Open loop: updates start at ``rate`` per second on a fixed schedule, replies or not."""
    run = Run()
    taps: dict[int, asyncio.Task[float]] = {}
    waits: list[asyncio.Task[float]] = []

    async def reply(chat: int, pushed: float, comment: bool, after: asyncio.Task[float] | None):
        """When the bot replied to the update pushed at ``pushed``."""
        since = pushed
        if after is not None:  # a comment's reply comes after the tap's
            tap_reply = await after
            if tap_reply > pushed:
                run.late_comments += 1
                since = tap_reply + 1e-9
        replied = await watch.reply_after(bot, chat, since)
        run.add((replied - pushed) * 1000, comment)
        return replied

    cpu = cpu_now(child)
    start = time.monotonic() + 0.05
    first = last = 0.0
    try:
        for offset, index, is_comment in timetable(len(turns), rate):
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            turn, pushed = turns[index], time.monotonic()
            first, last = first or pushed, pushed
            run.pushed += 1
            if is_comment:
                await turn.person.send(bot, turn.comment)
                waits.append(asyncio.create_task(reply(turn.person.id, pushed, True, taps[index])))
            else:
                await turn.person.tap(bot, turn.message, turn.data)
                taps[index] = asyncio.create_task(reply(turn.person.id, pushed, False, None))
                waits.append(taps[index])
    finally:
        await watch.until_quiet(bot, waits, child)
    await settled(child)
    run.finish(emulator, bot, first, child, cpu)
    run.pushed_per_s = (run.pushed - 1) / (last - first) if last > first else math.nan
    return run


# ---------------------------------------------------------------------------------- the real bot


def hearback_settings(url: str) -> dict[str, Any]:
    """The real bot's settings (beyond the defaults), for its process and the driver's set-up."""
    return {
        "database_url": url,
        "business_name": BUSINESS,
        "http_port": 0,
        "shutdown_timeout": 5,
        "review_url": REVIEW,
        "log_level": "WARNING",
    }


@dataclass
class SetUp:
    """What `started_customers` and `visits_due_now` use of an `Application`, in the driver: its
    own engine on the bot's database, and the bot's clock (a FakeClock starts at the same
    instant in every process)."""

    session_factory: async_sessionmaker[AsyncSession]
    clock: FakeClock
    visits: VisitService


async def _surveys_waiting(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        statement = select(func.count()).select_from(Survey)
        return int(await session.scalar(statement.where(Survey.state == SurveyState.SCHEDULED)))


async def _no_survey_waiting(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return await _surveys_waiting(sessions) == 0


async def surveyed(
    settings: Settings, emulator: Emulator, bot: BotAccount, child: BotProcess, count: int
) -> list[tuple[SimUser, StoredMessage]]:
    """``count`` customers who pressed Start, each with a survey the bot's scheduler sent them.
    The driver writes the customers and their visits; the bot, polling its job queue, sends."""
    people = await surveys_due(settings, emulator, bot, count)
    return await sent(settings, emulator, bot, child, people)


async def surveys_due(
    settings: Settings, emulator: Emulator, bot: BotAccount, count: int
) -> list[SimUser]:
    """``count`` customers who pressed Start, each with a visit whose survey is due now by the
    bot's clock, written by the driver."""
    engine = create_engine(settings.database_url)
    try:
        sessions = create_session_factory(engine)
        clock = FakeClock()  # Monday 2026-01-05 12:00 UTC, as the bot's
        visits = VisitService(
            sessions,
            JobQueue(engine, clock=clock),
            SurveyPolicy.from_settings(settings),
            clock,
            SurveyScale(settings.survey_scale),
        )
        world = cast("Application", SetUp(sessions, clock, visits))
        people = await started_customers(world, emulator, bot, count)
        await visits_due_now(world, people)
    finally:
        await engine.dispose()
    return people


async def sent(
    settings: Settings,
    emulator: Emulator,
    bot: BotAccount,
    child: BotProcess,
    people: Sequence[SimUser],
) -> list[tuple[SimUser, StoredMessage]]:
    """Once each of ``people`` has the survey in their chat and it is recorded as sent: each
    with that message."""
    engine = create_engine(settings.database_url)
    try:
        sessions = create_session_factory(engine)

        def delivered() -> bool:
            child.check()
            return all(person.inbox(bot) for person in people)

        await emulator.wait_for(delivered, timeout=300, interval=0.2, message="surveys delivered")
        # The inbox fills when Telegram accepts the send; the survey is marked sent just after.
        await emulator.wait_for(
            lambda: _no_survey_waiting(sessions),
            timeout=60,
            interval=0.1,
            message="surveys marked sent",
        )
    finally:
        await engine.dispose()
    return [(person, person.inbox(bot)[0]) for person in people]


def hearback_turns(
    pairs: Sequence[tuple[SimUser, StoredMessage]], plan: Sequence[tuple[int, str, bool]]
) -> list[Turns]:
    turns = []
    for (person, survey), (score, comment, low) in zip(pairs, plan, strict=True):
        survey_id = ScoreCallback.unpack(survey.callback_data[0]).survey_id
        data = ScoreCallback(survey_id=survey_id, score=score).pack()
        turns.append(Turns(person, survey, data, comment, low))
    return turns


def expected_replies(turns: Sequence[Turns], bot: BotAccount) -> tuple[int, int]:
    """(conversations that ended as designed, all): survey, apology, contact question after a low
    score; survey, thanks, thanks for the comment, review link after a high one."""
    good = 0
    for turn in turns:
        inbox = turn.person.inbox(bot)
        want = 3 if turn.low else 4
        if len(inbox) == want and inbox[-1].buttons:
            good += 1
    return good, len(turns)


async def hearback_runs(
    emulator: Emulator,
    watch: ReplyWatch,
    url: str,
    folder: Path,
    args: argparse.Namespace,
    steady_customers: int,
    seed: int,
) -> tuple[Run, Run, tuple[int, int], dict[str, Any]]:
    """The real bot, in its own process: set-up, then the burst and the steady run."""
    await upgrade_async(url)
    options = hearback_settings(url)
    settings = Settings(_env_file=None, **options)
    account = emulator.add_bot(username="hearback_bench_bot", first_name=BUSINESS)
    child = BotProcess(
        "hearback", folder, {"token": account.token, "api_url": emulator.url, "settings": options}
    )
    async with child:
        pairs = await surveyed(
            settings, emulator, account, child, args.customers + steady_customers
        )
        turns = hearback_turns(pairs, mix(len(pairs), seed))
        crowd, paced = turns[: args.customers], turns[args.customers :]
        gc.collect()
        gc.freeze()
        burst_run = await burst(emulator, account, child, watch, crowd)
        outcome = expected_replies(crowd, account)
        await asyncio.sleep(0.5)
        steady_run = await steady(emulator, account, child, watch, paced, args.rate)
    return burst_run, steady_run, outcome, child.report


# ---------------------------------------------------------------------------------- the echo bot


async def ask_score(emulator: Emulator, bot: BotAccount, people: Sequence[SimUser]) -> None:
    """A score question from the echo bot in each chat: set-up, sent by the driver with the echo
    bot's token (the echo bot itself only answers)."""
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=str(s), callback_data=f"sc:{s}") for s in range(1, 6)]
        ]
    )
    sender = Bot(
        token=bot.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.url)),
        default=DefaultBotProperties(parse_mode=None),
    )
    gate = asyncio.Semaphore(50)

    async def ask(person: SimUser) -> None:
        person.started.add(bot.id)
        async with gate:
            await sender.send_message(person.id, "How was your visit?", reply_markup=keyboard)

    try:
        await asyncio.gather(*(ask(person) for person in people))
    finally:
        await sender.session.close()


async def echo_runs(
    emulator: Emulator,
    watch: ReplyWatch,
    folder: Path,
    args: argparse.Namespace,
    steady_customers: int,
    seed: int,
) -> tuple[Run, Run, dict[str, Any]]:
    """The echo bot, in its own process: a score question in each chat, then the burst and the
    steady run."""
    account = emulator.add_bot(username="echo_bench_bot", first_name="Echo")
    people = [emulator.add_user(first_name=f"Echo{n}") for n in range(args.customers)]
    await ask_score(emulator, account, people)
    turns = [
        Turns(person, person.inbox(account)[0], f"sc:{score}", comment, low)
        for person, (score, comment, low) in zip(people, mix(len(people), seed), strict=True)
    ]
    child = BotProcess("echo", folder, {"token": account.token, "api_url": emulator.url})
    async with child:
        gc.collect()
        gc.freeze()
        burst_run = await burst(emulator, account, child, watch, turns)
        await asyncio.sleep(0.5)
        # The echo bot keeps no state: the same customers tap the same question again.
        steady_run = await steady(
            emulator, account, child, watch, turns[:steady_customers], args.rate
        )
    return burst_run, steady_run, child.report


# ------------------------------------------------------------------------------------------ main


@dataclass
class Repeat:
    hearback: Run
    steady: Run
    echo: Run
    echo_steady: Run
    outcome: tuple[int, int]
    reports: list[dict[str, Any]]  # each bot process's, as it ended

    @property
    def ratio(self) -> float:
        return self.hearback.per_s / self.echo.per_s if self.echo.per_s else math.nan


async def one_repeat(folder: Path, number: int, args: argparse.Namespace) -> Repeat:
    url = f"sqlite+aiosqlite:///{folder}/conversation{number}.db"
    steady_customers = max(1, round(args.rate * args.seconds / 2))
    try:
        async with Emulator(limits=Limits.off(), max_calls=10**6) as emulator:
            # The echo bot first, its process stopped before the real bot's starts.
            watch = ReplyWatch(emulator)  # one hook on the emulator, for both bots
            echo, echo_steady, echo_report = await echo_runs(
                emulator, watch, folder, args, steady_customers, number
            )
            gc.unfreeze()
            hearback, paced, outcome, report = await hearback_runs(
                emulator, watch, url, folder, args, steady_customers, number
            )
    finally:
        gc.unfreeze()
    return Repeat(hearback, paced, echo, echo_steady, outcome, [echo_report, report])


def _median(values: list[float]) -> float:
    values = [value for value in values if not math.isnan(value)]
    return statistics.median(values) if values else math.nan


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000, help="customers in the burst")
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s in the steady run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the steady run")
    parser.add_argument("--repeat", type=int, default=1, help="repeats; medians are reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    repeats: list[Repeat] = []
    with tempfile.TemporaryDirectory(prefix="hearback-bench-") as folder:
        for number in range(args.repeat):
            repeat = await one_repeat(Path(folder), number, args)
            repeats.append(repeat)
            print(
                f"repeat {number + 1}: {repeat.hearback.per_s:6.1f} updates/s "
                f"(echo {repeat.echo.per_s:6.1f}, ratio {repeat.ratio:.2f}); "
                f"at {args.rate:g}/s p50 {repeat.steady.percentile(50):.1f} ms, "
                f"p99 {repeat.steady.percentile(99):.1f} ms",
                file=sys.stderr,
                flush=True,
            )

    def med(pick: Callable[[Repeat], float]) -> float:
        return _median([pick(r) for r in repeats])

    def total(pick: Callable[[Repeat], int]) -> int:
        return sum(pick(r) for r in repeats)

    figures: dict[str, Any] = {
        "updates_per_s": round(med(lambda r: r.hearback.per_s), 1),
        "echo_updates_per_s": round(med(lambda r: r.echo.per_s), 1),
        "ratio": round(med(lambda r: r.ratio), 3),
        "p50_ms": round(med(lambda r: r.steady.percentile(50)), 2),
        "p99_ms": round(med(lambda r: r.steady.percentile(99)), 2),
        "burst_p50_ms": round(med(lambda r: r.hearback.percentile(50)), 1),
        "burst_p99_ms": round(med(lambda r: r.hearback.percentile(99)), 1),
        "echo_p50_ms": round(med(lambda r: r.echo_steady.percentile(50)), 2),
        "echo_p99_ms": round(med(lambda r: r.echo_steady.percentile(99)), 2),
        "missing_replies": total(lambda r: r.hearback.missing + r.steady.missing),
        "customers": args.customers,
        "rate": args.rate,
        "repeats": args.repeat,
    }

    print(
        f"\nCustomers answering surveys through the Bot API emulator (SQLite, limits off; each bot "
        f"in its own process), median of {args.repeat} repeat(s)"
    )
    header = f"{'figure':<50}{'Hearback':>11}{'echo':>11}"
    print(header)
    print("-" * len(header))

    def row(
        label: str, pick: Callable[[Repeat], tuple[Run, Run]], figure: Callable, digits: int = 1
    ) -> None:
        ours, theirs = med(lambda r: figure(pick(r)[0])), med(lambda r: figure(pick(r)[1]))
        print(f"{label:<50}{ours:>11.{digits}f}{theirs:>11.{digits}f}")

    def bursts(r: Repeat) -> tuple[Run, Run]:
        return r.hearback, r.echo

    def steadies(r: Repeat) -> tuple[Run, Run]:
        return r.steady, r.echo_steady

    rate = f"{args.rate:g}/s"
    row(f"burst of {args.customers} customers: updates answered/s", bursts, lambda x: x.per_s)
    row("  update → reply p50 (ms)", bursts, lambda x: x.percentile(50))
    row("  update → reply p99 (ms)", bursts, lambda x: x.percentile(99))
    row("  replies missing", bursts, lambda x: x.missing, 0)
    row("  calls answered with an error", bursts, lambda x: x.errors, 0)
    row("  CPU per update, bot process (ms)", bursts, lambda x: x.cpu_ms_per_update, 2)
    row(
        "  CPU per update, driver: emulator etc. (ms)",
        bursts,
        lambda x: x.driver_cpu_ms_per_update,
        2,
    )
    row(f"steady {rate}: updates pushed/s", steadies, lambda x: x.pushed_per_s)
    row("  update → reply p50 (ms)", steadies, lambda x: x.percentile(50))
    row("  update → reply p99 (ms)", steadies, lambda x: x.percentile(99))
    row("  tap → reply p50 (ms)", steadies, lambda x: x.percentile(50, "taps"))
    row("  tap → reply p99 (ms)", steadies, lambda x: x.percentile(99, "taps"))
    row("  comment → reply p50 (ms)", steadies, lambda x: x.percentile(50, "comments"))
    row("  comment → reply p99 (ms)", steadies, lambda x: x.percentile(99, "comments"))
    row("  replies missing", steadies, lambda x: x.missing, 0)
    row("  calls answered with an error", steadies, lambda x: x.errors, 0)
    row("  CPU per update, bot process (ms)", steadies, lambda x: x.cpu_ms_per_update, 2)
    row(
        "  CPU per update, driver: emulator etc. (ms)",
        steadies,
        lambda x: x.driver_cpu_ms_per_update,
        2,
    )
    print()
    print(
        f"ratio (Hearback ÷ echo updates/s, median of each repeat's own): {figures['ratio']:.2f} "
        f"(goal ≥ 0.5); p99 at {rate}: {figures['p99_ms']:.1f} ms (goal < 100)"
    )
    print(
        f"burst conversations that ended as designed (Hearback): "
        f"{total(lambda r: r.outcome[0])}/{total(lambda r: r.outcome[1])}; steady comments "
        f"typed before the tap's reply came: {total(lambda r: r.steady.late_comments)}"
    )
    reports = [report for r in repeats for report in r.reports]
    failures = sum(report.get("handler_failures", 0) for report in reports)
    if failures:
        first = next(report["first_failure"] for report in reports if report.get("first_failure"))
        print(
            f"handler exceptions logged by aiogram in the bot processes: {failures} "
            f"(first: {first})"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
