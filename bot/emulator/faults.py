"""Faults injected on demand: server errors, timeouts, 429 storms and duplicated updates.

Real Telegram fails in a few recognisable ways, and the bot's delivery code must survive each:

- **5xx**: ``faults.fail_next(n, status=502)`` answers the next ``n`` matching calls with a
  5xx JSON error (aiogram raises TelegramServerError); ``faults.fail_fraction(0.2, seed=1)``
  answers a seeded-random fraction of calls that way until cleared.
- **timeouts**: ``faults.timeout_next(n)`` holds the next ``n`` matching calls without
  performing them until ``hold`` seconds pass (default: until the emulator stops), longer than
  any client waits; ``perform=True`` performs the call first and then withholds the answer —
  the nasty real case where a message was sent but the client never learnt so, and a naive
  retry sends it twice.
- **429 storms**: ``faults.flood(seconds, retry_after=None)`` answers every sending call with
  429 for ``seconds`` of emulator-clock time; ``retry_after`` defaults to the seconds left.
- **duplicate updates**: ``faults.duplicate_updates(n)`` delivers each of the next ``n``
  updates twice (webhook: posted twice; polling: served again after it was confirmed), as
  Telegram does after a timeout, so idempotent update handling can be tested.

``methods`` narrows a fault to some Bot API methods (case-insensitive names). By default 5xx and
timeouts hit every method except ``getUpdates`` — faults are aimed at the bot's actions, and a
long poll that is always in flight would otherwise swallow "the next call" nondeterministically;
name ``getUpdates`` explicitly to break polling. 429 storms hit sending methods only (see
limits.py). ``faults.clear()`` removes everything.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.emulator.limits import Now

_SERVER_ERRORS = (500, 502, 503, 504)


@dataclass
class Fault:
    """One injected fault and how much of it is left."""

    kind: str  # "error", "fraction", "timeout", "flood"
    methods: frozenset[str] | None  # lower-case names; None = the kind's default scope
    remaining: int | None = None  # calls left (None = unlimited)
    status: int = 500
    fraction: float = 0.0
    rng: random.Random | None = None
    hold: float | None = None
    perform: bool = False
    until: float = 0.0
    retry_after: int | None = None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind}
        if self.methods is not None:
            info["methods"] = sorted(self.methods)
        if self.remaining is not None:
            info["remaining"] = self.remaining
        if self.kind in ("error", "fraction"):
            info["status"] = self.status
        if self.kind == "fraction":
            info["fraction"] = self.fraction
        if self.kind == "timeout":
            info["hold"] = self.hold
            info["perform"] = self.perform
        if self.kind == "flood":
            info["until"] = self.until
            info["retry_after"] = self.retry_after
        return info


@dataclass(frozen=True)
class Decision:
    """What to do with one call instead of answering it normally."""

    kind: str  # "error", "timeout", "flood"
    status: int = 0
    hold: float | None = None
    perform: bool = False
    retry_after: int = 0


class Faults:
    """The faults in force; consulted by the server for every authorised call."""

    def __init__(self, now: Now) -> None:
        self._now = now
        self._faults: list[Fault] = []
        self._duplicates = 0

    # -- injecting ---------------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, *, status: int = 500, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next ``count`` matching calls with ``status`` (500, 502, 503 or 504)."""
        self._faults.append(
            Fault("error", _names(methods), remaining=_positive(count), status=_status(status))
        )

    def fail_fraction(
        self,
        fraction: float,
        *,
        status: int = 502,
        seed: int = 0,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer a seeded-random ``fraction`` (0–1) of matching calls with ``status``."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        self._faults.append(
            Fault(
                "fraction",
                _names(methods),
                status=_status(status),
                fraction=fraction,
                rng=random.Random(seed),
            )
        )

    def timeout_next(
        self,
        count: int = 1,
        *,
        hold: float | None = None,
        perform: bool = False,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Hold the next ``count`` matching calls ``hold`` real seconds (None: until stop)."""
        self._faults.append(
            Fault(
                "timeout", _names(methods), remaining=_positive(count), hold=hold, perform=perform
            )
        )

    def flood(
        self,
        seconds: float,
        *,
        retry_after: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """A 429 storm: every sending call is refused for ``seconds`` of emulator time."""
        self._faults.append(
            Fault("flood", _names(methods), until=self._now() + seconds, retry_after=retry_after)
        )

    def duplicate_updates(self, count: int = 1) -> None:
        """Deliver each of the next ``count`` updates twice."""
        self._duplicates += _positive(count)

    def clear(self) -> None:
        self._faults.clear()
        self._duplicates = 0

    @property
    def active(self) -> list[dict[str, Any]]:
        """The faults still in force, described as plain dicts (also served by the control API)."""
        now = self._now()
        self._faults = [f for f in self._faults if not _spent(f, now)]
        described = [f.describe() for f in self._faults]
        if self._duplicates:
            described.append({"kind": "duplicate_updates", "remaining": self._duplicates})
        return described

    # -- consulting --------------------------------------------------------------------------

    def decide(self, method: str, sending: bool) -> Decision | None:
        """The fault, if any, that applies to one call of ``method`` (consuming a count)."""
        now = self._now()
        lower = method.lower()
        self._faults = [f for f in self._faults if not _spent(f, now)]
        for fault in self._faults:
            if not _applies(fault, lower, sending):
                continue
            if fault.kind == "flood":
                left = max(1, int(fault.until - now + 0.999))
                return Decision("flood", status=429, retry_after=fault.retry_after or left)
            if fault.kind == "fraction":
                assert fault.rng is not None
                if fault.rng.random() >= fault.fraction:
                    continue
                return Decision("error", status=fault.status)
            if fault.remaining is not None:
                fault.remaining -= 1
            if fault.kind == "timeout":
                return Decision("timeout", status=504, hold=fault.hold, perform=fault.perform)
            return Decision("error", status=fault.status)
        return None

    def take_duplicate(self) -> bool:
        """Whether the update being queued now should be delivered twice."""
        if self._duplicates <= 0:
            return False
        self._duplicates -= 1
        return True


def _applies(fault: Fault, method: str, sending: bool) -> bool:
    if fault.methods is not None:
        return method in fault.methods
    if fault.kind == "flood":
        return sending
    return method != "getupdates"


def _spent(fault: Fault, now: float) -> bool:
    if fault.kind == "flood":
        return now >= fault.until
    return fault.remaining is not None and fault.remaining <= 0


def _names(methods: Iterable[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.lower() for m in methods)


def _positive(count: int) -> int:
    if count < 1:
        raise ValueError("count must be at least 1")
    return count


def _status(status: int) -> int:
    if status not in _SERVER_ERRORS:
        raise ValueError(f"status must be one of {_SERVER_ERRORS}")
    return status
