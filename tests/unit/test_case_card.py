"""The case card's words for what staff must know at a glance."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.callbacks import SentimentCallback
from bot.case_card import TEST_NOTE, card_keyboard, card_text, sentiment_keyboard
from storage.case_repository import CaseFile
from storage.models import (
    Answer,
    Case,
    CaseSeverity,
    CaseState,
    CaseTrigger,
    Reason,
    SentimentLabel,
    SurveyScale,
    Visit,
    VisitSource,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def case_file(visit_id: str) -> CaseFile:
    case = Case(
        id=7,
        state=CaseState.OPEN,
        severity=CaseSeverity.HIGH,
        trigger=CaseTrigger.LOW_SCORE,
        created_at=NOW,
    )
    visit = Visit(
        external_id=visit_id, location="Downtown", occurred_at=NOW, source=VisitSource.API
    )
    return CaseFile(case=case, answer=None, customer=None, visit=visit, staff_chat=None, reasons=())


def test_a_case_from_an_admins_test_survey_says_so_on_its_second_line() -> None:
    lines = card_text(case_file("test:5000001:42:1767614400"), UTC, NOW).splitlines()
    assert lines[1] == TEST_NOTE


def test_a_real_customers_case_carries_no_test_note() -> None:
    assert TEST_NOTE not in card_text(case_file("order-1234"), UTC, NOW)


def answered_file(**answer: object) -> CaseFile:
    file = case_file("order-1234")
    values: dict[str, object] = {
        "id": 3,
        "scale": SurveyScale.CSAT,
        "score": 5,
        "sentiment_label": SentimentLabel.MIXED,
        "comment": "Waited forever",
        "created_at": NOW,
    }
    return replace(file, answer=Answer(**{**values, **answer}))


def test_a_staff_correction_shows_who_made_it_and_what_the_bot_read() -> None:
    file = replace(answered_file(sentiment_corrected=SentimentLabel.NEGATIVE), corrected_by="Maria")
    text = card_text(file, UTC, NOW)
    assert "sentiment negative (corrected by Maria; the bot read mixed)" in text
    assert "sentiment mixed" not in text.replace("the bot read mixed", "")


def test_suggested_reasons_are_marked_as_a_guess_and_only_when_none_were_tapped() -> None:
    wait = Reason(code="long_wait", label="Waited too long", position=2, hidden=False)
    rude = Reason(code="rude_staff", label="Rude or indifferent staff", position=1, hidden=False)
    suggested = replace(answered_file(), suggested=(wait,))
    assert "Suggested reasons (from the words): Waited too long" in card_text(suggested, UTC, NOW)
    tapped = replace(suggested, reasons=(rude,))
    text = card_text(tapped, UTC, NOW)
    assert "Reasons: Rude or indifferent staff" in text and "Suggested" not in text


def test_every_case_with_an_answer_offers_a_sentiment_correction_that_fits_telegram() -> None:
    for state in CaseState:
        file = answered_file()
        file.case.state = state
        assert "Sentiment…" in [b.text for row in card_keyboard(file).inline_keyboard for b in row]
    assert "Sentiment…" not in str(card_keyboard(case_file("order-1")))  # no answer: nothing
    biggest = 2**63 - 1
    for row in sentiment_keyboard(biggest).inline_keyboard:
        for button in row:
            assert button.callback_data is not None
            assert len(button.callback_data.encode()) <= 64
            parsed = SentimentCallback.unpack(button.callback_data)
            assert parsed.case_id == biggest
    assert [b.text for row in sentiment_keyboard(1).inline_keyboard for b in row] == [
        "Negative",
        "Neutral",
        "Positive",
        "Back",
    ]
