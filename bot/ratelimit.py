"""One rate limiter for every message the bot sends, and one retry discipline for every call.

Telegram allows a bot about 30 messages a second overall, about one a second in a private chat
and 20 a minute in a group, and answers 429 ``retry_after`` beyond that; aiogram neither paces
nor retries. `RateLimiter` is an aiogram *request* middleware installed on the bot's session, so
every call — a survey from the scheduler, a reply from a handler, a staff card — passes through
it and none can go around it.

Pacing. A sending call (see `SENDING_METHODS`: what Telegram and the emulator count) takes one
token from its chat's bucket and one from the bot's overall bucket before it goes out. The
buckets are kept *below* Telegram's (`SendLimits`), and that margin is what makes the pacing
safe although requests take a varying time to arrive: if Telegram's bucket holds C tokens
refilled at r/s and ours holds c ≤ C refilled at r' ≤ r, then any sends we release reach
Telegram within any window of length L as at most c + r'·(L + J) messages, where J is the spread
of transit times; that stays within C + r·L, i.e. earns no 429, while J ≤ (C − c)/r'. Against the
emulator's buckets (C = 3 private, 20 group, 30 overall) the defaults tolerate about 2 s, 60 s and
0.9 s of transit jitter. Each chat's messages go out in order, and a message waits for its own chat
first and only then queues for the overall budget, so one busy chat never holds up the others.

Failures. 429: every send pauses for ``retry_after`` (Telegram's flood control is about the
bot, not one message) and the call is retried. 5xx and network errors or timeouts: retried with
exponential backoff and full jitter up to `RetryPolicy.attempts` tries, then the error
propagates. A timed-out send may have been delivered already — Telegram gives no idempotency
key — so a retry after a timeout can send a message twice; that is the price of not losing it.
403 and 400 propagate at once: callers turn them into "unreachable" and "failed".

Paid broadcast. Inside ``with broadcast():`` a send is a survey broadcast; when PAID_BROADCAST is
on it goes with ``allow_paid_broadcast`` under a 1,000/s budget instead of the free 30/s.

Several workers. The token state lives behind the small `Budget` protocol. In one process it is
a `MemoryBudget`; with REDIS_URL every worker of the bot, on one host or several, draws on one
`RedisBudget`, so c and r' above are the whole bot's, however many workers send. The argument
carries over with one clock for all: a token is taken at the Redis server's time (the hosts'
clocks play no part), and J becomes the spread of the whole way from there to Telegram — Redis's
answer back to the worker, the worker's event loop getting round to it, the HTTP request. The
Redis leg adds a round trip of about 0.1–1 ms (0.6 ms measured on loopback with the machine
busy; a few ms across a data centre), a thousandth of the 0.9 s the overall bucket tolerates,
so the margin needs no change; a worker whose loop stalls for most of a second is the real
threat, as it is with one process. The per-chat order and the queue for the overall budget stay
local: `_queue` only lines up this process's sends, and between processes the budget's script
decides — a refused worker sleeps for the wait it was given (a little more, at random, so no
worker always wins; see `RedisBudget`) and asks again, never spinning. If Redis cannot be
reached, each worker sends at its 1/N share of the limits in memory until it can be again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.redis_client import bot_id, connect

if TYPE_CHECKING:
    from aiogram import Bot
    from redis.asyncio import Redis

    from bot.settings import Settings

__all__ = [
    "SENDING_METHODS",
    "Bucket",
    "Budget",
    "LimiterStats",
    "MemoryBudget",
    "RateLimiter",
    "RedisBudget",
    "RetryPolicy",
    "SendLimits",
    "broadcast",
    "budget_from_settings",
    "counts_as_message",
]

log = logging.getLogger(__name__)

#: Bot API methods that put a message in a chat and so count against Telegram's flood limits:
#: ``send*`` except chat actions and drafts, plus copies and forwards. Edits are not counted
#: (Telegram limits them separately, without published numbers). Kept equal to the emulator's
#: list by a test.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendSticker",
        "sendVoice",
        "sendAudio",
        "sendVideo",
        "sendAnimation",
        "sendVideoNote",
        "sendMediaGroup",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendDice",
        "sendInvoice",
        "sendGame",
        "sendPaidMedia",
        "sendChecklist",
        "sendLivePhoto",
        "sendRichMessage",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }
)
_SENDING_LOWER = frozenset(name.lower() for name in SENDING_METHODS)

# The long poll is always in flight and aiogram's polling loop already backs off on errors;
# pacing or retrying it here would only delay updates.
_PASS_THROUGH = frozenset({"getupdates"})

# Float rounding must not turn "exactly one token after the wait" into another tiny wait.
_EPSILON = 1e-9


def counts_as_message(method_name: str) -> bool:
    """Whether a Bot API method counts against the flood limits (case-insensitive)."""
    return method_name.lower() in _SENDING_LOWER


# ------------------------------------------------------------------------------------ budget


@dataclass(frozen=True)
class Bucket:
    """A token bucket by name: ``capacity`` tokens, refilled at ``per_second``; starts full."""

    key: str
    capacity: float
    per_second: float


class Budget(Protocol):
    """Where the tokens live. Each call is atomic, so one budget can serve several senders.

    Times are seconds from now rather than instants, so an implementation shared between
    processes can keep its own clock (a Redis script would use the server's).
    """

    async def available_in(self, buckets: Sequence[Bucket]) -> float:
        """Seconds until every bucket has a token and no pause is in force; 0 if now."""
        ...

    async def take(self, buckets: Sequence[Bucket]) -> float:
        """If `available_in` is 0, take one token from each bucket and return 0; else take
        nothing and return the seconds to wait."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold every send for ``seconds``; extends, never shortens, a pause in force."""
        ...

    async def close(self) -> None:
        """Let go of connections; called once, on shutdown."""
        ...


@dataclass
class _Level:
    bucket: Bucket
    tokens: float
    updated: float


class MemoryBudget:
    """A `Budget` in this process's memory. ``now``: monotonic seconds (injectable for tests)."""

    # A bucket that has refilled is the same as one never used; forgetting those now and then
    # keeps memory flat however many customers the bot writes to.
    _SWEEP_EVERY = 1024

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._levels: dict[str, _Level] = {}
        self._paused_until = float("-inf")
        self._takes = 0

    def tokens(self, bucket: Bucket) -> float:
        """Tokens in ``bucket`` now (for tests and diagnostics)."""
        return self._tokens(bucket, self._now())

    def _tokens(self, bucket: Bucket, now: float) -> float:
        level = self._levels.get(bucket.key)
        if level is None:
            return bucket.capacity
        refill = max(0.0, now - level.updated) * bucket.per_second
        return min(bucket.capacity, level.tokens + refill)

    def _wait(self, buckets: Sequence[Bucket], now: float) -> float:
        wait = max(0.0, self._paused_until - now)
        for bucket in buckets:
            missing = 1.0 - self._tokens(bucket, now)
            if missing > _EPSILON:
                wait = max(wait, missing / bucket.per_second)
        return wait

    async def available_in(self, buckets: Sequence[Bucket]) -> float:
        return self._wait(buckets, self._now())

    async def take(self, buckets: Sequence[Bucket]) -> float:
        now = self._now()
        wait = self._wait(buckets, now)
        if wait > 0:
            return wait
        for bucket in buckets:
            self._levels[bucket.key] = _Level(bucket, self._tokens(bucket, now) - 1.0, now)
        self._takes += 1
        if self._takes % self._SWEEP_EVERY == 0:
            self._forget_full(now)
        return 0.0

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._now() + seconds)

    async def close(self) -> None:
        pass

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, level in self._levels.items()
            if self._tokens(level.bucket, now) >= level.bucket.capacity
        ]
        for key in full:
            del self._levels[key]

    def __len__(self) -> int:
        """Buckets currently remembered."""
        return len(self._levels)


