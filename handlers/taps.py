"""Answering a tap on an inline button."""

from __future__ import annotations

from contextlib import suppress

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery


async def answer_tap(
    callback: CallbackQuery, text: str | None = None, *, alert: bool = False
) -> None:
    """Answer a tap (stops the button's spinner, shows ``text`` if any). Telegram takes an
    answer only within about 15 s; one that comes later under load is dropped ("query is too
    old") and the handler carries on, so the customer still gets the reply that matters."""
    with suppress(TelegramBadRequest):
        await callback.answer(text, show_alert=alert)
