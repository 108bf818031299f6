"""Living through the database going away for a moment (a PostgreSQL restart, a failover).

The engine's `pool_pre_ping` replaces connections that died while idle in the pool, and the
scheduler's claim loop simply tries again later. Two places cannot just fail and move on:

- **An update being handled.** aiogram confirms every update it fetched, whatever its handler
  did, so an update whose handler failed because the database was away is never delivered
  again: the customer's tap or words would be lost. `DatabaseReconnect` runs the handler again
  once the database answers (update handling is idempotent: Telegram may deliver an update twice
  anyway).
- **Recording what Telegram already did** ("this survey was sent"). If that write fails, the job
  runs again and sends the survey a second time; `retry_while_disconnected` waits for the
  database instead.

Only lost connections are retried; any other error (a constraint, a bug) surfaces at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg.exceptions
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.exc import DBAPIError

__all__ = ["DatabaseReconnect", "is_disconnect", "retry_while_disconnected"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long work waits for the database to come back before it gives up (seconds): a restart or
#: a failover takes seconds; longer than this is an outage, and the error is worth surfacing.
PATIENCE = 60.0
_FIRST_PAUSE = 0.2
_LONGEST_PAUSE = 5.0

# What asyncpg raises when the server ends the session, is shutting down or starting up, or
# the connection broke half-way through a statement.
_ASYNCPG_GONE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database connection was lost or could not
    be made, as opposed to the database refusing the work."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        # Refused, reset or aborted connections (asyncpg lets these through unwrapped when the
        # server cannot be reached at all).
        if isinstance(current, (ConnectionError, *_ASYNCPG_GONE)):
            return True
        # SQLAlchemy keeps the driver's exception in `orig`, not always as the cause.
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = current.__cause__ or current.__context__ or orig
    return False


async def retry_while_disconnected(
    work: Callable[[], Awaitable[T]], *, what: str, patience: float = PATIENCE
) -> T:
    """``await work()``, again and again (with growing pauses) while the database is away, for
    up to ``patience`` seconds; then the last error is raised."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause = _FIRST_PAUSE
    while True:
        try:
            return await work()
        except Exception as error:
            if not is_disconnect(error) or loop.time() + pause > deadline:
                raise
            log.warning(
                "The database is away (%s) while %s; trying again in %.1fs",
                type(error).__name__,
                what,
                pause,
            )
        await asyncio.sleep(pause)
        pause = min(_LONGEST_PAUSE, pause * 2)


class DatabaseReconnect(BaseMiddleware):
    """Handles an update again when its handler failed because the database was away.

    Sits inside `OnePerChat`, so the chat's later updates wait their turn rather than overtake
    the one being retried, and outside the middlewares that read the database themselves (the
    customer's language). Each try gets a fresh copy of the handler data, as a new delivery of
    the update would.
    """

    def __init__(self, patience: float = PATIENCE) -> None:
        self.patience = patience

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        return await retry_while_disconnected(
            lambda: handler(event, dict(data)), what="handling an update", patience=self.patience
        )
