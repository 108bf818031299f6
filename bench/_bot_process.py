"""One bot under test for bench/conversation.py, in its own OS process, as it runs in production.

Not run by hand: bench/conversation.py starts it as

    python bench/_bot_process.py '{"kind": "hearback" | "echo", "token": …, "api_url": …,
                                   "in_flight": "<file>", "settings": {…}}'

- ``hearback``: the real `Application`, built as the benchmark always built it (``settings``, the
  emulator's token and URL, a FakeClock, a RateLimiter with Telegram's pacing lifted), run by
  `run_until_signalled` until SIGTERM or SIGINT, which stop it gracefully. Options for
  bench/scale.py: ``"paced": true`` keeps production's limiter (`RateLimiter.from_settings`:
  Telegram's pacing), ``"webhook": true`` runs it as `hearback run --webhook` does. Either way
  the budget lives where REDIS_URL puts it.
- ``echo``: a bare aiogram bot with no Hearback code and no database: every message back as it
  came, every tap answered and echoed. SIGTERM or SIGINT stop its polling.

Talking to the driver:

- stdout carries only lines starting ``bench: ``, each one JSON object: ``{"ready": true}`` once
  the bot serves, and ``{"cpu_s", "handler_failures", "first_failure"}`` as the process ends
  (however it ends). Logs go to stderr, prefixed with the kind of bot; so does the traceback of
  a failure, which ends the process with code 1.
- ``in_flight`` names an 8-byte file that both processes map: the real bot keeps the count of
  updates it is handling there (its `InFlightUpdates`, exactly), so the driver can tell when it
  is idle. The echo bot leaves it at 0: its replies are all its work.
- The driver holds this process's stdin open and never writes to it. Its end (the driver died
  without stopping us) stops the bot like SIGTERM, so no bot outlives a benchmark.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import mmap
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message, TelegramObject

import bot.app as app_module
from bot.app import Application, InFlightUpdates, run_until_signalled
from bot.clock import FakeClock
from bot.ratelimit import RateLimiter, RetryPolicy, SendLimits, budget_from_settings
from bot.settings import Settings

#: Lines of stdout meant for the driver start with this.
PREFIX = "bench: "
# Pacing lifted (as in bench/updates.py): the bot is measured, not Telegram's 30 messages/s.
UNPACED = SendLimits(per_second=1e6, burst=10**6, private_per_second=1e6, private_burst=10**6)
QUICK = RetryPolicy(attempts=6, base_delay=0.02, max_delay=0.2)


def tell(message: dict[str, Any]) -> None:
    """One message to the driver."""
    try:
        sys.stdout.write(PREFIX + json.dumps(message) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the driver is gone; nothing more goes to stdout (not even at exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class HandlerFailures(logging.Filter):
    """Counts the exceptions aiogram logs from handlers and keeps their tracebacks out of the
    output (the driver's summary says how many there were and what the first one was)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.count += 1
            self.first = self.first or f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            return False
        return True


class SharedInFlight(InFlightUpdates):
    """The application's own in-flight count, also written to the map the driver reads."""

    shared: mmap.mmap | None = None  # set before the Application is built

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        async def counted(event: TelegramObject, data: dict[str, Any]) -> Any:
            self._publish()  # the count has just gone up
            return await handler(event, data)

        try:
            return await super().__call__(counted, event, data)
        finally:
            self._publish()  # and has just gone down

    def _publish(self) -> None:
        if self.shared is not None:
            struct.pack_into("q", self.shared, 0, self.count)


def stop_when_stdin_ends(stop: Callable[[], None]) -> None:
    """Call ``stop`` in the event loop once stdin ends: the driver is gone."""
    loop = asyncio.get_running_loop()

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read at exit would stop
        # the interpreter from finalising.
        with suppress(OSError):
            while os.read(sys.stdin.fileno(), 4096):
                pass
        with suppress(RuntimeError):  # the loop has already closed: nothing left to stop
            loop.call_soon_threadsafe(stop)

    threading.Thread(target=watch, name="driver-watch", daemon=True).start()


async def serve_hearback(options: dict[str, Any], shared: mmap.mmap) -> None:
    SharedInFlight.shared = shared
    app_module.InFlightUpdates = SharedInFlight  # type: ignore[misc]  # what Application builds
    settings = Settings(_env_file=None, **options["settings"])
    app = Application(
        settings,
        token=options["token"],
        api_url=options["api_url"],
        clock=FakeClock(),  # Monday 2026-01-05 12:00 UTC, as in the end-to-end tests
        limiter=(
            RateLimiter.from_settings(settings, options["token"])
            if options.get("paced")
            # Unpaced, but its tokens still taken where production takes them (REDIS_URL).
            else RateLimiter(
                UNPACED, QUICK, budget=budget_from_settings(settings, options["token"])
            )
        ),
        webhook=bool(options.get("webhook")),
    )
    stop_when_stdin_ends(app.stop)
    running = asyncio.create_task(run_until_signalled(app))
    started = asyncio.create_task(app.started.wait())
    await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    if app.started.is_set():
        tell({"ready": True})
    await running  # a start-up or polling failure surfaces here


def echo_dispatcher() -> Dispatcher:
    """A bare aiogram bot: every message back as it came, every tap answered and echoed."""
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    @dispatcher.callback_query()
    async def tapped(callback: CallbackQuery) -> None:
        await callback.answer()
        if isinstance(callback.message, Message):
            await callback.message.answer(f"You chose {callback.data}")

    return dispatcher


async def serve_echo(options: dict[str, Any]) -> None:
    bot = Bot(
        token=options["token"],
        session=AiohttpSession(api=TelegramAPIServer.from_base(options["api_url"])),
        default=DefaultBotProperties(parse_mode=None),
    )
    dispatcher = echo_dispatcher()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stop_when_stdin_ends(stop.set)
    try:
        await bot.me()  # a wrong address or token fails here, before "ready"
        polling = asyncio.create_task(
            dispatcher.start_polling(
                bot, handle_signals=False, close_bot_session=False, polling_timeout=10
            )
        )
        stopping = asyncio.create_task(stop.wait())
        gc.collect()
        gc.freeze()  # as Application.run does once started
        tell({"ready": True})
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not polling.done():
            try:
                await dispatcher.stop_polling()
            except RuntimeError:  # stopped before polling had begun
                polling.cancel()
        with suppress(asyncio.CancelledError):
            await polling  # a polling failure surfaces here
    finally:
        await bot.session.close()


def main() -> None:
    options = json.loads(sys.argv[1])
    kind = options["kind"]
    logging.basicConfig(
        level=logging.WARNING, format=f"{kind} bot: %(levelname)s %(name)s: %(message)s"
    )
    failures = HandlerFailures()
    logging.getLogger("aiogram.event").addFilter(failures)
    try:
        with open(options["in_flight"], "r+b") as file, mmap.mmap(file.fileno(), 8) as shared:
            if kind == "hearback":
                asyncio.run(serve_hearback(options, shared))
            elif kind == "echo":
                asyncio.run(serve_echo(options))
            else:
                raise SystemExit(f"unknown kind of bot: {kind!r}")
    except Exception:
        logging.getLogger("bench").exception("failed")  # the traceback, after the bot's name
        raise SystemExit(1) from None
    finally:
        tell(
            {
                "cpu_s": time.process_time(),
                "handler_failures": failures.count,
                "first_failure": failures.first,
            }
        )


if __name__ == "__main__":
    main()
