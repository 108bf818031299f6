"""Customers answering their surveys at once: the real bot beside a bare aiogram echo bot.

Each repeat makes a fresh SQLite database and a fresh emulator with Telegram's limits off, and
runs everything in this one process and event loop (like bench/updates.py): the emulator, the
simulated customers, the real `Application` (a FakeClock, pacing lifted) and, on the same
emulator, a bare aiogram echo bot with no Hearback code and no database.

1. Set-up (not timed): ``--customers`` people (1,000), plus ``rate × seconds / 2`` more for the
   steady run, each with a survey the real scheduler sent into their chat, all in the inboxes
   and recorded as sent.
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
record of the bot's next sendMessage to that chat (`Call.time`, the same monotonic clock). The
customers learn of replies from a hook on the emulator's call recording, not by polling, so
watching costs next to nothing. "CPU per update" is the whole process's CPU time (bot,
emulator, customers) over a run ÷ its updates. After set-up the objects alive are frozen out of
the garbage collector (as `Application.run` does for its own at start): the emulator's
thousands of chats live in this process only because the emulator does, and full collections
over them would otherwise land in the bot's latency.

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
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy import func, select

from bot.app import Application
from bot.callbacks import ScoreCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.recording import Call
from bot.emulator.world import StoredMessage
from bot.ratelimit import RateLimiter, RetryPolicy, SendLimits
from bot.settings import Settings
from bot.simulation import started_customers, visits_due_now
from storage.migrate import upgrade_async
from storage.models import Survey, SurveyState

BUSINESS = "Rice Shop"
REVIEW = "https://reviews.example.com/rice-shop"
LOW_SHARE = 0.3
#: Seconds between a customer's tap and their comment in the steady run.
TYPING = 2.0
#: Replies still awaited once the bot has nothing queued and has made no call for this long
#: are counted missing (a handler failed); and no run waits longer than RUN_LIMIT.
QUIET = 3.0
RUN_LIMIT = 300.0
# Pacing lifted (as in bench/updates.py): the bot is measured, not Telegram's 30 messages/s.
UNPACED = SendLimits(per_second=1e6, burst=10**6, private_per_second=1e6, private_burst=10**6)
QUICK = RetryPolicy(attempts=6, base_delay=0.02, max_delay=0.2)

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
        self, bot: BotAccount, tasks: Sequence[asyncio.Task[Any]], idle: Callable[[], bool]
    ) -> None:
        """Wait for ``tasks``; give up on those left once ``bot`` is idle, has nothing queued
        and has made no call for ``QUIET`` seconds (the replies they wait for are not coming)."""
        pending = set(tasks)
        deadline = time.monotonic() + RUN_LIMIT
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.25)
            now = time.monotonic()
            quiet = now - self._last_call.get(bot.token, 0.0) > QUIET and not bot.updates and idle()
            if pending and (quiet or now > deadline):
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return


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
    cpu_s: float = 0.0  # CPU time of the whole process (bot, emulator, customers)

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

    def add(self, latency: float, comment: bool) -> None:
        self.latencies.append(latency)
        (self.comments if comment else self.taps).append(latency)

    def percentile(self, q: float, of: str = "latencies") -> float:
        values: list[float] = getattr(self, of)
        if len(values) < 2:
            return values[0] if values else math.nan
        return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]

    def finish(self, emulator: Emulator, bot: BotAccount, began: float, cpu: float) -> None:
        """Close the books: the span up to the bot's last call, its errors, the CPU spent."""
        self.cpu_s = time.process_time() - cpu
        latest = began
        for call in reversed(emulator.calls):
            if call.time < began:
                break
            if call.token == bot.token and call.method != "getUpdates":
                latest = max(latest, call.time)
                self.errors += call.status != 200
        self.seconds = latest - began


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
    watch: ReplyWatch,
    turns: Sequence[Turns],
    idle: Callable[[], bool],
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

    cpu, began = time.process_time(), time.monotonic()
    await watch.until_quiet(bot, [asyncio.create_task(converse(turn)) for turn in turns], idle)
    await settled(idle)
    run.finish(emulator, bot, began, cpu)
    return run