# Both scripts count in microseconds of the Redis server's clock (TIME): whole numbers, exact in
# a double for millennia, so no rounding creeps into "now − updated". Values are written with
# string.format because Redis would cut a Lua number to 14 digits.
_TAKE_SCRIPT = """
-- KEYS[1]: the pause deadline; KEYS[2]: the workers using the budget; KEYS[3..]: the buckets.
-- ARGV[1]: 1 to take, 0 to look; ARGV[2]: this worker; ARGV[3]: microseconds a worker counts;
-- then, for each bucket, its capacity and its refill per second.
-- Returns {seconds to wait (a string), workers seen lately (0 when only looking)}.
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[1]))
if paused and paused > now then wait = paused - now end
local levels = {}
for i = 3, #KEYS do
  local capacity = tonumber(ARGV[2 * i - 2])
  local rate = tonumber(ARGV[2 * i - 1]) / 1000000
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'updated')
  local tokens = capacity
  if state[1] then
    local refill = math.max(0, now - tonumber(state[2])) * rate
    tokens = math.min(capacity, tonumber(state[1]) + refill)
  end
  levels[i] = tokens
  if 1 - tokens > 1e-9 then wait = math.max(wait, (1 - tokens) / rate) end
end
if ARGV[1] ~= '1' then return {string.format('%.17g', wait / 1000000), 0} end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3]) / 1000))
local workers = redis.call('ZCARD', KEYS[2])
if wait > 0 then return {string.format('%.17g', wait / 1000000), workers} end
for i = 3, #KEYS do
  local capacity = tonumber(ARGV[2 * i - 2])
  local rate = tonumber(ARGV[2 * i - 1]) / 1000000
  local tokens = levels[i] - 1
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', tokens),
             'updated', string.format('%.0f', now))
  -- Gone once full again: a full bucket and a missing one are the same, so idle customers'
  -- buckets cost no memory.
  redis.call('PEXPIRE', KEYS[i], math.ceil((capacity - tokens) / rate / 1000) + 1)
end
return {'0', workers}
"""

