"""Typed callback data for the bot's inline buttons, and the score keyboard built from them.

Telegram gives a button 1–64 bytes of ``callback_data`` and hands them back untouched when it is
tapped, so each button says everything its handler needs, compactly: a short prefix names the
kind of button, and the fields follow, separated by ``:``. aiogram's `CallbackData` packs and
parses them, and its filter (``ScoreCallback.filter()``) routes taps to the right handler.

Sizes: ``sc:<survey id>:<score>`` is at most 3 + 19 + 1 + 2 = 25 bytes even for the largest
64-bit survey id, and ``rs:<answer id>:<reason id>`` at most 42, far inside the limit (a test
packs the extremes).

Nothing in callback data is trusted: anyone can send any bytes as a "tap". Each handler checks
that the answer or survey named belongs to the person tapping and is at the step the button is
for, and answers anything else with a short polite notice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from storage.models import SurveyScale

__all__ = [
    "SCORES",
    "CaseAction",
    "CaseCallback",
    "Chip",
    "Confirm",
    "ConfirmCallback",
    "FollowupCallback",
    "LanguageCallback",
    "OfferCallback",
    "ReasonCallback",
    "ScoreCallback",
    "SentimentCallback",
    "Step",
    "StepCallback",
    "one_row",
    "reasons_keyboard",
    "score_keyboard",
    "step_button",
]

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


class ReasonCallback(CallbackData, prefix="rs"):
    """A reason chip of one answer: tapping it selects or clears reason ``reason_id``."""

    answer_id: int
    reason_id: int


class Step(enum.StrEnum):
    DONE = "d"  # the reasons are chosen
    SKIP = "s"  # no comment
    CONTACT_YES = "y"
    CONTACT_NO = "n"


class StepCallback(CallbackData, prefix="st"):
    """A button that moves one answer's conversation on (see `Step`)."""

    answer_id: int
    step: Step


class Confirm(enum.StrEnum):
    STOP = "stop"
    FORGET = "forget"


class ConfirmCallback(CallbackData, prefix="cf"):
    """Yes or No to a question that needs confirming (/stop, /forget)."""

    what: Confirm
    yes: bool


class LanguageCallback(CallbackData, prefix="lg"):
    locale: str


@dataclass(frozen=True, slots=True)
class Chip:
    reason_id: int
    label: str
    selected: bool


def reasons_keyboard(answer_id: int, chips: list[Chip], done: str) -> InlineKeyboardMarkup:
    """The reason chips two to a row (a tapped one marked ✓), then Done."""
    buttons = [
        InlineKeyboardButton(
            text=f"✓ {chip.label}" if chip.selected else chip.label,
            callback_data=ReasonCallback(answer_id=answer_id, reason_id=chip.reason_id).pack(),
        )
        for chip in chips
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([step_button(answer_id, Step.DONE, done)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def step_button(answer_id: int, step: Step, label: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=label, callback_data=StepCallback(answer_id=answer_id, step=step).pack()
    )


def one_row(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(buttons)])


class CaseAction(enum.StrEnum):
    TAKE = "t"
    RESOLVE = "r"
    REOPEN = "o"
    FULL_TEXT = "f"
    SENTIMENT = "s"  # offer the sentiment choices (SentimentCallback) in the card's place


class CaseCallback(CallbackData, prefix="cs"):
    """A button on a case card in a staff chat."""

    case_id: int
    action: CaseAction


class SentimentCallback(CallbackData, prefix="cn"):
    """Staff's reading of a case's sentiment (a correctable SentimentLabel value), or "back" to
    the card's own buttons. ``cn:<case id>:positive`` is at most 31 bytes."""

    case_id: int
    label: str


class OfferCallback(CallbackData, prefix="co"):
    """What was offered when resolving a case (the second step of Resolve)."""

    case_id: int
    offer: str  # a CaseOffer value


class FollowupCallback(CallbackData, prefix="fu"):
    """The customer's answer to "Was this put right?"."""

    case_id: int
    yes: bool
