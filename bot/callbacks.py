"""Typed callback data for the bot's inline buttons, and the score keyboard built from them.

Telegram gives a button 1–64 bytes of ``callback_data`` and hands them back untouched when it is
tapped, so each button says everything its handler needs, compactly: a short prefix names the
kind of button, and the fields follow, separated by ``:``. aiogram's `CallbackData` packs and
parses them, and its filter (``ScoreCallback.filter()``) routes taps to the right handler.

Sizes: ``sc:<survey id>:<score>`` is at most 3 + 19 + 1 + 2 = 25 bytes even for the largest
64-bit survey id, far inside the limit (a test packs the extremes).
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from storage.models import SurveyScale

__all__ = ["SCORES", "ScoreCallback", "score_keyboard"]

#: The scores each scale offers, lowest first.
SCORES: dict[SurveyScale, range] = {
    SurveyScale.CSAT: range(1, 6),
    SurveyScale.NPS: range(0, 11),
}

# 0–10 in one row is too narrow to tap on a phone; two rows of six and five are not.
_NPS_ROWS = (range(0, 6), range(6, 11))


class ScoreCallback(CallbackData, prefix="sc"):
    """A score button of one survey: tapping it answers survey ``survey_id`` with ``score``."""

    survey_id: int
    score: int


def score_keyboard(survey_id: int, scale: SurveyScale) -> InlineKeyboardMarkup:
    """The survey's score buttons: 1–5 in one row (CSAT), or 0–10 in two rows (NPS)."""
    rows = [SCORES[SurveyScale.CSAT]] if scale is SurveyScale.CSAT else list(_NPS_ROWS)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=str(score),
                    callback_data=ScoreCallback(survey_id=survey_id, score=score).pack(),
                )
                for score in row
            ]
            for row in rows
        ]
    )