_PAUSE_SCRIPT = """
-- KEYS[1]: the pause deadline; ARGV[1]: microseconds from now. Extends, never shortens.
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local deadline = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]))
if not current or current < deadline then
  redis.call('SET', KEYS[1], string.format('%.0f', deadline),
             'PX', math.ceil((deadline - now) / 1000) + 1)
end
return 0
"""


class RedisBudget:
    """A `Budget` in Redis, shared by every worker of one bot on one or several hosts.

    Each call is one Lua script (EVALSHA; loaded again by redis-py if the server forgot it), so
    it is atomic across processes, and it reads the time from the Redis server, so the hosts'
    clocks play no part. A bucket is a hash (``tokens``, ``updated``) that expires when it would
    be full again; the pause is a key holding its deadline. Keys begin with
    ``hearback:budget:{<bot id>}:`` (the braces keep one bot's keys in one cluster slot, as a
    script that takes from several needs).

    Waiting. A worker whose `take` was refused sleeps for the wait returned and asks again; it
    never spins. Several workers refused together would all come back at the moment the token
    appears, and the one with the shortest path to Redis would win every time, so a refused
    take's wait is stretched by a random part of itself, at most ``spread`` (20 ms, under one
    token of the overall bucket): who comes first is then a draw. The bucket keeps the token
    until then, so the rate does not drop.

    Redis unreachable. Sending must neither stop nor crash, and a message must not be lost, so
    the first call that fails (refused at once, or timed out twice: 4 s, see `bot.redis_client`)
    logs one WARNING and this worker carries on with a `MemoryBudget` of its own at 1/N of every
    bucket (rate ÷ N, burst ÷ N but at least 1). N is the number of workers that used the budget
    in the last ``remember`` seconds (10 minutes), as Redis last said; it is 1 when Redis was
    never reached — each worker then as if alone, as without REDIS_URL, and any 429 is waited
    out as always. The N rates add up to the whole, so the bot stays within Telegram's limits
    meanwhile, at the price of slower sending. Every ``probe`` seconds (5) a PING in the
    background tries Redis again; once it answers, the shared budget is used again (logged at
    INFO). A take Redis performed but whose answer was lost counts twice — towards the safe
    side.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        remember: float = 600.0,
        probe: float = 5.0,
        spread: float = 0.02,
        jitter: Callable[[], float] = random.random,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.remember = remember
        self.probe = probe
        self.spread = spread
        self._jitter = jitter
        self._now = now
        self._take_script = client.register_script(_TAKE_SCRIPT)
        self._pause_script = client.register_script(_PAUSE_SCRIPT)
        self._pause_key = f"{prefix}pause"
        self._workers_key = f"{prefix}workers"
        self._worker = uuid.uuid4().hex
        #: Workers that used the budget lately, as Redis last said: the fallback's share.
        self.workers = 1
        #: While Redis cannot be reached: this worker's share of the budget, in memory.
        self.fallback: MemoryBudget | None = None
        self._probe_at = 0.0
        self._probing: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, bot_id: int | str, **kwargs: Any) -> RedisBudget:
        # One retry: after a Redis restart the pooled connections are dead and the first command
        # on each fails; the retry reconnects. More would only hold a send up longer.
        client = connect(url, retries=1)
        return cls(client, prefix=f"hearback:budget:{{{bot_id}}}:", **kwargs)

    def key(self, bucket: Bucket) -> str:
        """The Redis key of ``bucket``'s hash."""
        return f"{self.prefix}bucket:{bucket.key}"

    async def available_in(self, buckets: Sequence[Bucket]) -> float:
        wait, _ = await self._ask(buckets, take=False)
        return wait

    async def take(self, buckets: Sequence[Bucket]) -> float:
        wait, took = await self._ask(buckets, take=True)
        if took:
            return 0.0
        return wait + self._jitter() * min(wait, self.spread)

    async def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.fallback is None:
            try:
                await self._pause_script(
                    keys=[self._pause_key], args=[math.ceil(seconds * 1_000_000)]
                )
                return
            except Exception as error:
                self._fall_back(error)
        await self._local().pause(seconds)

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with suppress(asyncio.CancelledError):
                await self._probing
        await self.client.aclose()

    async def _ask(self, buckets: Sequence[Bucket], *, take: bool) -> tuple[float, bool]:
        """(seconds to wait, whether a token was taken from each bucket)."""
        if self.fallback is None:
            args: list[Any] = [
                1 if take else 0,
                self._worker,
                math.ceil(self.remember * 1_000_000),
            ]
            for bucket in buckets:
                args += [repr(float(bucket.capacity)), repr(float(bucket.per_second))]
            try:
                wait, workers = await self._take_script(
                    keys=[self._pause_key, self._workers_key, *map(self.key, buckets)],
                    args=args,
                )
            except Exception as error:
                self._fall_back(error)
            else:
                if take:
                    self.workers = max(1, int(workers))
                seconds = float(wait)
                return seconds, take and seconds == 0
        local = self._local()
        share = [self._share(bucket) for bucket in buckets]
        if take:
            seconds = await local.take(share)
        else:
            seconds = await local.available_in(share)
        return seconds, take and seconds == 0

    def _share(self, bucket: Bucket) -> Bucket:
        n = self.workers
        return Bucket(bucket.key, max(1.0, bucket.capacity / n), bucket.per_second / n)

    def _fall_back(self, error: Exception) -> None:
        if self.fallback is not None:  # calls that were already on their way when it went
            return
        log.warning(
            "The shared send budget in Redis cannot be reached (%s: %s); sending at this "
            "worker's share, 1/%d of the limits, until it answers again",
            type(error).__name__,
            error,
            self.workers,
        )
        self.fallback = MemoryBudget(self._now)
        self._probe_at = self._now() + self.probe

    def _local(self) -> MemoryBudget:
        assert self.fallback is not None
        if self._probing is None and self._now() >= self._probe_at:
            self._probing = asyncio.create_task(self._try_redis(), name="budget-probe")
        return self.fallback

    async def _try_redis(self) -> None:
        try:
            await self.client.ping()
        except Exception as error:
            log.debug("Redis still unreachable for the send budget (%s)", error)
            self._probe_at = self._now() + self.probe
        else:
            log.info("The shared send budget in Redis answers again; using it")
            self.fallback = None
        finally:
            self._probing = None


