"""The case card's words for what staff must know at a glance."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.case_card import TEST_NOTE, card_text
from storage.case_repository import CaseFile
from storage.models import Case, CaseSeverity, CaseState, CaseTrigger, Visit, VisitSource

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
