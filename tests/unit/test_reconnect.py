"""Telling a lost database connection from a refused statement, and waiting the first out."""

from __future__ import annotations

import asyncpg.exceptions
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from bot import reconnect
from bot.reconnect import DatabaseReconnect, is_disconnect, retry_while_disconnected


def wrapped(cause: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, cause, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        wrapped(Exception("server closed the connection"), invalidated=True),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),
    ],
)
def test_lost_connections_are_recognised(error: BaseException) -> None:
    assert is_disconnect(error)


def test_a_lost_connection_deep_in_the_causes_is_recognised() -> None:
    try:
        try:
            raise ConnectionResetError
        except ConnectionResetError as cause:
            raise RuntimeError("while recording") from cause
    except RuntimeError as error:
        assert is_disconnect(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        OperationalError("UPDATE", {}, Exception("database is locked")),
        ValueError("a bug"),
        TimeoutError(),  # a Telegram call that timed out must not replay a handler
    ],
)
def test_other_errors_are_not_disconnects(error: BaseException) -> None:
    assert not is_disconnect(error)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "_FIRST_PAUSE", 0.01)
    monkeypatch.setattr(reconnect, "_LONGEST_PAUSE", 0.02)


async def test_work_is_tried_again_until_the_database_answers() -> None:
    tries = []

    async def work() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionRefusedError(111, "refused")
        return "done"

    assert await retry_while_disconnected(work, what="testing") == "done"
    assert len(tries) == 3


async def test_other_errors_surface_at_once_and_patience_runs_out() -> None:
    tries = []

    async def refused() -> None:
        tries.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        await retry_while_disconnected(refused, what="testing")
    assert len(tries) == 1

    async def away() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ConnectionRefusedError):
        await retry_while_disconnected(away, what="testing", patience=0.1)


async def test_the_middleware_handles_the_update_again_with_fresh_data() -> None:
    seen: list[dict[str, object]] = []

    async def handler(event: object, data: dict[str, object]) -> str:
        seen.append(dict(data))
        data["set by a filter"] = True
        if len(seen) == 1:
            raise wrapped(Exception("server closed the connection"), invalidated=True)
        return "handled"

    result = await DatabaseReconnect()(handler, object(), {"bot": "b"})
    assert result == "handled"
    assert seen == [{"bot": "b"}, {"bot": "b"}]
