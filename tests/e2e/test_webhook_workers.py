"""Two workers behind a load balancer, sharing the database and (REDIS_URL) a real redis-server.

The emulator posts to a small round-robin proxy in front of two real bots in webhook mode. When
Telegram posts an update twice, the second copy lands on the other worker: with the shared store
it is handled once; with each worker remembering only its own updates, twice.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack

import aiohttp
import pytest
from aiohttp import web

from bot.app import Application
from bot.dedupe import MemorySeenUpdates
from bot.emulator import BotAccount, Emulator, Limits
from bot.ratelimit import RateLimiter
from tests.e2e.conftest import QUICK, UNPACED, e2e_settings, running
from tests.net import free_port

PATH = "/telegram"


async def round_robin(ports: list[int]) -> tuple[web.AppRunner, str]:
    """A load balancer: each post goes to the next worker, headers and body as they came."""
    turns = itertools.cycle(ports)
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        port = next(turns)
        async with session.post(
            f"http://127.0.0.1:{port}{PATH}",
            data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    async def close(_: web.Application) -> None:
        await session.close()

    app = web.Application()
    app.router.add_post(PATH, forward)
    app.on_cleanup.append(close)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}{PATH}"


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "each-its-own"])
async def test_an_update_posted_twice_to_two_workers(
    database_url: str,
    emulator: Emulator,
    telegram_bot: BotAccount,
    redis_url: str,
    shared: bool,
) -> None:
    emulator.limits = Limits.off()
    ports = [free_port(), free_port()]
    proxy, url = await round_robin(ports)
    try:
        async with AsyncExitStack() as stack:
            workers: list[Application] = []
            for port in ports:
                settings = e2e_settings(
                    database_url,
                    http_port=port,
                    webhook_url=url,
                    webhook_secret="two-workers",
                    redis_url=redis_url if shared else "",
                )
                app = Application(
                    settings,
                    token=telegram_bot.token,
                    api_url=emulator.url,
                    webhook=True,
                    limiter=RateLimiter(UNPACED, QUICK),
                    seen_updates=None if shared else MemorySeenUpdates(),
                )
                workers.append(await stack.enter_async_context(running(app)))

            anna = emulator.add_user(first_name="Anna")
            emulator.faults.duplicate_updates(1)
            await anna.send(telegram_bot, "/start")
            await emulator.wait_for(lambda: emulator.stats.webhook_deliveries == 2, timeout=10)
            await emulator.wait_for(lambda: anna.inbox(telegram_bot), timeout=10)
            await asyncio.sleep(0.5)  # a second greeting would be on its way by now

            # One copy reached each worker.
            assert [w.webhook.stats.accepted for w in workers if w.webhook] == [1, 1]
            greetings = [m.text for m in anna.inbox(telegram_bot)]
            handled = sum(w.once.stats.handled for w in workers)
            duplicates = sum(w.once.stats.duplicates for w in workers)
    finally:
        await proxy.cleanup()

    if shared:
        assert len(greetings) == 1 and greetings[0].startswith("Hello, Anna!")
        assert (handled, duplicates) == (1, 1)
    else:
        # Why REDIS_URL exists: neither worker knew the other had the update.
        assert len(greetings) == 2
        assert (handled, duplicates) == (2, 0)
