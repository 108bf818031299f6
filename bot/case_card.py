"""What staff read about a case: the card, its buttons, and the notes the bot writes in the thread.

Pure rendering from a `CaseFile`. The back room is English for now (the customer-facing texts
are the ones translated). The card shows the customer's first name and @username and nothing
else about them — no Telegram id, no phone — unless they wrote it themselves.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CaseAction, CaseCallback, OfferCallback, SentimentCallback
from bot.test_surveys import is_test_visit
from storage.case_repository import CaseFile
from storage.model_repository import CORRECTABLE
from storage.models import CaseOffer, CaseSeverity, CaseState, CaseTrigger, SurveyScale

__all__ = [
    "COMMENT_FOLD",
    "card_keyboard",
    "card_text",
    "offer_keyboard",
    "sentiment_keyboard",
    "topic_name",
]

#: Longer comments are folded on the card; "Full text" posts them whole in the thread.
COMMENT_FOLD = 600

_SEVERITY_MARK = {
    CaseSeverity.CRITICAL: "🔴",
    CaseSeverity.HIGH: "🟠",
    CaseSeverity.MEDIUM: "🟡",
    CaseSeverity.LOW: "⚪",
}
_TRIGGER = {
    CaseTrigger.CONTACT_REQUESTED: "asked to be contacted",
    CaseTrigger.LOW_SCORE: "low score",
    CaseTrigger.MIXED: "kind score, angry words",
    CaseTrigger.NEGATIVE_COMMENT: "negative comment",
    CaseTrigger.UNSOLICITED: "unhappy message",
}
_STATE = {
    CaseState.OPEN: "open",
    CaseState.TAKEN: "taken",
    CaseState.RESOLVED: "resolved, waiting for the customer's follow-up",
    CaseState.CONFIRMED: "closed: the customer says it was put right",
    CaseState.REOPENED: "reopened",
}
_MEDIA_NAMES = {"voice": "voice note", "video_note": "video message", "document": "file"}
#: The sentiment choices staff correct a case with, and the way back to the card's buttons.
SENTIMENT_LABELS = {label.value: label.value.capitalize() for label in CORRECTABLE}
BACK = "back"
#: Reasons a model read in the words are a guess, and the card says so.
SUGGESTED = "Suggested reasons (from the words): "
OFFER_LABELS = {
    CaseOffer.NONE: "Nothing extra",
    CaseOffer.REFUND: "Refund",
    CaseOffer.VOUCHER: "Voucher",
    CaseOffer.FREE_SERVICE: "Free service",
    CaseOffer.OTHER: "Something else",
}


def _when(at: datetime | None, zone: tzinfo) -> str:
    return "—" if at is None else f"{at.astimezone(zone):%a %d %b %H:%M}"


#: On the card of a case from an admin's /test_survey: staff need not chase it.
TEST_NOTE = "🧪 From a test survey (/test_survey): not a real customer's complaint."


def customer_line(file: CaseFile) -> str:
    customer = file.customer
    if customer is None or customer.erased_at is not None:
        return "A customer who erased their data"
    name = customer.first_name or "A customer"
    return f"{name} (@{customer.username})" if customer.username else name


def topic_name(file: CaseFile) -> str:
    """The forum topic of a case: 1–128 characters."""
    parts = [f"#{file.case.id}", customer_line(file).split(" (@")[0]]
    answer = file.answer
    if answer is not None and answer.score is not None and answer.scale is not None:
        parts.append(f"{answer.score}/{_top(answer.scale)}")
    if file.visit is not None and file.visit.location:
        parts.append(file.visit.location)
    return " · ".join(parts)[:128]


def card_text(file: CaseFile, zone: tzinfo, now: datetime) -> str:
    case, answer, visit = file.case, file.answer, file.visit
    lines = [
        f"{_SEVERITY_MARK[case.severity]} Case #{case.id} · {case.severity.value} · "
        f"{_TRIGGER[case.trigger]}",
        customer_line(file),
    ]
    if visit is not None and is_test_visit(visit.external_id):
        lines.insert(1, TEST_NOTE)
    if answer is not None:
        verdict = []
        if answer.score is not None and answer.scale is not None:
            verdict.append(f"score {answer.score}/{_top(answer.scale)}")
        if answer.sentiment_corrected is not None:
            read = answer.sentiment_label
            verdict.append(
                f"sentiment {answer.sentiment_corrected.value} (corrected by "
                f"{file.corrected_by or 'staff'}"
                + (f"; the bot read {read.value})" if read is not None else ")")
            )
        elif answer.sentiment_label is not None:
            verdict.append(f"sentiment {answer.sentiment_label.value}")
        if verdict:
            lines.append(" · ".join(verdict))
        if file.reasons:
            lines.append("Reasons: " + ", ".join(reason.label for reason in file.reasons))
        elif file.suggested:
            lines.append(SUGGESTED + ", ".join(reason.label for reason in file.suggested))
        if answer.comment:
            comment = answer.comment
            if len(comment) > COMMENT_FOLD:
                comment = (
                    comment[:COMMENT_FOLD].rstrip() + f"… ({len(answer.comment):,} characters)"
                )
            lines.append(f"Comment: “{comment}”")
        if answer.media_kind:
            kind = _MEDIA_NAMES.get(answer.media_kind, answer.media_kind.replace("_", " "))
            lines.append(f"Attached: a {kind} (below)")
        if answer.contact_requested is True:
            lines.append("Contact: yes, the customer asked to be contacted")
        elif answer.contact_requested is False:
            lines.append("Contact: the customer did not ask to be contacted")
    if visit is not None:
        details = [
            d for d in (visit.location, visit.staff and f"staff {visit.staff}", visit.service) if d
        ]
        details.append(_when(visit.occurred_at, zone))
        lines.append("Visit: " + " · ".join(details))
    if case.first_responded_at is None and case.state in (
        CaseState.OPEN,
        CaseState.REOPENED,
        CaseState.TAKEN,
    ):
        due = case.first_response_due_at
        overdue = " — OVERDUE" if due is not None and due <= now else ""
        lines.append(f"First response due: {_when(due, zone)}{overdue}")
    if case.resolution_due_at is not None and case.state not in (
        CaseState.RESOLVED,
        CaseState.CONFIRMED,
    ):
        lines.append(f"Resolution due: {_when(case.resolution_due_at, zone)}")
    state = _STATE[case.state]
    if case.taken_by_name and case.state is not CaseState.OPEN:
        state += f" · taken by {case.taken_by_name}"
    if case.offer is not None and case.state in (CaseState.RESOLVED, CaseState.CONFIRMED):
        state += f" · offered: {OFFER_LABELS[case.offer].lower()}"
    lines.append(f"State: {state}")
    lines.append(
        "Reply in this thread to answer the customer; start with // for a note they never see. "
        "Edits and deletions are not passed on."
    )
    return "\n".join(lines)


def card_keyboard(file: CaseFile) -> InlineKeyboardMarkup:
    case = file.case
    row: list[InlineKeyboardButton] = []
    if case.state in (CaseState.OPEN, CaseState.REOPENED):
        row.append(_button(case.id, CaseAction.TAKE, "Take"))
    if case.state in (CaseState.OPEN, CaseState.REOPENED, CaseState.TAKEN):
        row.append(_button(case.id, CaseAction.RESOLVE, "Resolve"))
    if case.state in (CaseState.RESOLVED, CaseState.CONFIRMED):
        row.append(_button(case.id, CaseAction.REOPEN, "Reopen"))
    more: list[InlineKeyboardButton] = []
    if file.answer is not None:  # in any state: a label is worth correcting even when closed
        more.append(_button(case.id, CaseAction.SENTIMENT, "Sentiment…"))
    if file.answer is not None and file.answer.comment and len(file.answer.comment) > COMMENT_FOLD:
        more.append(_button(case.id, CaseAction.FULL_TEXT, "Full text"))
    return InlineKeyboardMarkup(inline_keyboard=[r for r in (row, more) if r])


def sentiment_keyboard(case_id: int) -> InlineKeyboardMarkup:
    """In the card's place while staff correct its sentiment: the choices, then Back."""
    choices = [
        InlineKeyboardButton(
            text=text, callback_data=SentimentCallback(case_id=case_id, label=value).pack()
        )
        for value, text in SENTIMENT_LABELS.items()
    ]
    back = InlineKeyboardButton(
        text="Back", callback_data=SentimentCallback(case_id=case_id, label=BACK).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[choices, [back]])


def offer_keyboard(case_id: int) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=label, callback_data=OfferCallback(case_id=case_id, offer=offer.value).pack()
        )
        for offer, label in OFFER_LABELS.items()
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[:2], buttons[2:]])


def _button(case_id: int, action: CaseAction, label: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=label, callback_data=CaseCallback(case_id=case_id, action=action).pack()
    )


def _top(scale: SurveyScale) -> int:
    return 5 if scale is SurveyScale.CSAT else 10
