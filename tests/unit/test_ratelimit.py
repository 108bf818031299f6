"""The rate limiter on virtual time: pacing math, the 429 pause, retries, paid broadcast.

Nothing here sleeps for real. `VirtualTime` hands the limiter a clock and a sleep; when every
task is waiting, it jumps the clock to the earliest wake-up, so send times come out exact.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetUpdates,
    SendChatAction,
    SendMessage,
    TelegramMethod,
)

from bot.app import build_bot
from bot.emulator.methods import SENDING_METHODS as EMULATOR_SENDING_METHODS
from bot.ratelimit import (
    SENDING_METHODS,
    Bucket,
    MemoryBudget,
    RateLimiter,
    RetryPolicy,
    SendLimits,
    broadcast,
    counts_as_message,
)
from bot.settings import Settings

BOT = Bot("42:TEST")
LIMITS = SendLimits()  # 29.5/s burst 3 overall, 1/s per private chat, 19/min per group


class VirtualTime:
    """A clock and a sleep for the limiter; `run` advances the clock only when all are idle."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, *calls: Awaitable[Any]) -> list[Any]:
        """Run ``calls`` concurrently, in the order given, to the end; results or exceptions."""
        tasks = [asyncio.ensure_future(call) for call in calls]
        while True:
            await self._settle()
            if all(task.done() for task in tasks):
                break
            assert self._sleepers, "tasks are stuck with nobody asleep"
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            if not future.cancelled():
                future.set_result(None)
        return [task.exception() or task.result() for task in tasks]

    @staticmethod
    async def _settle() -> None:
        for _ in range(200):  # let every task run until it waits on the clock again
            await asyncio.sleep(0)


