"""Cases in staff chats: the card's buttons, messages in a case's thread, and the customer's
answer to the follow-up. Thin: bot.cases decides and sends."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot import texts
from bot.callbacks import (
    CaseAction,
    CaseCallback,
    FollowupCallback,
    OfferCallback,
    SentimentCallback,
)
from bot.case_card import BACK, OFFER_LABELS, SENTIMENT_LABELS, card_keyboard, sentiment_keyboard
from bot.cases import CaseService
from bot.texts import Texts
from handlers.taps import answer_tap
from storage.models import CaseOffer, SentimentLabel

NOT_ALLOWED = "Not allowed: only members of this case's staff chat (or admins) can do that."

_GROUPS = F.chat.type.in_({"group", "supergroup"})


def router() -> Router:
    staff = Router(name="cases")
    staff.callback_query.register(case_button, CaseCallback.filter())
    staff.callback_query.register(offer_chosen, OfferCallback.filter())
    staff.callback_query.register(sentiment_chosen, SentimentCallback.filter())
    staff.message.register(in_thread, _GROUPS, ~F.text.startswith("/"))
    staff.edited_message.register(edited, _GROUPS)
    return staff


def customer_router() -> Router:
    """The customer's side of a case: the follow-up's Yes/No (a private chat)."""
    customer = Router(name="case-followup")
    customer.callback_query.register(followup_answered, FollowupCallback.filter())
    return customer


async def case_button(
    callback: CallbackQuery, callback_data: CaseCallback, cases: CaseService
) -> None:
    user, message = callback.from_user, callback.message
    if message is None:
        await answer_tap(callback, NOT_ALLOWED, alert=True)
        return
    file = await cases.may_act(callback_data.case_id, message.chat.id, user.id)
    if file is None:
        await answer_tap(callback, NOT_ALLOWED, alert=True)
        return
    action = callback_data.action
    if action is CaseAction.TAKE:
        taken = await cases.take(file, user.id, user.full_name)
        await answer_tap(callback, "It is yours." if taken else "This case has moved on already.")
    elif action is CaseAction.RESOLVE:
        await answer_tap(callback)
        await cases.ask_offer(file, user.full_name)
    elif action is CaseAction.REOPEN:
        reopened = await cases.reopen(file, user.id, user.full_name)
        await answer_tap(callback, "Reopened." if reopened else "This case is open already.")
    elif action is CaseAction.SENTIMENT:
        if file.answer is None or not isinstance(message, Message):
            await answer_tap(callback, NOT_ALLOWED, alert=True)
            return
        await answer_tap(callback, "How do you read the customer's words?")
        await message.edit_reply_markup(reply_markup=sentiment_keyboard(file.case.id))
    else:
        await answer_tap(callback)
        await cases.full_text(file)


async def offer_chosen(
    callback: CallbackQuery, callback_data: OfferCallback, cases: CaseService
) -> None:
    user, message = callback.from_user, callback.message
    file = (
        await cases.may_act(callback_data.case_id, message.chat.id, user.id)
        if message is not None
        else None
    )
    if file is None or message is None or callback_data.offer not in set(CaseOffer):
        await answer_tap(callback, NOT_ALLOWED, alert=True)
        return
    offer = CaseOffer(callback_data.offer)
    resolved = await cases.resolve(file, user.id, user.full_name, offer, message.message_id)
    if not resolved:
        await answer_tap(callback, "This case has moved on already.")
        return
    await answer_tap(callback, "Resolved.")
    if isinstance(message, Message):
        await message.edit_text(
            f"Case #{file.case.id} is resolved by {user.full_name} · offered: "
            f"{OFFER_LABELS[offer].lower()}. Reply to this message to add a note; the customer "
            "will be asked later whether it was put right."
        )


async def sentiment_chosen(
    callback: CallbackQuery, callback_data: SentimentCallback, cases: CaseService
) -> None:
    user, message = callback.from_user, callback.message
    choice = callback_data.label
    file = (
        await cases.may_act(callback_data.case_id, message.chat.id, user.id)
        if message is not None and (choice in SENTIMENT_LABELS or choice == BACK)
        else None
    )
    if file is None or file.answer is None or not isinstance(message, Message):
        await answer_tap(callback, NOT_ALLOWED, alert=True)
        return
    if choice == BACK:
        await answer_tap(callback)
        await message.edit_reply_markup(reply_markup=card_keyboard(file))
        return
    label = SentimentLabel(choice)
    corrected = await cases.correct_sentiment(file, user.id, user.full_name, label)
    await answer_tap(
        callback, f"Sentiment: {label.value}." if corrected else f"It is {label.value} already."
    )


async def in_thread(message: Message, cases: CaseService) -> None:
    file = await cases.case_of_staff_message(message)
    if file is None:
        return  # chatter in the staff chat that is not about a case
    outcome = await cases.from_staff(file, message)
    if outcome == "not_allowed":
        await message.reply(NOT_ALLOWED)


async def edited(message: Message, cases: CaseService) -> None:
    file = await cases.case_of_staff_message(message)
    if file is not None:
        await cases.edited_by_staff(file, message)


async def followup_answered(
    callback: CallbackQuery,
    callback_data: FollowupCallback,
    cases: CaseService,
    words: Texts,
    locale: str,
) -> None:
    outcome = await cases.followup_answer(
        callback_data.case_id, callback.from_user.id, callback_data.yes
    )
    if outcome is None:
        await answer_tap(callback, words.render(texts.TAP_NOT_USABLE, locale))
        return
    if outcome == "done":
        await answer_tap(callback, words.render(texts.TAP_STEP_DONE, locale))
        return
    await answer_tap(callback)
    name = words.name(callback.from_user.first_name, locale)
    reply = texts.FOLLOWUP_YES if callback_data.yes else texts.FOLLOWUP_NO
    if isinstance(callback.message, Message):
        await callback.message.edit_text(words.render(reply, locale, name=name))
