"""The customer's answers: taps on scores, chips and steps, and the words they write.

Thin: each handler asks bot.conversation what the update means and sends what bot.replies
says. Edits of earlier messages (taking stale buttons away) are best effort: Telegram refuses to
edit a message that is too old or unchanged, and the conversation goes on regardless.
"""

from __future__ import annotations

from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message, User

from bot import texts
from bot.callbacks import ReasonCallback, ScoreCallback, Step, StepCallback
from bot.cases import CaseService
from bot.clock import Clock
from bot.conversation import ConversationService, Media, Result, Turn
from bot.replies import Replies
from handlers.taps import answer_tap
from storage.repositories import TelegramProfile

# What a message carries that can be kept as a comment: (attribute, kind).
_KEPT_MEDIA = ("voice", "video", "video_note", "audio", "document")


def router() -> Router:
    conversation = Router(name="conversation")
    conversation.callback_query.register(score_tapped, ScoreCallback.filter())
    conversation.callback_query.register(reason_tapped, ReasonCallback.filter())
    conversation.callback_query.register(step_tapped, StepCallback.filter())
    conversation.message.register(said, F.text)
    conversation.message.register(said, F.photo | F.voice | F.video | F.video_note)
    conversation.message.register(said, F.audio | F.document)
    return conversation


def profile_of(user: User) -> TelegramProfile:
    return TelegramProfile(
        user_id=user.id,
        first_name=user.first_name,
        username=user.username,
        language_code=user.language_code,
    )


# -- taps ----------------------------------------------------------------------------------------


async def score_tapped(
    callback: CallbackQuery,
    callback_data: ScoreCallback,
    conversation: ConversationService,
    replies: Replies,
    clock: Clock,
    bot: Bot,
    locale: str,
) -> None:
    turn = await conversation.score(
        profile_of(callback.from_user), callback_data.survey_id, callback_data.score
    )
    if not turn.ok:
        await answer_tap(callback, replies.notice(turn.result, locale))
        return
    await answer_tap(callback)
    message = callback.message
    if isinstance(message, Message):
        # The question stays; the hint and the buttons give way to the chosen score.
        question = (message.text or "").split("\n\n", 1)[0] or None
        with suppress(TelegramBadRequest):
            await message.edit_text(replies.score_chosen(question, turn, locale))
    await send_next(bot, callback.from_user.id, turn, conversation, replies, clock, locale)


async def reason_tapped(
    callback: CallbackQuery,
    callback_data: ReasonCallback,
    conversation: ConversationService,
    replies: Replies,
    locale: str,
) -> None:
    turn = await conversation.toggle_reason(
        profile_of(callback.from_user), callback_data.answer_id, callback_data.reason_id
    )
    if not turn.ok:
        await answer_tap(callback, replies.notice(turn.result, locale))
        return
    await answer_tap(callback)
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):
            await callback.message.edit_reply_markup(
                reply_markup=replies.chips_keyboard(turn, locale)
            )


async def step_tapped(
    callback: CallbackQuery,
    callback_data: StepCallback,
    conversation: ConversationService,
    replies: Replies,
    clock: Clock,
    bot: Bot,
    locale: str,
) -> None:
    profile, answer_id = profile_of(callback.from_user), callback_data.answer_id
    step = callback_data.step
    if step is Step.DONE:
        turn = await conversation.reasons_done(profile, answer_id)
    elif step is Step.SKIP:
        turn = await conversation.skip_comment(profile, answer_id)
    else:
        turn = await conversation.contact(profile, answer_id, step is Step.CONTACT_YES)
    if not turn.ok:
        await answer_tap(callback, replies.notice(turn.result, locale))
        return
    await answer_tap(callback)
    message = callback.message
    if isinstance(message, Message):
        if step is Step.DONE:
            text = replies.chips_chosen(turn, locale)
        elif step is Step.SKIP:
            text = replies.skipped(message.text, locale)
        else:
            text = replies.contact_chosen(turn, locale)
        with suppress(TelegramBadRequest):
            await message.edit_text(text)
    await send_next(bot, callback.from_user.id, turn, conversation, replies, clock, locale)


# -- messages ------------------------------------------------------------------------------------


async def said(
    message: Message,
    conversation: ConversationService,
    replies: Replies,
    clock: Clock,
    bot: Bot,
    locale: str,
    flooding: bool = False,
    flood_notice: bool = False,
    cases: CaseService | None = None,
) -> None:
    """Words, or a voice note, photo, video or file (with its caption), from the customer."""
    if message.from_user is None:
        return
    kept = _media_of(message)
    text = message.caption if kept is not None else message.text
    if kept is None and not (text or "").strip():
        if not flooding:
            name = replies.words.name(message.from_user.first_name, locale)
            await message.answer(replies.words.render(texts.HINT_EMPTY, locale, name=name))
        return
    turn = await conversation.message(profile_of(message.from_user), text=text, media=kept)
    await _after_message(
        message, turn, conversation, replies, clock, bot, locale, flooding, flood_notice, cases
    )


async def _after_message(
    message: Message,
    turn: Turn,
    conversation: ConversationService,
    replies: Replies,
    clock: Clock,
    bot: Bot,
    locale: str,
    flooding: bool,
    flood_notice: bool,
    cases: CaseService | None,
) -> None:
    assert message.from_user is not None
    if turn.result is Result.RELAY and turn.case_id is not None and cases is not None:
        await cases.from_customer(turn.case_id, message)
        return
    if turn.previous_prompt is not None:
        # The words answered the question of that message: its buttons are stale now.
        with suppress(TelegramBadRequest):
            await bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=turn.previous_prompt, reply_markup=None
            )
    if flood_notice:
        name = replies.words.name(message.from_user.first_name, locale)
        await message.answer(replies.words.render(texts.SLOW_DOWN, locale, name=name))
    # In a flood only questions are asked; thanks and hints wait for calmer moments.
    asks_question = turn.previous_prompt is not None
    if flooding and not asks_question:
        return
    await send_next(bot, message.chat.id, turn, conversation, replies, clock, locale)


async def send_next(
    bot: Bot,
    chat_id: int,
    turn: Turn,
    conversation: ConversationService,
    replies: Replies,
    clock: Clock,
    locale: str,
) -> None:
    for reply in replies.next(turn, locale, clock.now()):
        sent = await bot.send_message(chat_id, reply.text, reply_markup=reply.keyboard)
        if reply.prompt is not None and turn.answer_id is not None:
            await conversation.prompted(turn.answer_id, reply.prompt, sent.message_id)


def _media_of(message: Message) -> Media | None:
    if message.photo:
        return Media("photo", message.photo[-1].file_id)  # the largest size
    for kind in _KEPT_MEDIA:
        item = getattr(message, kind)
        if item is not None:
            return Media(kind, item.file_id)
    return None
