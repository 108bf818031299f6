"""Fixtures for the emulator's own tests: a started emulator on a hand-moved clock, and raw HTTP.

Flood limits and callback-query ages read the emulator clock, which here only moves when a test
calls ``emu_clock.advance(...)``, so no test sleeps to wait for a limit and none depends on how
fast the machine is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.emulator import BotAccount, Emulator, SimUser


class ManualClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Reply:
    """One raw HTTP answer of the emulator."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.body.get("ok"))

    @property
    def result(self) -> Any:
        return self.body.get("result")

    @property
    def description(self) -> str | None:
        return self.body.get("description")


class Raw:
    """Bot API calls over plain HTTP with aiohttp, in whichever encoding a test wants."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base
        self.token = token

    def url(self, method: str, token: str | None = None) -> str:
        return f"{self.base}/bot{token or self.token}/{method}"

    async def _read(self, response: aiohttp.ClientResponse) -> Reply:
        return Reply(response.status, await response.json(content_type=None))

    async def __call__(self, method: str, token: str | None = None, **params: Any) -> Reply:
        """POST ``params`` as a JSON body."""
        async with self.session.post(self.url(method, token), json=params) as response:
            return await self._read(response)

    async def form(self, method: str, params: dict[str, str]) -> Reply:
        async with self.session.post(self.url(method), data=params) as response:
            return await self._read(response)

    async def query(self, method: str, params: dict[str, str]) -> Reply:
        async with self.session.get(self.url(method), params=params) as response:
            return await self._read(response)

    async def multipart(self, method: str, form: aiohttp.FormData) -> Reply:
        async with self.session.post(self.url(method), data=form) as response:
            return await self._read(response)

    async def body(self, method: str, data: bytes, content_type: str) -> Reply:
        headers = {"Content-Type": content_type}
        async with self.session.post(self.url(method), data=data, headers=headers) as response:
            return await self._read(response)


def expect(reply: Reply, status: int, description: str | None = None) -> Reply:
    """Assert the exact status and (if given) the exact description of an answer."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body.get("error_code", 200) == status, reply.body
    if description is not None:
        assert reply.description == description, reply.body
    return reply


@pytest.fixture
def emu_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emu(emu_clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=emu_clock) as emulator:
        yield emulator


@pytest.fixture
def bot_account(emu: Emulator) -> BotAccount:
    return emu.add_bot(username="hearback_bot", first_name="Hearback")


@pytest.fixture
def anna(emu: Emulator) -> SimUser:
    return emu.add_user(first_name="Anna", username="anna", language_code="en")


@pytest.fixture
async def started(anna: SimUser, bot_account: BotAccount) -> SimUser:
    """Anna, after she has started the bot."""
    await anna.send(bot_account, "/start")
    return anna


@pytest.fixture
async def api(emu: Emulator, bot_account: BotAccount) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession() as session:
        yield Raw(session, emu.url, bot_account.token)


@pytest.fixture
async def aiobot(emu: Emulator, bot_account: BotAccount) -> AsyncIterator[Bot]:
    """An aiogram Bot talking to the emulator exactly as it would to Telegram."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
    bot = Bot(bot_account.token, session=session)
    try:
        yield bot
    finally:
        await session.close()
