"""What the customer reads after each turn of the conversation, in their language.

Pure presentation: a `Turn` from bot.conversation in, texts and buttons out; no I/O, so the whole
script is tested without Telegram and handlers stay thin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callbacks import Chip as ButtonChip
from bot.callbacks import Step, one_row, reasons_keyboard, step_button
from bot.conversation import Chip, Result, Turn
from bot.sentiment import ScoreBand, is_negative
from bot.texts import TEXTS, Texts
from storage.models import AnswerStage

__all__ = ["Replies", "Reply"]

_NOTICES = {
    Result.ALREADY_ANSWERED: texts.TAP_ALREADY_ANSWERED,
    Result.CLOSED: texts.TAP_SURVEY_CLOSED,
    Result.STEP_DONE: texts.TAP_STEP_DONE,
    Result.NOT_USABLE: texts.TAP_NOT_USABLE,
}

_MEDIA = {
    "voice": texts.MEDIA_VOICE,
    "photo": texts.MEDIA_PHOTO,
    "video": texts.MEDIA_VIDEO,
    "video_note": texts.MEDIA_VIDEO_NOTE,
    "audio": texts.MEDIA_AUDIO,
    "document": texts.MEDIA_DOCUMENT,
}


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    keyboard: InlineKeyboardMarkup | None = None
    # The message asks the question of this step: its id is recorded as the answer's prompt.
    prompt: AnswerStage | None = None


class Replies:
    def __init__(self, words: Texts, zone_for: Callable[[str | None], tzinfo]) -> None:
        self.words = words
        self._zone_for = zone_for

    # -- small pieces ----------------------------------------------------------------------------

    def notice(self, result: Result, locale: str) -> str:
        """The short answer to a tap that changed nothing."""
        return self.words.render(_NOTICES.get(result, texts.TAP_NOT_USABLE), locale)

    def name(self, turn: Turn, locale: str) -> str:
        return self.words.name(turn.first_name, locale)

    def chip_label(self, chip: Chip, locale: str) -> str:
        """A default reason in the customer's language; a reason an admin named, as named."""
        default = TEXTS.get(f"reason_{chip.code}")
        if default is not None and chip.label == default.english:
            return self.words.render(default, locale)
        return chip.label

    def score_chosen(self, question: str | None, turn: Turn, locale: str) -> str:
        """The survey message once answered: its question, and the score without buttons."""
        chosen = self.words.render(texts.SCORE_CHOSEN, locale, score=turn.score, top=turn.top)
        return f"{question}\n\n{chosen}" if question else chosen

    def chips_chosen(self, turn: Turn, locale: str) -> str:
        """The apology, with the chips replaced by what was chosen."""
        chosen = [self.chip_label(chip, locale) for chip in turn.chips if chip.selected]
        summary = (
            self.words.render(
                texts.REASONS_CHOSEN, locale, reasons=self.words.listing(chosen, locale)
            )
            if chosen
            else self.words.render(texts.REASONS_NONE, locale)
        )
        return f"{self.apology(turn, locale)}\n\n{summary}"

    def apology(self, turn: Turn, locale: str) -> str:
        template = texts.APOLOGY_AT_LOCATION if turn.location else texts.APOLOGY
        return self.words.render(
            template, locale, name=self.name(turn, locale), location=turn.location or ""
        )

    def chips_keyboard(self, turn: Turn, locale: str) -> InlineKeyboardMarkup:
        chips = [
            ButtonChip(chip.reason_id, self.chip_label(chip, locale), chip.selected)
            for chip in turn.chips
        ]
        done = self.words.render(texts.BUTTON_DONE, locale)
        return reasons_keyboard(turn.answer_id or 0, chips, done)

    def deadline(self, when: datetime, turn: Turn, now: datetime, locale: str) -> str:
        """ "today by 15:00", "tomorrow by 09:00", "by Monday 12 January, 09:00" where the
        customer is."""
        zone = self._zone_for(turn.timezone)
        local, today = when.astimezone(zone), now.astimezone(zone).date()
        time = f"{local:%H:%M}"
        days = (local.date() - today).days
        if days <= 0:
            return self.words.render(texts.DEADLINE_TODAY, locale, time=time)
        if days == 1:
            return self.words.render(texts.DEADLINE_TOMORROW, locale, time=time)
        day = self.words.weekday_and_date(local, locale)
        return self.words.render(texts.DEADLINE_LATER, locale, day=day, time=time)

    def skipped(self, prompt_text: str | None, locale: str) -> str:
        done = self.words.render(texts.ANSWER_SKIPPED, locale)
        return f"{prompt_text}\n\n{done}" if prompt_text else done

    def contact_chosen(self, turn: Turn, locale: str) -> str:
        question = self.words.render(texts.ASK_CONTACT, locale, name=self.name(turn, locale))
        choice = texts.ANSWER_CONTACT_YES if turn.contact else texts.ANSWER_CONTACT_NO
        return f"{question}\n\n{self.words.render(choice, locale)}"

    # -- the next question -----------------------------------------------------------------------

    def next(self, turn: Turn, locale: str, now: datetime) -> list[Reply]:
        """What to send after a turn that moved the conversation on (or added to it)."""
        name = self.name(turn, locale)
        render = self.words.render
        replies: list[Reply] = []
        if turn.media_kind:
            kind = render(_MEDIA.get(turn.media_kind, texts.MEDIA_DOCUMENT), locale)
            replies.append(Reply(render(texts.COMMENT_MEDIA_KEPT, locale, name=name, kind=kind)))
        if turn.unsolicited and turn.stage is AnswerStage.DONE:
            return replies + self._unsolicited(turn, locale, now, thanked=bool(replies))
        if turn.added:
            if turn.stage in (AnswerStage.REASONS, AnswerStage.CONTACT):
                replies.append(Reply(render(texts.HINT_TAP_PLEASE, locale, name=name)))
            elif not replies:
                replies.append(Reply(render(texts.THANKS_FOR_COMMENT, locale, name=name)))
            return replies
        skip = self._skip_button(turn, locale)
        if turn.stage is AnswerStage.REASONS:
            replies.append(
                Reply(
                    self.apology(turn, locale),
                    self.chips_keyboard(turn, locale),
                    prompt=AnswerStage.REASONS,
                )
            )
        elif turn.stage is AnswerStage.COMMENT:
            if turn.band is ScoreBand.LOW:
                question = render(texts.ASK_COMMENT_LOW, locale, name=name)
            elif turn.band is ScoreBand.HIGH:
                question = render(texts.THANKS_HIGH, locale, name=name)
            else:
                question = render(texts.THANKS_MIDDLE, locale, name=name)
            replies.append(Reply(question, skip, prompt=AnswerStage.COMMENT))
        elif turn.stage is AnswerStage.CONTACT:
            replies.append(
                Reply(
                    render(texts.ASK_CONTACT, locale, name=name),
                    one_row(
                        step_button(
                            turn.answer_id or 0,
                            Step.CONTACT_YES,
                            render(texts.BUTTON_CONTACT_YES, locale),
                        ),
                        step_button(
                            turn.answer_id or 0,
                            Step.CONTACT_NO,
                            render(texts.BUTTON_CONTACT_NO, locale),
                        ),
                    ),
                    prompt=AnswerStage.CONTACT,
                )
            )
        elif turn.stage is AnswerStage.DONE:
            replies.extend(self._closing(turn, locale, now, commented=bool(turn.sentiment)))
        return replies

    def _closing(self, turn: Turn, locale: str, now: datetime, *, commented: bool) -> list[Reply]:
        render, name = self.words.render, self.name(turn, locale)
        if turn.band is ScoreBand.LOW:
            deadline = self.deadline(turn.deadline or now, turn, now, locale)
            template = texts.CLOSING_CONTACT if turn.contact else texts.CLOSING_NO_CONTACT
            return [Reply(render(template, locale, name=name, deadline=deadline))]
        if turn.sentiment is not None and is_negative(turn.sentiment) and turn.deadline:
            # Kind words in the score, hard ones in the comment: the team looks into it.
            deadline = self.deadline(turn.deadline, turn, now, locale)
            return [Reply(render(texts.CLOSING_NO_CONTACT, locale, name=name, deadline=deadline))]
        thanks = texts.THANKS_FOR_COMMENT if commented else texts.THANKS_FINAL
        replies = [Reply(render(thanks, locale, name=name))]
        if turn.band is ScoreBand.HIGH and turn.review_url:
            button = InlineKeyboardButton(
                text=render(texts.BUTTON_REVIEW, locale), url=turn.review_url
            )
            replies.append(
                Reply(
                    render(texts.REVIEW_INVITATION, locale),
                    InlineKeyboardMarkup(inline_keyboard=[[button]]),
                )
            )
        return replies

    def _unsolicited(self, turn: Turn, locale: str, now: datetime, *, thanked: bool) -> list[Reply]:
        render, name = self.words.render, self.name(turn, locale)
        replies: list[Reply] = []
        if turn.sentiment is not None and is_negative(turn.sentiment) and turn.deadline:
            deadline = self.deadline(turn.deadline, turn, now, locale)
            replies.append(
                Reply(render(texts.UNSOLICITED_SORRY, locale, name=name, deadline=deadline))
            )
        elif not thanked:
            replies.append(Reply(render(texts.UNSOLICITED_THANKS, locale, name=name)))
        if turn.survey_pending:
            replies.append(Reply(render(texts.HINT_TAP_PLEASE, locale, name=name)))
        return replies

    def _skip_button(self, turn: Turn, locale: str) -> InlineKeyboardMarkup:
        return one_row(
            step_button(
                turn.answer_id or 0, Step.SKIP, self.words.render(texts.BUTTON_SKIP, locale)
            )
        )
