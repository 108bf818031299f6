"""aiosqlite with one thread hop per statement instead of four.

aiosqlite runs every call on its connection's own thread: SQLAlchemy's adapter makes a cursor,
executes, fetches and closes it, four round trips to that thread per statement, each a wake-up
of the thread, a hand-over of the GIL and a wake-up of the event loop. On the bot's hot paths
(a tap, a comment: a handful of small statements each) those round trips cost more CPU than
SQLite itself; the conversation benchmark measured ~0.4 ms of CPU per statement, nearly all of
it hand-overs.

Here a statement is one round trip: the thread makes the cursor, executes and fetches the first
`PREFETCH` rows in one go; the rest of a large result (a streamed export) is fetched in further
round trips as it is read. Every SQLite call still runs on the connection's thread, never on
the event loop, so a slow query or a writer waiting out the busy timeout never blocks it.

`connect` has aiosqlite's signature; `storage.db` hands it to SQLAlchemy's aiosqlite dialect,
which then works as before (same SQL, same transactions, same errors).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiosqlite

__all__ = ["PREFETCH", "connect"]

#: Rows fetched together with the execution; a larger result comes in further round trips.
PREFETCH = 256


class Cursor(aiosqlite.Cursor):
    """An aiosqlite cursor whose sqlite3 cursor is made, executed and first read in one
    round trip to the connection's thread."""

    def __init__(self, conn: Connection) -> None:
        self.iter_chunk_size = conn._iter_chunk_size
        self._conn = conn
        self._cursor: sqlite3.Cursor | None = None  # made on the thread, at the first execute
        self._rows: deque[Any] = deque()
        self._more = False  # rows may remain in the sqlite3 cursor beyond self._rows

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _run(self, call: str, sql: str, parameters: Any) -> tuple[sqlite3.Cursor, list[Any]]:
        """On the connection's thread: execute, and read the first rows of a result."""
        cursor = self._cursor or self._conn._conn.cursor()
        getattr(cursor, call)(sql, parameters)
        rows = cursor.fetchmany(PREFETCH) if cursor.description else []
        return cursor, rows

    async def _start(self, call: str, sql: str, parameters: Any) -> Cursor:
        cursor, rows = await self._conn._execute(self._run, call, sql, parameters)
        self._cursor = cursor
        self._rows = deque(rows)
        self._more = len(rows) == PREFETCH
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Cursor:
        return await self._start("execute", sql, [] if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> Cursor:
        return await self._start("executemany", sql, parameters)

    async def executescript(self, sql_script: str) -> Cursor:
        def script() -> sqlite3.Cursor:
            cursor = self._cursor or self._conn._conn.cursor()
            cursor.executescript(sql_script)
            return cursor

        self._cursor = await self._conn._execute(script)
        self._rows.clear()
        self._more = False
        return self

    async def _fetch(self, size: int | None) -> None:
        """Bring rows from the thread: ``size`` of them, or all (None)."""
        if not self._more or self._cursor is None:
            return
        cursor = self._cursor
        if size is None:
            rows = await self._conn._execute(cursor.fetchall)
            self._more = False
        else:
            rows = await self._conn._execute(cursor.fetchmany, size)
            self._more = len(rows) == size
        self._rows.extend(rows)

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._fetch(max(self.iter_chunk_size, 1))
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = size if size is not None else self.arraysize
        if len(self._rows) < wanted:
            await self._fetch(max(wanted - len(self._rows), self.iter_chunk_size))
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        await self._fetch(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        # The sqlite3 cursor stays referenced: rowcount and lastrowid are read after closing.
        self._rows.clear()
        if self._cursor is not None and self._more:
            # Rows left unread hold the statement open (and a read snapshot): end it now.
            self._more = False
            await self._conn._execute(self._cursor.close)

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize if self._cursor is not None else 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        if self._cursor is not None:
            self._cursor.arraysize = value

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    @property
    def row_factory(self) -> Any:
        return self._cursor.row_factory if self._cursor is not None else None

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn._conn


class Connection(aiosqlite.Connection):
    """aiosqlite's connection (its thread, its queue of calls), with `Cursor` as cursors."""

    def cursor(self) -> Cursor:  # type: ignore[override]  # awaitable, like aiosqlite's
        return Cursor(self)

    # The pool rolls back every connection it takes back, and a unit of work that only read
    # commits: with no transaction open (sqlite3 opens one at the first write) both are no-ops,
    # and are skipped rather than sent to the thread.

    async def commit(self) -> None:
        if self._connection is not None and not self._connection.in_transaction:
            return
        await super().commit()

    async def rollback(self) -> None:
        if self._connection is not None and not self._connection.in_transaction:
            return
        await super().rollback()


def connect(
    database: str | bytes | Path, *, iter_chunk_size: int = 64, **kwargs: Any
) -> Connection:
    """Like `aiosqlite.connect`: a connection to open with ``await``."""

    def connector() -> sqlite3.Connection:
        location = database.decode("utf-8") if isinstance(database, bytes) else str(database)
        return sqlite3.connect(location, **kwargs)

    connection = Connection(connector, iter_chunk_size)
    # As SQLAlchemy does for aiosqlite's: a connection never closed must not keep the process
    # alive at exit.
    connection._thread.daemon = True
    return connection
