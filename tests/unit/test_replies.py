"""What the customer reads after each turn: pure presentation, no Telegram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.conversation import Chip, Result, Turn
from bot.flood import FloodGuard
from bot.replies import Replies
from bot.sentiment import ScoreBand
from bot.texts import Texts
from storage.models import AnswerStage

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday


def replies() -> Replies:
    return Replies(Texts("Rice Shop"), lambda zone: ZoneInfo(zone or "Europe/Berlin"))


@pytest.mark.parametrize(
    ("due", "locale", "said"),
    [
        (NOW + timedelta(hours=1), "en", "today by 14:00"),
        (NOW + timedelta(hours=24), "en", "tomorrow by 13:00"),
        (NOW + timedelta(days=3), "en", "by 13:00 on Thursday 8 January"),
        (NOW + timedelta(hours=24), "zh_Hans", "明天13:00前"),
    ],
)
def test_deadlines_are_said_on_the_customers_clock(due: datetime, locale: str, said: str) -> None:
    turn = Turn(Result.OK, timezone=None)  # Berlin: one hour ahead of UTC in January
    assert replies().deadline(due, turn, NOW, locale) == said


def test_chosen_reasons_are_listed_as_the_language_lists() -> None:
    chips = (
        Chip(1, "rude_staff", "Rude or indifferent staff", True),
        Chip(2, "long_wait", "Waited too long", True),
        Chip(3, "custom", "Music too loud", True),  # an admin's own chip shows as named
        Chip(4, "other", "Other", False),
    )
    turn = Turn(Result.OK, chips=chips, first_name="Anna", location="Downtown")
    en = replies().chips_chosen(turn, "en")
    zh = replies().chips_chosen(turn, "zh_Hans")
    assert en.endswith(
        "What went wrong: Rude or indifferent staff, Waited too long and Music too loud."
    )
    assert "、" in zh and "Music too loud" in zh


def test_a_high_score_closing_invites_a_review_only_when_there_is_a_page() -> None:
    done = Turn(Result.OK, answer_id=7, stage=AnswerStage.DONE, band=ScoreBand.HIGH)
    with_page = Turn(
        Result.OK,
        answer_id=7,
        stage=AnswerStage.DONE,
        band=ScoreBand.HIGH,
        review_url="https://example.com/review",
    )
    assert len(replies().next(done, "en", NOW)) == 1
    [_, invitation] = replies().next(with_page, "en", NOW)
    assert invitation.keyboard is not None
    assert invitation.keyboard.inline_keyboard[0][0].url == "https://example.com/review"


def test_a_customer_with_no_first_name_is_addressed_politely() -> None:
    turn = Turn(Result.OK, answer_id=1, stage=AnswerStage.CONTACT, band=ScoreBand.LOW)
    [ask] = replies().next(turn, "en", NOW)
    assert ask.text.startswith("Thank you, dear customer.")
    assert ask.prompt is AnswerStage.CONTACT


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_flood_guard_lets_everything_through_and_marks_the_flood_once() -> None:
    from aiogram.types import Chat, Message, User

    clock = _Clock()
    guard = FloodGuard(limit=6, window=10, monotonic=clock)
    user = User(id=1, is_bot=False, first_name="Anna")
    seen: list[tuple[bool, bool]] = []

    async def handler(event, data):
        seen.append((data["flooding"], data["flood_notice"]))

    for n in range(30):
        clock.now = n * 0.3  # 30 messages in 9 s
        message = Message(
            message_id=n, date=NOW, chat=Chat(id=1, type="private"), from_user=user, text="x"
        )
        await guard(handler, message, {"event_from_user": user})
    assert len(seen) == 30  # every message is handled
    assert [flooding for flooding, _ in seen[:6]] == [False] * 6
    assert all(flooding for flooding, _ in seen[6:])
    assert sum(notice for _, notice in seen) == 1

    clock.now = 30.0  # calm again
    await guard(handler, message, {"event_from_user": user})
    assert seen[-1] == (False, False)
