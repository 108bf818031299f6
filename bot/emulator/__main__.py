"""Run the emulator on its own: ``python -m bot.emulator --port 8082``.

Prints the base URL, a bot token and the control API's address, then serves until interrupted
(Ctrl-C or SIGTERM). Point a bot at it with ``TELEGRAM_API_URL=<url> BOT_TOKEN=<token>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bot.emulator.emulator import Emulator
from bot.emulator.limits import Limits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8082, help="port (0: any free one)")
    parser.add_argument("--username", default="hearback_bot", help="the bot's username")
    parser.add_argument("--token", default=None, help="use this bot token instead of a new one")
    parser.add_argument("--no-limits", action="store_true", help="turn flood limits off")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emu = Emulator(limits=Limits.off() if args.no_limits else None)
    url = await emu.start(args.host, args.port)
    bot = emu.add_bot(username=args.username, token=args.token)
    print(f"Bot API emulator listening on {url}", flush=True)
    print(f"bot @{bot.username} token: {bot.token}", flush=True)
    print(f"control API: {url}/_emulator", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