class Telegram:
    """A stand-in for the HTTP session: records when each call arrives, answers from a script."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.calls: list[tuple[float, TelegramMethod[Any]]] = []
        self.script: list[Callable[[TelegramMethod[Any]], Any]] = []

    async def __call__(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        self.calls.append((self.vt.now, method))
        if self.script:
            answer = self.script.pop(0)
            return answer(method)
        return True

    def fail(self, *errors: Callable[[TelegramMethod[Any]], Exception]) -> None:
        def raising(error: Callable[[TelegramMethod[Any]], Exception]) -> Callable[..., Any]:
            def answer(method: TelegramMethod[Any]) -> Any:
                raise error(method)

            return answer

        self.script.extend(raising(error) for error in errors)

    def times(self, chat_id: int | str | None = None) -> list[float]:
        return [t for t, m in self.calls if chat_id is None or getattr(m, "chat_id", 0) == chat_id]

    def texts(self) -> list[str]:
        return [m.text for _, m in self.calls if isinstance(m, SendMessage)]


def server_error(method: TelegramMethod[Any]) -> Exception:
    return TelegramServerError(method=method, message="Internal Server Error")


def timeout(method: TelegramMethod[Any]) -> Exception:
    return TelegramNetworkError(method=method, message="Request timeout error")


def flood(seconds: int) -> Callable[[TelegramMethod[Any]], Exception]:
    def error(method: TelegramMethod[Any]) -> Exception:
        return TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=seconds)

    return error


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def telegram(vt: VirtualTime) -> Telegram:
    return Telegram(vt)


def make_limiter(vt: VirtualTime, **kwargs: Any) -> RateLimiter:
    kwargs.setdefault("jitter", lambda: 0.5)
    return RateLimiter(now=vt.clock, sleep=vt.sleep, **kwargs)


def send(limiter: RateLimiter, telegram: Telegram, chat_id: int | str, text: str = "hi") -> Any:
    return limiter(telegram, BOT, SendMessage(chat_id=chat_id, text=text))


def conforms(times: Iterable[float], capacity: float, per_second: float) -> bool:
    """Whether sends at ``times`` never overdraw a full bucket of ``capacity`` at ``per_second``:
    in every window [a, b] at most capacity + per_second·(b − a) of them."""
    ordered = sorted(times)
    return all(
        j - i + 1 <= capacity + per_second * (ordered[j] - ordered[i]) + 1e-6
        for i in range(len(ordered))
        for j in range(i, len(ordered))
    )


# ------------------------------------------------------------------------ what counts


def test_the_methods_that_count_are_the_emulators() -> None:
    assert {name.lower() for name in SENDING_METHODS} == set(EMULATOR_SENDING_METHODS)


@pytest.mark.parametrize(
    ("name", "counted"),
    [
        ("sendMessage", True),
        ("SENDMESSAGE", True),
        ("sendPhoto", True),
        ("sendMediaGroup", True),
        ("copyMessage", True),
        ("forwardMessages", True),
        ("sendChatAction", False),
        ("sendMessageDraft", False),
        ("editMessageText", False),
        ("answerCallbackQuery", False),
        ("getUpdates", False),
        ("createForumTopic", False),
    ],
)
def test_counts_as_message(name: str, counted: bool) -> None:
    assert counts_as_message(name) is counted


# ------------------------------------------------------------------------ the budget


def test_a_bucket_starts_full_and_refills_evenly() -> None:
    now = [0.0]
    budget = MemoryBudget(lambda: now[0])
    chat = Bucket("chat:1", capacity=3, per_second=1.0)

    async def scenario() -> None:
        assert [await budget.take([chat]) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await budget.take([chat]) == pytest.approx(1.0)
        now[0] = 0.25
        assert await budget.available_in([chat]) == pytest.approx(0.75)
        now[0] = 1.0
        assert await budget.take([chat]) == 0.0
        now[0] = 100.0
        assert budget.tokens(chat) == 3  # never more than the capacity

    asyncio.run(scenario())


def test_taking_is_all_or_nothing() -> None:
    now = [0.0]
    budget = MemoryBudget(lambda: now[0])
    empty = Bucket("empty", capacity=1, per_second=0.5)
    full = Bucket("full", capacity=5, per_second=1.0)

    async def scenario() -> None:
        assert await budget.take([empty]) == 0.0
        assert await budget.take([empty, full]) == pytest.approx(2.0)
        assert budget.tokens(full) == 5  # nothing taken from the bucket that had tokens

    asyncio.run(scenario())


def test_a_pause_holds_every_bucket_and_only_grows() -> None:
    now = [10.0]
    budget = MemoryBudget(lambda: now[0])
    fresh = Bucket("fresh", capacity=30, per_second=30)

    async def scenario() -> None:
        await budget.pause(5)
        assert await budget.take([fresh]) == pytest.approx(5.0)
        await budget.pause(2)  # a shorter pause does not cut the longer one short
        assert await budget.available_in([fresh]) == pytest.approx(5.0)
        assert await budget.available_in([]) == pytest.approx(5.0)
        now[0] = 15.0
        assert await budget.take([fresh]) == 0.0

    asyncio.run(scenario())


def test_refilled_buckets_are_forgotten() -> None:
    now = [0.0]
    budget = MemoryBudget(lambda: now[0])

    async def scenario() -> None:
        for chat in range(2000):
            now[0] += 0.01
            await budget.take([Bucket(f"chat:{chat}", 1, 1.0)])
        # Sweeps every 1024 takes drop the buckets that have refilled (older than a second).
        assert len(budget) < 1200

    asyncio.run(scenario())


# ------------------------------------------------------------------------ pacing


async def test_one_private_chat_gets_one_message_a_second_in_order(vt, telegram) -> None:
    limiter = make_limiter(vt)
    await vt.run(*(send(limiter, telegram, 7, f"m{i}") for i in range(5)))
    assert telegram.times() == pytest.approx([0, 1, 2, 3, 4])
    assert telegram.texts() == ["m0", "m1", "m2", "m3", "m4"]


async def test_overall_rate_stays_under_thirty_a_second(vt, telegram) -> None:
    limiter = make_limiter(vt)
    await vt.run(*(send(limiter, telegram, 1000 + i) for i in range(120)))
    times = telegram.times()
    assert len(times) == 120
    assert conforms(times, LIMITS.burst, LIMITS.per_second)
    # The emulator's (and Telegram's) bucket: 30 at once, 30/s: never overdrawn.
    assert conforms(times, 30, 30.0)
    # Sustained rate: the limit exactly, after the first burst.
    sustained = (120 - LIMITS.burst) / (times[-1] - times[0])
    assert sustained == pytest.approx(29.5)


async def test_a_group_gets_nineteen_a_minute(vt, telegram) -> None:
    limiter = make_limiter(vt)
    await vt.run(*(send(limiter, telegram, -100123, f"card {i}") for i in range(6)))
    assert telegram.times() == pytest.approx([i * 60 / 19 for i in range(6)])
    # In no minute more than 20, even counting a closed 60 s window.
    assert conforms(telegram.times(), 20, 20 / 60)


async def test_usernames_and_numeric_strings_are_chats_too(vt, telegram) -> None:
    limiter = make_limiter(vt)
    await vt.run(
        send(limiter, telegram, "@staff_room"),
        send(limiter, telegram, "@Staff_Room"),
        send(limiter, telegram, "77"),
        send(limiter, telegram, 77),
    )
    by_chat = {str(m.chat_id).lower(): t for t, m in telegram.calls}
    assert telegram.times("@staff_room") == [0.0]
    assert by_chat["@staff_room"] == pytest.approx(60 / 19)  # the same group
    assert sorted(t for t, m in telegram.calls if str(m.chat_id) == "77") == pytest.approx([0, 1])


async def test_a_busy_chat_does_not_hold_up_the_others(vt, telegram) -> None:
    limiter = make_limiter(vt)
    busy = [send(limiter, telegram, 1, f"busy {i}") for i in range(10)]
    others = [send(limiter, telegram, 100 + i, "other") for i in range(20)]
    await vt.run(*busy, *others)
    assert max(t for t, m in telegram.calls if m.chat_id >= 100) < 1.0
    assert telegram.times(1) == pytest.approx(list(range(10)))


async def test_many_chats_mixed_every_limit_holds(vt, telegram) -> None:
    limiter = make_limiter(vt)
    calls = []
    for round_ in range(3):
        calls += [send(limiter, telegram, 500 + chat, f"{chat}/{round_}") for chat in range(40)]
    calls += [send(limiter, telegram, -42, f"group {i}") for i in range(4)]
    await vt.run(*calls)
    assert len(telegram.calls) == 124
    assert conforms(telegram.times(), LIMITS.burst, LIMITS.per_second)
    for chat in range(40):
        assert conforms(telegram.times(500 + chat), 1, 1.0)
        assert [m.text for _, m in telegram.calls if m.chat_id == 500 + chat] == [
            f"{chat}/{r}" for r in range(3)
        ]
    assert conforms(telegram.times(-42), 1, 19 / 60)


async def test_methods_that_send_nothing_are_not_paced(vt, telegram) -> None:
    limiter = make_limiter(vt)
    calls = [limiter(telegram, BOT, SendChatAction(chat_id=1, action="typing")) for _ in range(20)]
    calls += [
        limiter(telegram, BOT, EditMessageText(chat_id=1, message_id=i, text="x"))
        for i in range(20)
    ]
    calls += [
        limiter(telegram, BOT, AnswerCallbackQuery(callback_query_id=str(i))) for i in range(20)
    ]
    await vt.run(*calls)
    assert telegram.times() == [0.0] * 60


async def test_idle_chats_are_forgotten(vt, telegram) -> None:
    limiter = make_limiter(vt)
    await vt.run(*(send(limiter, telegram, chat) for chat in range(1, 50)))
    assert limiter._chats == {}


async def test_a_cancelled_send_leaves_nothing_behind(vt, telegram) -> None:
    limiter = make_limiter(vt)
    first = asyncio.ensure_future(send(limiter, telegram, 5, "first"))
    waiting = asyncio.ensure_future(send(limiter, telegram, 5, "second"))
    await vt.run(first, asyncio.sleep(0))
    waiting.cancel()
    await vt.run(asyncio.gather(waiting, return_exceptions=True))
    assert limiter._chats == {}
    assert telegram.texts() == ["first"]


# ------------------------------------------------------------------------ failures


async def test_a_429_pauses_every_send_and_the_call_is_retried(vt, telegram) -> None:
    limiter = make_limiter(vt)
    telegram.fail(flood(5))
    results = await vt.run(*(send(limiter, telegram, 10 + i, f"m{i}") for i in range(6)))
    assert results == [True] * 6
    assert limiter.stats.too_many_requests == 1
    refused_at = telegram.calls[0][0]
    after = [t for t, _ in telegram.calls[1:]]
    # Sends granted before the 429 came back went out; nothing after it until the pause ended.
    assert sum(1 for t in after if t < refused_at + 5) <= LIMITS.burst - 1
    assert telegram.texts().count("m0") == 2
    assert sorted(set(telegram.texts())) == [f"m{i}" for i in range(6)]


async def test_a_429_storm_is_waited_out_however_long(vt, telegram) -> None:
    limiter = make_limiter(vt)
    telegram.fail(*[flood(3)] * 10)
    [result] = await vt.run(send(limiter, telegram, 1))
    assert result is True
    assert len(telegram.calls) == 11
    assert telegram.calls[-1][0] >= 30


async def test_a_429_on_a_method_that_sends_nothing_waits_for_that_call_only(vt, telegram) -> None:
    limiter = make_limiter(vt)
    telegram.fail(flood(4))
    edit = limiter(telegram, BOT, EditMessageText(chat_id=1, message_id=1, text="x"))
    await vt.run(edit, send(limiter, telegram, 2))
    edits = [t for t, m in telegram.calls if isinstance(m, EditMessageText)]
    assert edits == [0.0, 4.0]
    assert telegram.times(2) == [0.0]


@pytest.mark.parametrize("error", [server_error, timeout], ids=["5xx", "timeout"])
async def test_server_errors_and_timeouts_are_retried_with_backoff(vt, telegram, error) -> None:
    limiter = make_limiter(vt, retry=RetryPolicy(attempts=5, base_delay=0.5, max_delay=30))
    telegram.fail(error, error, error)
    edit = EditMessageText(chat_id=1, message_id=1, text="x")  # not paced: only backoff sleeps
    [result] = await vt.run(limiter(telegram, BOT, edit))
    assert result is True
    assert len(telegram.calls) == 4
    assert vt.sleeps == [0.25, 0.5, 1.0]  # jitter 0.5 of 0.5, 1 and 2 s
    assert limiter.stats.retried == 3


async def test_a_retried_send_takes_its_turn_again(vt, telegram) -> None:
    limiter = make_limiter(vt, jitter=lambda: 0.0)
    telegram.fail(server_error, timeout)
    [result] = await vt.run(send(limiter, telegram, 1))
    assert result is True
    assert telegram.times() == pytest.approx([0, 1, 2])  # each try is a message to the chat
    assert limiter.stats.retried == 2
    assert limiter.stats.sent == 1


async def test_after_the_last_attempt_the_error_propagates(vt, telegram) -> None:
    limiter = make_limiter(vt, retry=RetryPolicy(attempts=3))
    telegram.fail(*[server_error] * 5)
    [outcome] = await vt.run(send(limiter, telegram, 1))
    assert isinstance(outcome, TelegramServerError)
    assert len(telegram.calls) == 3
    assert limiter.stats.gave_up == 1


async def test_one_attempt_means_no_retry(vt, telegram) -> None:
    limiter = make_limiter(vt, retry=RetryPolicy(attempts=1))
    telegram.fail(timeout)
    [outcome] = await vt.run(send(limiter, telegram, 1))
    assert isinstance(outcome, TelegramNetworkError)
    assert len(telegram.calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        lambda m: TelegramForbiddenError(
            method=m, message="Forbidden: bot was blocked by the user"
        ),
        lambda m: TelegramBadRequest(method=m, message="Bad Request: chat not found"),
        lambda m: TelegramEntityTooLarge(method=m, message="Request Entity Too Large"),
    ],
    ids=["403", "400", "413"],
)
async def test_refusals_propagate_at_once(vt, telegram, error) -> None:
    limiter = make_limiter(vt)
    telegram.fail(error)
    [outcome] = await vt.run(send(limiter, telegram, 1))
    assert isinstance(outcome, Exception)
    assert len(telegram.calls) == 1
    assert vt.sleeps == []


async def test_the_long_poll_goes_straight_through(vt, telegram) -> None:
    limiter = make_limiter(vt)
    telegram.fail(server_error)
    [outcome] = await vt.run(limiter(telegram, BOT, GetUpdates(timeout=10)))
    assert isinstance(outcome, TelegramServerError)  # aiogram's polling loop backs off itself
    assert len(telegram.calls) == 1


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 7, 12])
def test_backoff_is_exponential_with_full_jitter_and_a_ceiling(failures: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=10.0)
    ceiling = min(10.0, 0.5 * 2 ** (failures - 1))
    assert policy.ceiling(failures) == ceiling
    assert policy.backoff(failures, 0.0) == 0.0
    assert policy.backoff(failures, 0.5) == pytest.approx(ceiling / 2)
    assert policy.backoff(failures, 0.999999) < ceiling


def test_wrong_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="per_second"):
        SendLimits(per_second=0)
    with pytest.raises(ValueError, match="private_burst"):
        SendLimits(private_burst=0)


# ------------------------------------------------------------------------ paid broadcast


async def test_a_broadcast_with_paid_broadcast_on_goes_paid_and_fast(vt, telegram) -> None:
    limiter = make_limiter(vt, paid_broadcast=True)

    async def survey(chat_id: int) -> Any:
        with broadcast():
            return await send(limiter, telegram, chat_id, "How was it?")

    await vt.run(*(survey(2000 + i) for i in range(200)))
    assert all(m.allow_paid_broadcast is True for _, m in telegram.calls)
    times = telegram.times()
    assert conforms(times, LIMITS.paid_burst, LIMITS.paid_per_second)
    assert times[-1] == pytest.approx((200 - LIMITS.paid_burst) / LIMITS.paid_per_second)


async def test_ordinary_sends_stay_free_and_slow_with_paid_broadcast_on(vt, telegram) -> None:
    limiter = make_limiter(vt, paid_broadcast=True)
    await vt.run(*(send(limiter, telegram, 3000 + i) for i in range(60)))
    assert all(m.allow_paid_broadcast is None for _, m in telegram.calls)
    assert conforms(telegram.times(), LIMITS.burst, LIMITS.per_second)


async def test_broadcast_changes_nothing_with_paid_broadcast_off(vt, telegram) -> None:
    limiter = make_limiter(vt)

    async def survey(chat_id: int) -> Any:
        with broadcast():
            return await send(limiter, telegram, chat_id)

    await vt.run(*(survey(4000 + i) for i in range(60)))
    assert all(m.allow_paid_broadcast is None for _, m in telegram.calls)
    assert conforms(telegram.times(), LIMITS.burst, LIMITS.per_second)


async def test_stars_are_spent_only_when_the_owner_allows_it(vt, telegram) -> None:
    limiter = make_limiter(vt)
    method = SendMessage(chat_id=1, text="hi", allow_paid_broadcast=True)
    await vt.run(limiter(telegram, BOT, method))
    assert telegram.calls[0][1].allow_paid_broadcast is None


async def test_the_broadcast_mark_ends_with_the_block(vt, telegram) -> None:
    limiter = make_limiter(vt, paid_broadcast=True)
    with broadcast():
        await vt.run(send(limiter, telegram, 1))
    await vt.run(send(limiter, telegram, 2))
    assert [m.allow_paid_broadcast for _, m in telegram.calls] == [True, None]


# ------------------------------------------------------------------------ wiring


def test_build_bot_installs_one_limiter() -> None:
    bot = build_bot("42:TEST")
    assert [type(m) for m in bot.session.middleware] == [RateLimiter]
    limiter = RateLimiter()
    bot = build_bot("42:TEST", "http://127.0.0.1:1", limiter=limiter)
    assert list(bot.session.middleware) == [limiter]


def test_limiter_from_settings() -> None:
    settings = Settings(_env_file=None, paid_broadcast="true", send_attempts=2)
    limiter = RateLimiter.from_settings(settings)
    assert limiter.paid_broadcast is True
    assert limiter.retry.attempts == 2
    default = RateLimiter.from_settings(Settings(_env_file=None))
    assert default.paid_broadcast is False
    assert default.retry == RetryPolicy()


async def test_any_budget_behind_the_interface(vt, telegram) -> None:
    """The limiter asks its budget only through the three `Budget` calls."""

    class Counting(MemoryBudget):
        def __init__(self) -> None:
            super().__init__(vt.clock)
            self.takes: list[list[str]] = []

        async def take(self, buckets):  # type: ignore[override]
            self.takes.append([b.key for b in buckets])
            return await super().take(buckets)

    budget = Counting()
    limiter = make_limiter(vt, budget=budget)
    await vt.run(send(limiter, telegram, 9), send(limiter, telegram, -9))
    assert budget.takes == [["chat:9", "overall"], ["chat:-9", "overall"]]