async def settled(idle: Callable[[], bool]) -> None:
    """Until the bot has finished what it was doing (a thanks may follow the reply)."""
    for _ in range(12_000):  # a minute at most
        if idle():
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
    watch: ReplyWatch,
    turns: Sequence[Turns],
    rate: float,
    idle: Callable[[], bool],
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

    cpu = time.process_time()
    start = time.monotonic() + 0.05
    first = last = 0.0
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
    await watch.until_quiet(bot, waits, idle)
    await settled(idle)
    run.finish(emulator, bot, first, cpu)
    run.pushed_per_s = (run.pushed - 1) / (last - first) if last > first else math.nan
    return run


# ---------------------------------------------------------------------------------- the real bot


async def _surveys_waiting(app: Application) -> int:
    async with app.session_factory() as session:
        statement = select(func.count()).select_from(Survey)
        return int(await session.scalar(statement.where(Survey.state == SurveyState.SCHEDULED)))


async def surveyed(
    app: Application, emulator: Emulator, bot: BotAccount, count: int
) -> list[tuple[SimUser, StoredMessage]]:
    """``count`` customers who pressed Start, each with a survey the scheduler sent them."""
    people = await started_customers(app, emulator, bot, count)
    await visits_due_now(app, people)
    await emulator.wait_for(
        lambda: all(person.inbox(bot) for person in people), timeout=300, interval=0.2
    )
    # The inbox fills when Telegram accepts the send; the survey is marked sent just after.
    await emulator.wait_for(
        lambda: _no_survey_waiting(app), timeout=60, interval=0.1, message="surveys marked sent"
    )
    return [(person, person.inbox(bot)[0]) for person in people]


async def _no_survey_waiting(app: Application) -> bool:
    return await _surveys_waiting(app) == 0


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
    args: argparse.Namespace,
    steady_customers: int,
    seed: int,
) -> tuple[Run, Run, tuple[int, int]]:
    """The real bot: set-up, then the burst and the steady run."""
    await upgrade_async(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        business_name=BUSINESS,
        http_port=0,
        shutdown_timeout=5,
        review_url=REVIEW,
        log_level="WARNING",
    )
    account = emulator.add_bot(username="hearback_bench_bot", first_name=BUSINESS)
    app = Application(
        settings,
        token=account.token,
        api_url=emulator.url,
        clock=FakeClock(),  # Monday 2026-01-05 12:00 UTC, as in the end-to-end tests
        limiter=RateLimiter(UNPACED, QUICK),
    )
    running = asyncio.create_task(app.run())
    started = asyncio.create_task(app.started.wait())
    await asyncio.wait({running, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not app.started.is_set():
        started.cancel()
        await running  # surfaces the start-up failure
        raise RuntimeError("the bot did not start within 60 s")

    def idle() -> bool:
        return app.in_flight.count == 0

    try:
        pairs = await surveyed(app, emulator, account, args.customers + steady_customers)
        turns = hearback_turns(pairs, mix(len(pairs), seed))
        crowd, paced = turns[: args.customers], turns[args.customers :]
        gc.collect()
        gc.freeze()
        burst_run = await burst(emulator, account, watch, crowd, idle)
        outcome = expected_replies(crowd, account)
        await asyncio.sleep(0.5)
        steady_run = await steady(emulator, account, watch, paced, args.rate, idle)
    finally:
        app.stop()
        await running
    return burst_run, steady_run, outcome


# ---------------------------------------------------------------------------------- the echo bot


def echo_dispatcher() -> Dispatcher:
    """A bare aiogram bot: every message back as it came, every tap answered and echoed."""
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    @dispatcher.callback_query()
    async def tapped(callback: CallbackQuery) -> None:
        await callback.answer()
        if isinstance(callback.message, Message):
            await callback.message.answer(f"You chose {callback.data}")

    return dispatcher


async def echo_runs(
    emulator: Emulator,
    watch: ReplyWatch,
    args: argparse.Namespace,
    steady_customers: int,
    seed: int,
) -> tuple[Run, Run]:
    """The echo bot: a score question in each chat, then the burst and the steady run."""
    account = emulator.add_bot(username="echo_bench_bot", first_name="Echo")
    bot = Bot(
        token=account.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.url)),
        default=DefaultBotProperties(parse_mode=None),
    )
    dispatcher = echo_dispatcher()
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=10
        )
    )

    def idle() -> bool:  # nothing to go by: its replies are all its work
        return True

    try:
        people = [emulator.add_user(first_name=f"Echo{n}") for n in range(args.customers)]
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=str(s), callback_data=f"sc:{s}") for s in range(1, 6)]
            ]
        )
        gate = asyncio.Semaphore(50)

        async def ask(person: SimUser) -> None:
            person.started.add(account.id)
            async with gate:
                await bot.send_message(person.id, "How was your visit?", reply_markup=keyboard)

        await asyncio.gather(*(ask(person) for person in people))
        turns = [
            Turns(person, person.inbox(account)[0], f"sc:{score}", comment, low)
            for person, (score, comment, low) in zip(people, mix(len(people), seed), strict=True)
        ]
        gc.collect()
        gc.freeze()
        burst_run = await burst(emulator, account, watch, turns, idle)
        await asyncio.sleep(0.5)
        # The echo bot keeps no state: the same customers tap the same question again.
        steady_run = await steady(
            emulator, account, watch, turns[:steady_customers], args.rate, idle
        )
    finally:
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()
    return burst_run, steady_run


