"""The admin's /export [period]: the surveys of a period as a CSV document (see bot.export).

Only admins get here (handlers.admin gates the router), so nothing below checks roles; anyone
else's /export is answered like any unknown command.

The file is written to a temporary file and sent from there (`FSInputFile` reads it in chunks),
so a large export never sits in memory. Telegram lets a bot upload at most 50 MB: the export
stops as soon as it passes that, and the admin is pointed at a shorter period or at
`hearback export` on the server. A period with no surveys gets a sentence, not an empty file.
Each export sent is audited (who, which period, how many surveys).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.export import ExportService, file_name
from bot.live_settings import LiveSettings
from bot.periods import DEFAULT, PeriodError, parse_period

__all__ = ["UPLOAD_LIMIT", "router"]

# -- wording (English: admins read it, customers never do) -------------------------------------

EXPORT_CAPTION = (
    "{rows} about visits in {period}, one row each; times in {zone}. "
    "Opens as it is in Excel, Numbers or Google Sheets."
)
EXPORT_EMPTY = (
    "There are no surveys about visits in {period}, so there is nothing to export. "
    "Try a longer period, e.g. /export 3m or /export all."
)
EXPORT_TOO_BIG = (
    "The export of {period} is larger than the 50 MB Telegram lets a bot send (it passed that "
    "after {rows:,} surveys). Export a shorter period, e.g. /export {example}, or run "
    "hearback export --period {text} on the server, which has no size limit."
)

#: The most a bot may upload to Telegram (sendDocument), in bytes.
UPLOAD_LIMIT = 50 * 1000 * 1000


def router() -> Router:
    export_router = Router(name="admin-export")
    export_router.message.register(export, Command("export"))
    return export_router


async def export(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    live: LiveSettings,
) -> None:
    zone = live.current.zone
    text = (command.args or "").strip() or DEFAULT
    try:
        period = parse_period(text, clock.now(), zone)
    except PeriodError as error:
        await message.answer(str(error))
        return
    exports = ExportService(sessions, clock)
    name = file_name(period, zone)
    with tempfile.TemporaryDirectory(prefix="hearback-export-") as folder:
        path = Path(folder) / name
        with path.open("wb") as out:
            exported = await exports.write(out, period, zone, max_bytes=UPLOAD_LIMIT)
        if not exported.complete:
            await message.answer(
                EXPORT_TOO_BIG.format(
                    period=period.label, rows=exported.rows, example="lastweek", text=text
                )
            )
            return
        if exported.rows == 0:
            await message.answer(EXPORT_EMPTY.format(period=period.label))
            return
        rows = "1 survey" if exported.rows == 1 else f"{exported.rows:,} surveys"
        await message.answer_document(
            FSInputFile(path, filename=name),
            caption=EXPORT_CAPTION.format(period=period.label, rows=rows, zone=zone),
        )
    person = message.from_user
    await exports.audit(
        period,
        exported.rows,
        actor_id=person.id if person else None,
        actor_name=person.full_name if person else None,
    )