def budget_from_settings(
    settings: Settings, token: str, *, now: Callable[[], float] | None = None
) -> Budget:
    """REDIS_URL's budget shared by every worker of the bot (``token``) when set, else this
    process's own. ``now``: the clock of the local budget (and of the fallback's)."""
    clock = now or time.monotonic
    if settings.redis_url:
        return RedisBudget.from_url(settings.redis_url, bot_id(token), now=clock)
    return MemoryBudget(clock)


# ------------------------------------------------------------------------------------ policy


@dataclass(frozen=True)
class SendLimits:
    """How fast the limiter lets messages go: a little under Telegram's limits (see the module
    docstring for why the margin makes it safe). Bursts are bucket capacities."""

    #: Overall, free sends (Telegram: about 30/s).
    per_second: float = 29.5
    burst: int = 3
    #: Per private chat (Telegram: about 1/s, short bursts tolerated — we do not rely on them).
    private_per_second: float = 1.0
    private_burst: int = 1
    #: Per group, supergroup or channel (Telegram: 20 a minute). 1 + 19 = at most 20 in any
    #: minute even if Telegram counted a sliding window.
    group_per_minute: float = 19.0
    group_burst: int = 1
    #: Overall when PAID_BROADCAST is on (Telegram: up to 1000/s, paid per message).
    paid_per_second: float = 990.0
    paid_burst: int = 10

    def __post_init__(self) -> None:
        for name in ("per_second", "private_per_second", "group_per_minute", "paid_per_second"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("burst", "private_burst", "group_burst", "paid_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after 5xx answers and network errors or timeouts (429s are waited out instead).

    ``attempts`` counts the first try: 5 means up to four retries. Pause before retry n (from
    1): a uniformly random time up to ``min(max_delay, base_delay · 2ⁿ⁻¹)`` — "full jitter", so
    senders that failed together do not all come back at the same moment.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def ceiling(self, failures: int) -> float:
        """The longest pause after ``failures`` failed tries (1 or more)."""
        return min(self.max_delay, self.base_delay * 2 ** (failures - 1))

    def backoff(self, failures: int, draw: float) -> float:
        """The pause after ``failures`` failed tries, given ``draw`` uniform in [0, 1)."""
        return draw * self.ceiling(failures)


@dataclass
class LimiterStats:
    """What the limiter did, for logs and benchmarks."""

    #: Sending calls that succeeded.
    sent: int = 0
    #: 429 answers received (each paused sending and was retried).
    too_many_requests: int = 0
    #: 5xx answers and network errors/timeouts that were retried.
    retried: int = 0
    #: Calls that failed after the last attempt.
    gave_up: int = 0
    #: Sending calls Telegram refused outright (4xx: blocked, chat not found, bad request).
    refused: int = 0


_BROADCAST: ContextVar[bool] = ContextVar("hearback_broadcast", default=False)


@contextmanager
def broadcast() -> Iterator[None]:
    """Marks the sends made inside as a survey broadcast.

    With PAID_BROADCAST on they carry ``allow_paid_broadcast`` and share the 1,000/s budget;
    with it off this changes nothing. The mark follows the code (a context variable), including
    into tasks started inside, so the scheduler says it once around a send::

        with broadcast():
            await bot.send_message(chat_id, text, reply_markup=buttons)
    """
    token = _BROADCAST.set(True)
    try:
        yield
    finally:
        _BROADCAST.reset(token)


@dataclass
class _ChatTurn:
    lock: asyncio.Lock
    users: int = 0


# aiogram parses every answer with ``Response[<the method's result type>]``, a pydantic generic
# that pydantic caches only weakly: after a garbage collection the class is built again, ~5 ms of
# CPU per call under load (the conversation benchmark found 944 rebuilds in one run). Holding one
# strong reference per result type makes it a dictionary lookup.
_RESPONSE_MODELS: dict[Any, Any] = {}


def _keep_response_model(method: TelegramMethod[Any]) -> None:
    returning = method.__returning__
    if returning not in _RESPONSE_MODELS:
        _RESPONSE_MODELS[returning] = Response[returning]  # type: ignore[valid-type]


class RateLimiter(BaseRequestMiddleware):
    """Paces sends and retries failures for one bot; install with `install` (or
    ``bot.session.middleware(limiter)``). ``now``, ``sleep`` and ``jitter`` (uniform [0, 1))
    are injectable so tests run on virtual time; ``budget`` defaults to a `MemoryBudget` on
    ``now``."""

    def __init__(
        self,
        limits: SendLimits | None = None,
        retry: RetryPolicy | None = None,
        *,
        paid_broadcast: bool = False,
        budget: Budget | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.limits = limits or SendLimits()
        self.retry = retry or RetryPolicy()
        self.paid_broadcast = paid_broadcast
        self.budget: Budget = budget if budget is not None else MemoryBudget(now)
        self.stats = LimiterStats()
        self._sleep = sleep
        self._jitter = jitter
        self._overall = Bucket("overall", self.limits.burst, self.limits.per_second)
        self._paid = Bucket("paid", self.limits.paid_burst, self.limits.paid_per_second)
        # Sends queue here for the overall budget, first come first served (asyncio locks are
        # fair), so that only the head of the queue sleeps instead of every sender polling.
        self._queue = asyncio.Lock()
        self._chats: dict[str, _ChatTurn] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, token: str | None = None, **kwargs: Any
    ) -> RateLimiter:
        """The limiter the settings ask for. With REDIS_URL and the bot's ``token`` its budget
        is shared in Redis (`budget_from_settings`) unless ``budget`` is given."""
        retry = RetryPolicy(attempts=settings.send_attempts)
        if token is not None and "budget" not in kwargs:
            kwargs["budget"] = budget_from_settings(settings, token, now=kwargs.get("now"))
        return cls(retry=retry, paid_broadcast=settings.paid_broadcast, **kwargs)

    async def close(self) -> None:
        """Let go of the budget's connections (Redis); on shutdown, after the last send."""
        await self.budget.close()

    def install(self, bot: Bot) -> Bot:
        """Put the limiter in front of every request ``bot`` makes; returns the bot."""
        bot.session.middleware(self)
        return bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        _keep_response_model(method)
        name = method.__api_method__
        if name.lower() in _PASS_THROUGH:
            return await make_request(bot, method)
        counted = counts_as_message(name)
        chat, overall = self._buckets(method) if counted else (None, [])
        failures = 0
        while True:
            if counted:
                await self._acquire(chat, overall)
            try:
                result = await make_request(bot, method)
            except TelegramRetryAfter as error:
                self.stats.too_many_requests += 1
                log.warning(
                    "%s: Telegram says too many requests, pausing %ss", name, error.retry_after
                )
                if counted:
                    await self.budget.pause(error.retry_after)
                else:
                    await self._sleep(error.retry_after)
                continue
            except TelegramEntityTooLarge:
                if counted:
                    self.stats.refused += 1
                raise  # a 413 is a TelegramNetworkError in aiogram, but retrying cannot help
            except (TelegramServerError, TelegramNetworkError) as error:
                failures += 1
                if failures >= self.retry.attempts:
                    self.stats.gave_up += 1
                    raise
                self.stats.retried += 1
                pause = self.retry.backoff(failures, self._jitter())
                log.info("%s failed (%s), try %d in %.2fs", name, error, failures + 1, pause)
                await self._sleep(pause)
                continue
            except TelegramAPIError:
                if counted:
                    self.stats.refused += 1
                raise
            if counted:
                self.stats.sent += 1
            return result

    # -- pacing ----------------------------------------------------------------------------

    def _buckets(self, method: TelegramMethod[Any]) -> tuple[Bucket | None, list[Bucket]]:
        """The chat's bucket and the overall ones for one sending call."""
        paid = self._paid_broadcast(method)
        if paid:
            overall = [self._paid]
        elif self.paid_broadcast:
            # Free sends count toward the paid ceiling too: together they stay under 1000/s.
            overall = [self._overall, self._paid]
        else:
            overall = [self._overall]
        return self._chat_bucket(getattr(method, "chat_id", None)), overall

    def _paid_broadcast(self, method: TelegramMethod[Any]) -> bool:
        """Whether this send goes as a paid broadcast; sets or clears the flag to match."""
        flagged = getattr(method, "allow_paid_broadcast", None) is True
        if not (_BROADCAST.get() or flagged):
            return False
        if self.paid_broadcast and "allow_paid_broadcast" in type(method).model_fields:
            method.allow_paid_broadcast = True  # type: ignore[attr-defined]
            return True
        if flagged:
            # Stars are spent only when the owner turned PAID_BROADCAST on, whoever set the flag.
            method.allow_paid_broadcast = None  # type: ignore[attr-defined]
        return False

    def _chat_bucket(self, chat_id: object) -> Bucket | None:
        limits = self.limits
        if isinstance(chat_id, str):
            text = chat_id.strip()
            chat_id = int(text) if text.lstrip("-").isdigit() else text.lower()
        if isinstance(chat_id, int) and chat_id > 0:
            # Positive ids are people: private chats.
            return Bucket(f"chat:{chat_id}", limits.private_burst, limits.private_per_second)
        if isinstance(chat_id, int | str):
            # Negative ids and @usernames are groups, supergroups and channels.
            per_second = limits.group_per_minute / 60.0
            return Bucket(f"chat:{chat_id}", limits.group_burst, per_second)
        return None

    async def _acquire(self, chat: Bucket | None, overall: list[Bucket]) -> None:
        if chat is None:
            async with self._queue:
                await self._until(self.budget.take, overall)
            return
        async with self._turn(chat.key):
            # First wait for the chat's own token without holding up anyone else; then queue
            # for the overall budget and take both together, at the moment the message leaves.
            await self._until(self.budget.available_in, [chat])
            async with self._queue:
                await self._until(self.budget.take, [chat, *overall])

    async def _until(
        self, probe: Callable[[Sequence[Bucket]], Awaitable[float]], buckets: list[Bucket]
    ) -> None:
        while (wait := await probe(buckets)) > 0:
            await self._sleep(wait)

    @asynccontextmanager
    async def _turn(self, key: str) -> AsyncIterator[None]:
        """One message of a chat at a time passes the pacing, in the order they came."""
        turn = self._chats.get(key)
        if turn is None:
            turn = self._chats[key] = _ChatTurn(asyncio.Lock())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:  # forget idle chats, or the table grows with every customer
                del self._chats[key]