# ------------------------------------------------------------------------------------------ main


class HandlerFailures(logging.Filter):
    """Counts the exceptions aiogram logs from handlers, and keeps their tracebacks out of the
    output (the summary says how many there were and what the first one was)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.count += 1
            self.first = self.first or f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            return False
        return True


@dataclass
class Repeat:
    hearback: Run
    steady: Run
    echo: Run
    echo_steady: Run
    outcome: tuple[int, int]

    @property
    def ratio(self) -> float:
        return self.hearback.per_s / self.echo.per_s if self.echo.per_s else math.nan


async def one_repeat(url: str, args: argparse.Namespace, seed: int) -> Repeat:
    steady_customers = max(1, round(args.rate * args.seconds / 2))
    async with Emulator(limits=Limits.off(), max_calls=10**6) as emulator:
        # The echo bot first, so that nothing of the real bot's is left running during its runs.
        watch = ReplyWatch(emulator)  # one hook on the emulator, for both bots
        echo, echo_steady = await echo_runs(emulator, watch, args, steady_customers, seed)
        gc.unfreeze()
        hearback, paced, outcome = await hearback_runs(
            emulator, watch, url, args, steady_customers, seed
        )
        gc.unfreeze()
    return Repeat(hearback, paced, echo, echo_steady, outcome)


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
    failures = HandlerFailures()
    logging.getLogger("aiogram.event").addFilter(failures)

    repeats: list[Repeat] = []
    with tempfile.TemporaryDirectory(prefix="hearback-bench-") as folder:
        for number in range(args.repeat):
            url = f"sqlite+aiosqlite:///{folder}/conversation{number}.db"
            repeat = await one_repeat(url, args, seed=number)
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
        f"\nCustomers answering surveys through the Bot API emulator (SQLite, limits off), "
        f"median of {args.repeat} repeat(s)"
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
    row("  CPU per update, whole process (ms)", bursts, lambda x: x.cpu_ms_per_update)
    row(f"steady {rate}: updates pushed/s", steadies, lambda x: x.pushed_per_s)
    row("  update → reply p50 (ms)", steadies, lambda x: x.percentile(50))
    row("  update → reply p99 (ms)", steadies, lambda x: x.percentile(99))
    row("  tap → reply p50 (ms)", steadies, lambda x: x.percentile(50, "taps"))
    row("  tap → reply p99 (ms)", steadies, lambda x: x.percentile(99, "taps"))
    row("  comment → reply p50 (ms)", steadies, lambda x: x.percentile(50, "comments"))
    row("  comment → reply p99 (ms)", steadies, lambda x: x.percentile(99, "comments"))
    row("  replies missing", steadies, lambda x: x.missing, 0)
    row("  calls answered with an error", steadies, lambda x: x.errors, 0)
    row("  CPU per update, whole process (ms)", steadies, lambda x: x.cpu_ms_per_update)
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
    if failures.count:
        print(f"handler exceptions logged by aiogram: {failures.count} (first: {failures.first})")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
