"""A Telegram Bot API emulator: a loopback HTTP server that speaks the Bot API like Telegram.

End-to-end tests, benchmarks and the offline sandbox run the real bot (aiogram, via
``AiohttpSession(api=TelegramAPIServer.from_base(emu.url))``) against it, and simulated people
use it from the other side::

    async with Emulator() as emu:
        bot = emu.add_bot(username="hearback_bot")
        anna = emu.add_user(first_name="Anna", username="anna")
        await anna.send(bot, "/start v123")
        await emu.wait_for(lambda: anna.inbox(bot))

Why an emulator rather than mocks: it validates every request against the published spec
(``spec/api.min.json``), keeps Telegram's prose limits, error texts and flood limits, and can
fail on demand the ways Telegram fails — so what passes here is what Telegram accepts.

Modules: ``emulator`` (the Emulator and the life of a call), ``spec`` (validation),
``formatting`` (parse modes and text limits), ``limits`` (flood limits and the clock),
``faults`` (injected failures), ``world`` (people, chats, messages, updates), ``methods``
(the Bot API methods), ``webhook`` (webhook delivery), ``server`` (HTTP), ``control`` (the
``/_emulator/`` JSON API), ``media`` (sample files and image headers), ``recording`` (the
call log and counters), ``errors`` (Telegram's error shape).
"""

from bot.emulator.emulator import Emulator, WaitTimeout
from bot.emulator.errors import ApiError
from bot.emulator.faults import Faults
from bot.emulator.limits import Limits
from bot.emulator.media import TINY_PNG, make_png
from bot.emulator.methods import implemented_methods
from bot.emulator.recording import Call, Stats
from bot.emulator.spec import Spec, Upload
from bot.emulator.world import (
    BotAccount,
    CallbackQuery,
    FileRecord,
    Member,
    SimChat,
    SimulationError,
    SimUser,
    StoredMessage,
    Topic,
)

__all__ = [
    "TINY_PNG",
    "ApiError",
    "BotAccount",
    "Call",
    "CallbackQuery",
    "Emulator",
    "Faults",
    "FileRecord",
    "Limits",
    "Member",
    "SimChat",
    "SimUser",
    "SimulationError",
    "Spec",
    "Stats",
    "StoredMessage",
    "Topic",
    "Upload",
    "WaitTimeout",
    "implemented_methods",
    "make_png",
]
