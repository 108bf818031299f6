"""Benchmark of cases: many low scores in a few minutes, every card to its staff chat in turn.

One run on a fresh database and a fresh emulator with Telegram's limits on (`Limits()`: 20
messages a minute per group, 30 a second per bot, 3 at once then 1 a second per private chat),
everything in this one process and event loop (like bench/conversation.py): the emulator, the
simulated people and the real `Application` polling the emulator over HTTP, on the real clock
(SystemClock, so job due times and real pacing agree) with the production rate limiter
(`RateLimiter.from_settings`) and the default scheduler settings.

1. Set-up (not measured): ``--chats`` staff groups (3), each registered as a staff chat
   (`StaffChatService.register`) with one routing rule for its location; ``--cases`` customers
   (1,000) who pressed Start, each with a visit at one of those locations in turn and a survey
   the real scheduler sent into their chat (through the same limiter, limits on).
2. Measured: over ``--spread`` seconds (300), evenly, each customer taps a low score (1–3) on
   their survey (`SimUser.tap`) and stops there. The bot answers them (apology and reason chips)
   and opens a case; the case's card is posted `CARD_SETTLE` (20 s) later unless that chat is
   busy, in which case `CardPacer` gives it a later turn (18 cards a minute per staff chat) and,
   when a chat's backlog passes a minute, a digest lists the waiting cases. Meanwhile a probe
   records a visit due now for a fresh customer every ``--probe-every`` seconds (30): how long
   until its survey is out shows whether card jobs starve the scheduler. The run ends when every
   case has its card (or at a deadline).

Latency of a case: from the customer's tap (the moment the update is pushed into the emulator)
to the emulator's record of the card's accepted sendMessage in the staff chat (`Call.time`, the
same monotonic clock). It includes the `CARD_SETTLE` wait; "after settle" subtracts it. Cards
are found by the case id in their first line ("Case #N"), so a card posted twice or never is
seen; cases are matched to customers through the database.

Telegram allows 20 messages a minute per group, so 1,000 cards over 3 chats need at least
1,000 / 57 ≈ 17.5 minutes: the default run takes about 18–20 minutes and prints progress
every 30 s. A quick run: ``--cases 120 --spread 60`` (about 3 minutes).

    .venv/bin/python bench/cases.py [--cases 1000] [--chats 3] [--spread 300]

SQLite (a temporary file) by default; PostgreSQL with ``--database-url`` or
HEARBACK_TEST_DATABASE_URL (a throw-away database is created on that server and dropped).

Prints progress, a table, then one JSON object as the last line:
{"cases", "cards_delivered", "http_429", "p50_s", "p99_s", …}.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import random
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlalchemy import func, select

from bot.app import Application
from bot.callbacks import ScoreCallback
from bot.cases import CARD_SETTLE, CASE_POST, CardPacer
from bot.clock import SystemClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import SimChat, StoredMessage
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.simulation import started_customers, visits_due_now
from storage.db import backend_name, create_database, drop_database
from storage.migrate import upgrade_async
from storage.models import Case, Customer, Job, Survey, SurveyState
from storage.staff_repository import StaffRepository

BUSINESS = "Rice Shop"
ADMIN_ID = 900_000_001
LOCATIONS = ("Downtown", "Riverside", "Airport", "Harbour", "Old Town", "University")
#: Telegram's limit in a group, and the bot's own pace for cards (bot.cases.CardPacer).
GROUP_PER_MINUTE = 20
PACED_PER_MINUTE = CardPacer().per_minute  # what the product paces cards at
PROGRESS_EVERY = 30.0
SETTLE_S = CARD_SETTLE.total_seconds()
CARD_LINE = re.compile(r"Case #(\d+) · ")
DIGEST_LINE = re.compile(r"^(\d+) cases are waiting to be posted here")

log = logging.getLogger("bench.cases")


# ------------------------------------------------------------------------------ what was sent


@dataclass
class StaffSide:
    """One staff chat as the emulator saw it."""

    title: str
    location: str
    chat_id: int
    row_id: int
    cards: list[tuple[float, int]] = field(default_factory=list)  # (time, case id)
    digests: list[tuple[float, int]] = field(default_factory=list)  # (time, cases listed)
    other: int = 0  # messages that were neither a card nor a digest

    def times(self) -> list[float]:
        return sorted([t for t, _ in self.cards] + [t for t, _ in self.digests])


@dataclass
class Watch:
    """Reads the emulator's recorded calls as they accumulate (`Emulator.calls`, in order)."""

    emulator: Emulator
    bot: BotAccount
    chats: dict[int, StaffSide]
    #: Customers' chats: the first message after their tap (the apology) → its time.
    tapped_at: dict[int, float] = field(default_factory=dict)
    replied_at: dict[int, float] = field(default_factory=dict)
    #: Probe customers: when their visit was recorded, when their survey arrived.
    probe_due: dict[int, float] = field(default_factory=dict)
    probe_sent: dict[int, float] = field(default_factory=dict)
    card_times: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    http_429: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    _position: int = 0
    _dropped: int = 0

    def scan(self) -> None:
        calls = self.emulator.calls
        dropped = self.emulator.calls_dropped - self._dropped
        if dropped:  # the emulator trimmed its oldest calls: keep our place in the list
            self._position = max(0, self._position - dropped)
            self._dropped = self.emulator.calls_dropped
        fresh = calls[self._position :]
        self._position = len(calls)
        for call in fresh:
            if call.token != self.bot.token or call.method == "getUpdates":
                continue
            if call.status == 429:
                where = "group" if int(call.params.get("chat_id", 0) or 0) < 0 else "private"
                self.http_429[f"{call.method} ({where})"] += 1
                continue
            if not call.ok:
                self.errors[f"{call.method} -> {call.status}"] += 1
                continue
            if call.method != "sendMessage":
                continue
            chat_id = int(call.params["chat_id"])
            staff = self.chats.get(chat_id)
            text = str(call.params.get("text", ""))
            if staff is not None:
                card = CARD_LINE.search(text.split("\n", 1)[0])
                digest = DIGEST_LINE.match(text)
                if card:
                    case_id = int(card.group(1))
                    staff.cards.append((call.time, case_id))
                    self.card_times[case_id].append(call.time)
                elif digest:
                    staff.digests.append((call.time, int(digest.group(1))))
                else:
                    staff.other += 1
            elif chat_id in self.tapped_at:
                if chat_id not in self.replied_at and call.time >= self.tapped_at[chat_id]:
                    self.replied_at[chat_id] = call.time
            elif chat_id in self.probe_due and chat_id not in self.probe_sent:
                self.probe_sent[chat_id] = call.time


