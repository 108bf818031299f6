"""The one way Hearback connects to Redis (REDIS_URL), for every store that workers share.

Both shared stores sit in front of something that must not wait long — the repeat check in front
of every update (`bot.dedupe`), the send budget in front of every message (`bot.ratelimit`) — and
both carry on without Redis when it is down, so the client is built to give up soon rather than
hang: short socket and connect timeouts. Each store has a client of its own and closes it on
shutdown; keys begin with ``hearback:`` and the bot's id, so bots sharing one Redis never share
state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["bot_id", "connect"]

#: Seconds before a Redis that does not answer counts as down.
TIMEOUT = 2.0


def connect(url: str, *, retries: int | None = None) -> Redis:
    """A client for ``url`` (nothing is connected until the first command). ``retries``: how
    often a command is retried after a connection error (redis-py's default if None)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, object] = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    if retries is not None:
        options["retry"] = Retry(NoBackoff(), retries)
    return Redis.from_url(url, **options)


def bot_id(token: str) -> str:
    """The bot's numeric id: the part of its token before the colon (not a secret)."""
    return token.partition(":")[0]
