"""The offline sandbox: with no BOT_TOKEN, the real bot runs against the embedded Bot API emulator.

Nothing here is a shortcut around production: the bot is the same `Application`, polling the
emulator over real HTTP exactly as it would poll Telegram. Only the server on the other end differs.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.app import Application, run_until_signalled
from bot.emulator import Emulator
from bot.settings import Settings

SANDBOX_BOT_USERNAME = "hearback_sandbox_bot"


def describe(emulator_url: str, bot_username: str, http_url: str) -> str:
    return "\n".join(
        [
            "Hearback sandbox: no BOT_TOKEN, so the real bot runs on a local Telegram emulator.",
            f"  Bot API emulator   {emulator_url}   (the bot is @{bot_username})",
            f"  Emulator controls  {emulator_url}/_emulator/",
            f"  Bot HTTP server    {http_url}/healthz",
            "  Play a customer:",
            f'    curl -s -XPOST {emulator_url}/_emulator/users -d \'{{"first_name": "Anna"}}\'',
            "Press Ctrl-C to stop.",
        ]
    )


async def run_sandbox(settings: Settings, out: TextIO = sys.stdout) -> None:
    emulator = Emulator()
    await emulator.start(host=settings.http_host, port=settings.emulator_port)
    try:
        account = emulator.add_bot(username=SANDBOX_BOT_USERNAME, first_name=settings.business_name)
        app = Application(settings, token=account.token, api_url=emulator.url)
        running = asyncio.create_task(run_until_signalled(app))
        started = asyncio.create_task(app.started.wait())
        await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
        if app.started.is_set():
            print(describe(emulator.url, account.username, app.http_url), file=out, flush=True)
        started.cancel()
        await running
    finally:
        await emulator.stop()