# ---------------------------------------------------------------------------------- set-up


async def _started(app: Application) -> asyncio.Task[None]:
    running = asyncio.create_task(app.run(), name="hearback")
    started = asyncio.ensure_future(app.started.wait())
    await asyncio.wait({running, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not app.started.is_set():
        started.cancel()
        await running  # surfaces the start-up failure
        raise RuntimeError("the bot did not start within 60 s")
    return running


async def staff_chats(
    app: Application, emulator: Emulator, bot: BotAccount, count: int
) -> list[tuple[SimChat, StaffSide]]:
    """``count`` plain groups, each a registered staff chat with a rule for its location."""
    made = []
    for n in range(count):
        location = LOCATIONS[n] if n < len(LOCATIONS) else f"Branch {n + 1}"
        staff = emulator.add_user(first_name=f"Staff{n}")
        group = emulator.add_group(f"{location} team", members=[staff], admins=[])
        emulator.add_bot_to_chat(bot, group)
        registration = await app.staff_chats.register(group.id, by=ADMIN_ID)
        if not registration.registered or registration.chat is None:
            raise RuntimeError(f"staff chat {group.id} refused: {registration}")
        async with app.session_factory.begin() as session:
            await StaffRepository(session).add_rule(
                staff_chat_id=registration.chat.id,
                location=location,
                created_by=ADMIN_ID,
                now=app.clock.now(),
            )
        made.append((group, StaffSide(group.title or "", location, group.id, registration.chat.id)))
    return made


async def surveys_waiting(app: Application) -> int:
    async with app.session_factory() as session:
        statement = select(func.count()).select_from(Survey)
        return int(await session.scalar(statement.where(Survey.state == SurveyState.SCHEDULED)))


async def surveyed(
    app: Application,
    emulator: Emulator,
    bot: BotAccount,
    count: int,
    locations: list[str],
) -> list[tuple[SimUser, str, StoredMessage]]:
    """``count`` customers, locations in turn, each with a survey the scheduler sent them."""
    people = await started_customers(app, emulator, bot, count)
    await visits_due_now(app, people, locations)
    await emulator.wait_for(
        lambda: all(person.inbox(bot) for person in people),
        timeout=120 + count / 10,
        interval=0.2,
        message="every survey delivered",
    )
    # The inbox fills when Telegram accepts the send; the survey is marked sent just after.
    for _ in range(600):
        if await surveys_waiting(app) == 0:
            break
        await asyncio.sleep(0.1)
    return [
        (person, locations[n % len(locations)], person.inbox(bot)[0])
        for n, person in enumerate(people)
    ]


# ------------------------------------------------------------------------------- the measured run


@dataclass
class Sample:
    """The scheduler and the queue, looked at once a second."""

    in_flight_max: int = 0
    in_flight_sum: int = 0
    samples: int = 0
    lag_max_s: float = 0.0  # the oldest due-but-unclaimed job's wait, at its worst
    due_max: int = 0


async def case_ids(app: Application) -> dict[int, int]:
    """Every case: id → the customer's Telegram user id."""
    async with app.session_factory() as session:
        rows = await session.execute(
            select(Case.id, Customer.telegram_user_id).join(
                Customer, Customer.id == Case.customer_id
            )
        )
        return {int(case_id): int(user_id or 0) for case_id, user_id in rows}


async def jobs_summary(app: Application) -> dict[str, Counter[str]]:
    async with app.session_factory() as session:
        rows = await session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        )
        summary: dict[str, Counter[str]] = defaultdict(Counter)
        for kind, state, count in rows:
            summary[kind][str(getattr(state, "value", state))] = int(count)
        return summary


async def attempts_over_one(app: Application, kind: str) -> int:
    async with app.session_factory() as session:
        statement = select(func.count()).select_from(Job)
        statement = statement.where(Job.kind == kind, Job.attempts > 1)
        return int(await session.scalar(statement) or 0)


async def card_turns(app: Application) -> dict[int, float]:
    """When each card was due to go: case id → POSIX seconds of its post job's due time (its
    turn job's, for a card that waited for a turn)."""
    async with app.session_factory() as session:
        rows = await session.execute(select(Job.payload, Job.due_at).where(Job.kind == CASE_POST))
        due: dict[int, tuple[bool, float]] = {}
        for payload, due_at in rows:
            case_id, turn = int(payload["case_id"]), bool(payload.get("turn"))
            if due_at.tzinfo is None:
                due_at = due_at.replace(tzinfo=UTC)
            if case_id not in due or turn:
                due[case_id] = (turn, due_at.timestamp())
        return {case_id: at for case_id, (_, at) in due.items()}


@dataclass
class Outcome:
    watch: Watch
    staff: list[StaffSide]
    taps: int
    cases: dict[int, int]
    spread: float
    started: float
    finished: float
    timed_out: bool
    http_429_setup: int
    http_429: int
    sample: Sample
    jobs: dict[str, Counter[str]]
    post_retries: int
    limiter_429: int
    turns: dict[int, float]
    wall_offset: float  # POSIX seconds − monotonic seconds


async def run(args: argparse.Namespace, url: str) -> Outcome:
    await upgrade_async(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        business_name=BUSINESS,
        http_port=0,
        shutdown_timeout=10,
        log_level="WARNING",
        admin_ids=[ADMIN_ID],
        quiet_hours="",  # the real clock may be at night where the default zone is
    )
    limiter = RateLimiter.from_settings(settings)  # the production limiter, as Application's
    async with Emulator(limits=Limits()) as emulator:
        account = emulator.add_bot(username="hearback_bench_bot", first_name=BUSINESS)
        app = Application(
            settings,
            token=account.token,
            api_url=emulator.url,
            clock=SystemClock(),
            limiter=limiter,
        )
        running = await _started(app)
        try:
            return await measured(app, emulator, account, limiter, args)
        finally:
            app.stop()
            await asyncio.wait_for(running, 60)


async def measured(
    app: Application,
    emulator: Emulator,
    account: BotAccount,
    limiter: RateLimiter,
    args: argparse.Namespace,
) -> Outcome:
    groups = await staff_chats(app, emulator, account, args.chats)
    staff = [side for _, side in groups]
    print(
        f"set-up: {args.chats} staff chats registered with a rule each; "
        f"sending {args.cases} surveys …",
        flush=True,
    )
    began_setup = time.monotonic()
    customers = await surveyed(app, emulator, account, args.cases, [s.location for s in staff])
    print(f"set-up: {args.cases} surveys out in {time.monotonic() - began_setup:.1f} s", flush=True)
    watch = Watch(emulator, account, {side.chat_id: side for side in staff})
    watch.scan()  # skip what set-up sent
    http_429_setup = emulator.stats.too_many_requests
    limiter_429_setup = limiter.stats.too_many_requests
    by_location = {side.location: side for side in staff}
    rng = random.Random(args.seed)
    plan = []
    for person, location, survey in customers:
        survey_id = ScoreCallback.unpack(survey.callback_data[0]).survey_id
        data = ScoreCallback(survey_id=survey_id, score=rng.randint(1, 3)).pack()
        plan.append((person, by_location[location], survey, data))
    # What is alive now (the emulator's people and chats) stays: keep it out of full collections.
    gc.collect()
    gc.freeze()

    tapped_for: dict[int, StaffSide] = {}  # customer → the staff chat their case goes to
    sample = Sample()
    stop = asyncio.Event()
    start = time.monotonic() + 0.1

    async def tapper() -> None:
        for n, (person, side, survey, data) in enumerate(plan):
            delay = start + n * args.spread / len(plan) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            watch.tapped_at[person.id] = time.monotonic()
            tapped_for[person.id] = side
            await person.tap(account, survey, data)

    async def prober() -> None:
        n = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), args.probe_every)
                return
            except TimeoutError:
                pass
            [probe] = await started_customers(app, emulator, account, 1, prefix=f"Probe{n}-")
            watch.probe_due[probe.id] = time.monotonic()
            await visits_due_now(app, [probe], [staff[0].location])
            n += 1

    async def sampler() -> None:
        while not stop.is_set():
            in_flight = app.scheduler.in_flight
            sample.in_flight_max = max(sample.in_flight_max, in_flight)
            sample.in_flight_sum += in_flight
            sample.samples += 1
            depth = await app.jobs.depth(app.clock.now())
            sample.lag_max_s = max(sample.lag_max_s, depth.lag.total_seconds())
            sample.due_max = max(sample.due_max, depth.due)
            await asyncio.sleep(1.0)

    def progress(now: float) -> str:
        parts = []
        for side in staff:
            routed = sum(1 for s in tapped_for.values() if s is side)
            parts.append(
                f"{side.location[:10]} {len(side.cards)}/{routed} "
                f"(backlog {routed - len(side.cards)}, digests {len(side.digests)})"
            )
        probes = [
            watch.probe_sent[p] - watch.probe_due[p]
            for p in watch.probe_sent
            if p in watch.probe_due
        ]
        probe = f"{max(probes):.1f}s" if probes else "-"
        return (
            f"t={now - start:6.0f}s taps {len(watch.tapped_at):>5}/{len(plan)}  cards "
            + " | ".join(parts)
            + f"  429s {emulator.stats.too_many_requests - http_429_setup}"
            f"  in-flight {app.scheduler.in_flight}  worst probe {probe}"
        )

    per_chat = math.ceil(len(plan) / max(1, len(staff)))
    deadline = start + args.spread + SETTLE_S + per_chat * 60 / PACED_PER_MINUTE * 1.3 + 180
    tasks = [asyncio.create_task(tapper()), asyncio.create_task(sampler())]
    if args.probe_every > 0:
        tasks.append(asyncio.create_task(prober()))
    next_progress = start + PROGRESS_EVERY
    next_check = start
    cases: dict[int, int] = {}
    timed_out = False
    try:
        while True:
            await asyncio.sleep(0.5)
            watch.scan()
            now = time.monotonic()
            if now >= next_progress:
                print(progress(now), flush=True)
                next_progress += PROGRESS_EVERY
            if tasks[0].done():
                tasks[0].result()  # a failed tap surfaces here
                if now >= next_check:
                    next_check = now + 2.0
                    cases = await case_ids(app)
                    if len(cases) >= len(plan) and all(c in watch.card_times for c in cases):
                        break
            if now > deadline:
                timed_out = True
                break
        finished = max((t for ts in watch.card_times.values() for t in ts), default=start)
        # A little longer: a card sent twice would show now.
        await asyncio.sleep(5.0)
        watch.scan()
        print(progress(time.monotonic()), flush=True)
    finally:
        stop.set()
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
    cases = await case_ids(app)
    return Outcome(
        watch=watch,
        staff=staff,
        taps=len(watch.tapped_at),
        cases=cases,
        spread=args.spread,
        started=start,
        finished=finished,
        timed_out=timed_out,
        http_429_setup=http_429_setup,
        http_429=emulator.stats.too_many_requests - http_429_setup,
        sample=sample,
        jobs=await jobs_summary(app),
        post_retries=await attempts_over_one(app, CASE_POST),
        limiter_429=limiter.stats.too_many_requests - limiter_429_setup,
        turns=await card_turns(app),
        wall_offset=time.time() - time.monotonic(),
    )


