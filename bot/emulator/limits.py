"""Telegram's flood limits, as token buckets, and the emulator's clock.

Telegram publishes its sending limits only roughly: about one message per second in a private
chat (short bursts are tolerated), at most 20 messages per minute in a group, about 30 messages
per second overall for one bot. Beyond them it answers 429 ``Too Many Requests: retry after N``
with ``parameters.retry_after``. aiogram neither throttles nor retries, so the bot's own
delivery code must; these buckets are what it is tested against.

Model: three token buckets are checked for every sending call — the target chat's (private or
group), and the bot's global one. A call passes only if every bucket has a token, and then takes
one from each; if any is empty the call is answered 429 with ``retry_after`` = the whole
seconds (at least 1, rounded up) until all of them will have a token, and nothing is taken.

What counts as sending: ``send*`` methods except ``sendChatAction``, ``copyMessage(s)`` and
``forwardMessage(s)``. Edits do not count by default (Telegram limits them separately and more
loosely, without published numbers); ``Limits(count_edits=True)`` makes ``editMessage*`` count
against the same buckets.

Time comes from the emulator's clock: a monotonic number of seconds. Tests inject a clock they
move by hand, so limit tests never sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

#: A source of monotonic seconds: ``() -> float``.
Now = Callable[[], float]


def as_now(clock: Any) -> Now:
    """Adapt ``clock`` to ``() -> float`` seconds.

    Accepted: None (``time.monotonic``); a callable returning a float or a datetime; an object
    whose ``now()`` returns a float or a datetime (such as ``bot.clock.FakeClock``). Datetimes
    are turned into POSIX seconds.
    """
    if clock is None:
        return time.monotonic
    source = clock.now if hasattr(clock, "now") and callable(clock.now) else clock
    if not callable(source):
        raise TypeError(f"clock must be callable or have now(), got {clock!r}")

    def now() -> float:
        value = source()
        return value.timestamp() if isinstance(value, datetime) else float(value)

    return now


def tells_wall_time(clock: Any) -> bool:
    """Whether ``clock`` gives datetimes — then message dates follow it too."""
    if clock is None:
        return False
    source = clock.now if hasattr(clock, "now") and callable(clock.now) else clock
    return isinstance(source(), datetime)


@dataclass(frozen=True)
class Limits:
    """Flood-limit settings. ``Limits.off()`` turns them off (for throughput benchmarks)."""

    enabled: bool = True
    #: Private chat: this many messages at once, then ``private_per_second``.
    private_burst: int = 3
    private_per_second: float = 1.0
    #: Group or supergroup: this many messages at once, refilled evenly over a minute.
    group_per_minute: int = 20
    #: Per bot, over all chats.
    global_burst: int = 30
    global_per_second: float = 30.0
    #: Whether editMessage* calls count against the same buckets.
    count_edits: bool = False

    @classmethod
    def off(cls) -> Limits:
        return cls(enabled=False)

    def but(self, **changes: Any) -> Limits:
        """A copy with some settings changed: ``Limits().but(private_burst=1)``."""
        return replace(self, **changes)


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` per second."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 if one is there now)."""
        self._refill(now)
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


class FloodControl:
    """The buckets of every bot and chat, created lazily from the current :class:`Limits`."""

    def __init__(self, limits: Limits, now: Now) -> None:
        self.limits = limits
        self._now = now
        self._buckets: dict[tuple[Any, ...], TokenBucket] = {}

    def reset(self, limits: Limits | None = None) -> None:
        """Forget all buckets (and optionally switch settings)."""
        if limits is not None:
            self.limits = limits
        self._buckets.clear()

    def _bucket(
        self, key: tuple[Any, ...], capacity: float, rate: float, now: float
    ) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(capacity, rate, now)
        return bucket

    def acquire(self, bot_id: int, chat_id: int, private: bool) -> int:
        """Take a token for one message; return 0, or the retry_after seconds if over a limit."""
        if not self.limits.enabled:
            return 0
        now = self._now()
        lim = self.limits
        if private:
            chat = self._bucket(
                ("chat", bot_id, chat_id), lim.private_burst, lim.private_per_second, now
            )
        else:
            chat = self._bucket(
                ("chat", bot_id, chat_id), lim.group_per_minute, lim.group_per_minute / 60.0, now
            )
        overall = self._bucket(("bot", bot_id), lim.global_burst, lim.global_per_second, now)
        wait = max(chat.wait(now), overall.wait(now))
        if wait > 0:
            return max(1, math.ceil(wait - 1e-9))
        chat.take(now)
        overall.take(now)
        return 0