# ---------------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def busiest_minute(times: list[float]) -> int:
    """The most messages in any 60 s window."""
    best, low = 0, 0
    for high, at in enumerate(times):
        while at - times[low] >= 60.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def report(outcome: Outcome, backend: str) -> dict[str, Any]:
    watch, staff = outcome.watch, outcome.staff
    latencies = []
    for case_id, user_id in outcome.cases.items():
        tapped = watch.tapped_at.get(user_id)
        times = watch.card_times.get(case_id)
        if tapped is not None and times:
            latencies.append(min(times) - tapped)
    carded = [c for c in outcome.cases if c in watch.card_times]
    twice = sum(len(ts) - 1 for ts in watch.card_times.values() if len(ts) > 1)
    strays = [c for c in watch.card_times if c not in outcome.cases]
    taps_without_case = outcome.taps - len(
        {u for u in outcome.cases.values() if u in watch.tapped_at}
    )
    lost = len(outcome.cases) - len(carded) + taps_without_case
    after = [value - SETTLE_S for value in latencies]
    late = [
        min(watch.card_times[c]) + outcome.wall_offset - outcome.turns[c]
        for c in carded
        if c in outcome.turns
    ]
    replies = [watch.replied_at[u] - t for u, t in watch.tapped_at.items() if u in watch.replied_at]
    probes = [watch.probe_sent[p] - watch.probe_due[p] for p in watch.probe_sent]
    probes_missing = len(watch.probe_due) - len(watch.probe_sent)
    duration = outcome.finished - outcome.started
    digests = sum(len(side.digests) for side in staff)

    print()
    print(
        f"Cases through the Bot API emulator to {len(staff)} staff chats, Telegram's limits on "
        f"({backend}, real clock, production rate limiter)"
    )
    print(
        f"{outcome.taps} low-score taps spread evenly over {outcome.spread:.0f} s; "
        f"the run took {duration:.0f} s from the first tap to the last card"
        + (" (DEADLINE REACHED)" if outcome.timed_out else "")
    )
    print()
    header = (
        f"{'staff chat':<18}{'cards':>7}{'digests':>9}{'other':>7}{'first s':>9}{'last s':>9}"
        f"{'msgs/min':>10}{'max in 60 s':>13}"
    )
    print(header)
    print("-" * len(header))
    for side in staff:
        times = side.times()
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        rate = (len(times) - 1) / span * 60 if span else 0.0
        first = times[0] - outcome.started if times else math.nan
        last = times[-1] - outcome.started if times else math.nan
        print(
            f"{side.title:<18}{len(side.cards):>7}{len(side.digests):>9}{side.other:>7}"
            f"{first:>9.0f}{last:>9.0f}{rate:>10.2f}{busiest_minute(times):>13}"
        )
    print(
        f"(Telegram allows {GROUP_PER_MINUTE} messages a minute in a group; the bot paces cards "
        f"at {PACED_PER_MINUTE}. msgs/min counts cards and digests from a chat's first to last.)"
    )
    print()
    rows = [
        ("cases opened / taps", f"{len(outcome.cases)} / {outcome.taps}"),
        ("cards delivered (distinct cases)", f"{len(carded)}"),
        ("cards sent twice / lost cases", f"{twice} / {lost}"),
        ("cards for unknown cases", f"{len(strays)}"),
        ("digests sent", f"{digests}"),
        (
            "HTTP 429 (measured / set-up)",
            f"{outcome.http_429} / {outcome.http_429_setup}"
            + (f"  {dict(watch.http_429)}" if watch.http_429 else ""),
        ),
        ("other errors", f"{dict(watch.errors) or 0}"),
        (
            "tap → card p50 / p90 / p99 / max (s)",
            f"{percentile(latencies, 50):.1f} / {percentile(latencies, 90):.1f} / "
            f"{percentile(latencies, 99):.1f} / {max(latencies, default=math.nan):.1f}",
        ),
        ("  of which CARD_SETTLE (fixed, s)", f"{SETTLE_S:.0f}"),
        (
            "  after settle p50 / p99 (s)",
            f"{percentile(after, 50):.1f} / {percentile(after, 99):.1f}",
        ),
        (
            "tap → customer's apology p50 / p99 (ms)",
            f"{percentile(replies, 50) * 1000:.0f} / {percentile(replies, 99) * 1000:.0f}"
            f" ({len(replies)} of {outcome.taps})",
        ),
        (
            "probe surveys: sent / max wait (s)",
            f"{len(probes)} / {max(probes, default=math.nan):.1f}"
            + (f" ({probes_missing} never sent)" if probes_missing else ""),
        ),
        (
            "scheduler in flight max / mean",
            f"{outcome.sample.in_flight_max} / "
            f"{outcome.sample.in_flight_sum / max(1, outcome.sample.samples):.1f}"
            f" (WORKER_CONCURRENCY 40)",
        ),
        (
            "queue: most due at once / worst lag (s)",
            f"{outcome.sample.due_max} / {outcome.sample.lag_max_s:.1f}",
        ),
        (
            "card out after its turn p50 / p99 / max (s)",
            f"{percentile(late, 50):.2f} / {percentile(late, 99):.2f} / "
            f"{max(late, default=math.nan):.2f}",
        ),
        ("case_post jobs claimed more than once", f"{outcome.post_retries}"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print()
    print("jobs at the end (kind: state counts):")
    for kind, states in sorted(outcome.jobs.items()):
        print(f"  {kind:<16}" + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
    print()
    print(
        f"Latency: from the tap (update pushed) to the emulator accepting the card's sendMessage "
        f"in the staff chat; it includes CARD_SETTLE ({SETTLE_S:.0f} s: a card waits for the "
        "reasons and comment unless the customer asks for contact), which 'after settle' takes "
        "off. Probe: a visit due now recorded every 30 s during the run; its wait is from "
        "recording to the survey in the customer's chat (the scheduler polls every 1 s). "
        "After its turn: from the due time of the card's post job (its turn job when it waited) "
        "to the card, i.e. the scheduler's pick-up plus any wait in the rate limiter."
    )
    return {
        "cases": outcome.taps,
        "cards_delivered": len(carded),
        "http_429": outcome.http_429,
        "p50_s": round(percentile(latencies, 50), 1),
        "p99_s": round(percentile(latencies, 99), 1),
        "p50_after_settle_s": round(percentile(after, 50), 1),
        "p99_after_settle_s": round(percentile(after, 99), 1),
        "settle_s": SETTLE_S,
        "chats": len(staff),
        "spread_s": outcome.spread,
        "digests": digests,
        "duplicates": twice,
        "lost": lost,
        "duration_s": round(duration, 1),
        "probe_max_s": round(max(probes, default=math.nan), 2),
    }


# ---------------------------------------------------------------------------------- main


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="customers tapping a low score")
    parser.add_argument("--chats", type=int, default=3, help="staff chats, one location each")
    parser.add_argument(
        "--spread", type=float, default=300.0, help="seconds over which the taps come, evenly"
    )
    parser.add_argument(
        "--probe-every", type=float, default=30.0, help="seconds between probe surveys (0: none)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARBACK_TEST_DATABASE_URL") or None,
        help="a PostgreSQL server URL (default: SQLite in a temporary directory)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    scratch = None
    server = args.database_url
    if not server:
        scratch = tempfile.TemporaryDirectory(prefix="hearback-bench-")
        server = f"sqlite+aiosqlite:///{scratch.name}/"
    try:
        url = await create_database(server)
        try:
            outcome = await run(args, url)
        finally:
            await drop_database(url)
    finally:
        if scratch is not None:
            scratch.cleanup()
    figures = report(outcome, backend_name(server))
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
