"""The customer's conversation after a survey: score, then thanks or recovery, step by step.

    tap a score ─┬─ high or middle ─► comment? (Skip) ─► thanks (+ review link when high) ─► done
                 └─ low ─► apology + reason chips (Done) ─► comment? (Skip)
                                 ─► "may a manager contact you?" (Yes/No) ─► what happens next

This is DESIGN.md's service recovery: empathy and an apology by name, closed questions first
(chips), the customer's own words next, then the offer of a person and a promise with a time.

Every step is written as it happens (`Answer.stage` says what comes next), so a customer who
stops half-way still counts, a restart loses nothing, and a button from an earlier step is
recognised as stale. The service decides; handlers only turn its `Turn` into messages.

Text is read where it comes: a typed message is the comment when a comment is awaited (or when
the chips are showing: people often type instead of tapping), an addition to the answer they
just gave when it follows within `FOLLOW_ON`, and otherwise unsolicited feedback. Each comment is
classified (bot.sentiment) and may open or raise a case:

- a low score: a case at once (the customer may stop right after the tap);
- "contact me": the case becomes critical, first response due within SLA_CONTACT_REQUESTED;
- a high score with clearly negative words (mixed), a middle score with negative words, or
  negative unsolicited feedback: a case.

Cases are only marked here (`storage.case_repository`); routing them to staff is bot.cases.

Words that come without tapped reason chips (a comment after a high or middle score, unsolicited
feedback, a low score where the customer typed instead of tapping) get the reasons a learned
model suggests (`Learning.suggest_reasons`, bot.training), stored for the staff card. A comment
given with a score is a new label for that model's training (`Learning.label_added`).

Taps are checked against the database, never trusted: the survey or answer must belong to the
person tapping and be at the step the button is for.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.callbacks import SCORES
from bot.clock import Clock
from bot.sentiment import Classifier, ScoreBand, is_negative, overall
from bot.settings import Settings
from bot.texts import TEXTS
from storage.answer_repository import AnswerRepository, AnswerWithContext
from storage.case_repository import CaseMark, CaseRepository
from storage.models import (
    AnswerStage,
    CaseSeverity,
    CaseTrigger,
    Customer,
    Reason,
    SentimentLabel,
    SurveyScale,
    SurveyState,
)
from storage.reason_repository import ReasonRepository
from storage.repositories import CustomerRepository, TelegramProfile
from storage.survey_repository import SurveyRepository

__all__ = [
    "FOLLOW_ON",
    "ConversationPolicy",
    "ConversationService",
    "Media",
    "Result",
    "Turn",
    "score_band",
]

#: The reason chips offered until an admin changes them: DESIGN.md's common complaint reasons,
#: as (code, English label) from the ``reason_<code>`` texts, whose translations customers read.
DEFAULT_REASONS: tuple[tuple[str, str], ...] = tuple(
    (item.name.removeprefix("reason_"), item.english)
    for item in TEXTS.values()
    if item.name.startswith("reason_")
)

# A tap on a survey still recorded as scheduled is looked at again this often, this far apart.
_IN_FLIGHT_CHECKS = 20
_IN_FLIGHT_PAUSE = 0.05

#: A message this soon after the customer's last answer adds to it rather than starting anew.
FOLLOW_ON = timedelta(minutes=5)
#: How long an unanswered "anything to add?" keeps waiting for words.
COMMENT_WINDOW = timedelta(hours=48)
#: The stored comment is capped far above anything a person types (Telegram caps a message at
#: 4,096 characters; a long complaint arrives in several and is joined here).
COMMENT_MAX = 100_000

_HIGH_FROM = {SurveyScale.CSAT: 4, SurveyScale.NPS: 9}
_DEFAULT_LOW = {SurveyScale.CSAT: 3, SurveyScale.NPS: 6}
# The bottom of each scale: the angriest customers, a high-severity case.
_LOWEST = {SurveyScale.CSAT: 1, SurveyScale.NPS: 3}


class Result(enum.StrEnum):
    OK = "ok"
    ALREADY_ANSWERED = "already_answered"  # the survey has its answer
    CLOSED = "closed"  # the survey expired, failed or was skipped
    STEP_DONE = "step_done"  # a button of a step the conversation has left
    NOT_USABLE = "not_usable"  # forged, malformed, someone else's
    RELAY = "relay"  # words for the staff working on the customer's case: `Turn.case_id`


@dataclass(frozen=True, slots=True)
class Media:
    """A voice note, photo, video or file sent as (part of) a comment."""

    kind: str  # "voice", "photo", "video", "video_note", "audio", "document"
    file_id: str


@dataclass(frozen=True, slots=True)
class Chip:
    reason_id: int
    code: str
    label: str
    selected: bool


@dataclass(frozen=True, slots=True)
class Turn:
    """What happened, and what the customer should see next.

    ``stage`` is the step now waited for (DONE when finished); handlers ask its question.
    ``previous_prompt`` is the bot message whose buttons are now stale.
    """

    result: Result
    answer_id: int | None = None
    stage: AnswerStage | None = None
    band: ScoreBand | None = None
    score: int | None = None
    top: int | None = None
    first_name: str | None = None
    language: str | None = None
    timezone: str | None = None
    location: str | None = None
    chips: tuple[Chip, ...] = ()
    previous_prompt: int | None = None
    # The comment was a voice note, photo…: its kind, to thank for it.
    media_kind: str | None = None
    # A typed message added to an answer whose buttons still wait (the chips, Yes/No).
    added: bool = False
    unsolicited: bool = False
    survey_pending: bool = False  # a survey waits for a tap while they write
    contact: bool | None = None
    sentiment: SentimentLabel | None = None
    # When a manager will look into it (or contact them): the case's first-response time.
    deadline: datetime | None = None
    review_url: str = ""
    case_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.result is Result.OK


@dataclass(frozen=True, slots=True)
class ConversationPolicy:
    """The settings the conversation follows."""

    low_score: int | None = None  # LOW_SCORE, for `low_score_scale`
    low_score_scale: SurveyScale = SurveyScale.CSAT
    review_url: str = ""
    sla_first_response: timedelta = timedelta(hours=24)
    sla_contact_requested: timedelta = timedelta(hours=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConversationPolicy:
        return cls(
            low_score=settings.low_score,
            low_score_scale=SurveyScale(settings.survey_scale),
            review_url=settings.review_url,
            sla_first_response=settings.sla_first_response,
            sla_contact_requested=settings.sla_contact_requested,
        )

    def low_limit(self, scale: SurveyScale) -> int:
        """The highest low score of a scale. LOW_SCORE is set for the configured scale; a
        survey sent on the other scale (before SURVEY_SCALE changed) keeps that scale's
        default."""
        if self.low_score is not None and scale is self.low_score_scale:
            return self.low_score
        return _DEFAULT_LOW[scale]


def score_band(score: int, scale: SurveyScale, low_limit: int) -> ScoreBand:
    """Low up to ``low_limit``; high from 4 (1–5) or 9 (0–10, NPS promoters); middle between."""
    if score <= low_limit:
        return ScoreBand.LOW
    if score >= _HIGH_FROM[scale]:
        return ScoreBand.HIGH
    return ScoreBand.MIDDLE


def case_severity(trigger: CaseTrigger, score: int | None, scale: SurveyScale | None) -> str:
    """How urgent: a customer asking for contact is critical, the bottom of the scale high."""
    if trigger is CaseTrigger.CONTACT_REQUESTED:
        return CaseSeverity.CRITICAL
    if trigger is CaseTrigger.LOW_SCORE and score is not None and scale is not None:
        return CaseSeverity.HIGH if score <= _LOWEST[scale] else CaseSeverity.MEDIUM
    return CaseSeverity.MEDIUM


class CaseHooks(Protocol):
    """What the cases side wants to know, inside the conversation's transaction."""

    async def opened(self, session: AsyncSession, case_id: int, *, urgent: bool) -> None: ...

    async def changed(self, session: AsyncSession, case_id: int) -> None: ...


class Learning(Protocol):
    """What the learned models want from the conversation (bot.training)."""

    def suggest_reasons(self, text: str) -> Sequence[str]: ...

    async def label_added(self) -> object: ...


class ConversationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        classifier: Classifier,
        policy: ConversationPolicy,
        cases: CaseHooks | None = None,
        learning: Learning | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._classifier = classifier
        self.policy = policy
        self.cases = cases
        self.learning = learning

    # -- a score -------------------------------------------------------------------------------

    async def score(self, profile: TelegramProfile, survey_id: int, score: int) -> Turn:
        """A tap on a score button."""
        for _ in range(_IN_FLIGHT_CHECKS):
            turn = await self._score(profile, survey_id, score)
            if turn is not None:
                return turn
            # Telegram delivered the survey and the customer tapped before the sender had
            # recorded it as sent (a few milliseconds): wait for that record.
            await asyncio.sleep(_IN_FLIGHT_PAUSE)
        return Turn(Result.NOT_USABLE)

    async def _score(self, profile: TelegramProfile, survey_id: int, score: int) -> Turn | None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            found = await SurveyRepository(session).for_delivery(survey_id)
            if found is None or found.customer.telegram_user_id != profile.user_id:
                return Turn(Result.NOT_USABLE)
            survey, visit, customer = found.survey, found.visit, found.customer
            if score not in SCORES[survey.scale]:
                return Turn(Result.NOT_USABLE)
            if survey.state is SurveyState.ANSWERED:
                return Turn(Result.ALREADY_ANSWERED)
            if survey.state is SurveyState.SCHEDULED:
                return None  # on its way, or (if it stays so) a button that was forged
            if survey.state is not SurveyState.SENT:
                return Turn(Result.CLOSED)
            band = score_band(score, survey.scale, self.policy.low_limit(survey.scale))
            stage = AnswerStage.REASONS if band is ScoreBand.LOW else AnswerStage.COMMENT
            answers = AnswerRepository(session)
            answer_id = await answers.answer_survey(
                survey.id,
                customer_id=customer.id,
                scale=survey.scale,
                score=score,
                stage=stage,
                now=now,
                # Until words say otherwise, the score alone decides the sentiment.
                sentiment_label=overall(None, band),
            )
            if answer_id is None:  # a second tap that raced this one, and lost
                return Turn(Result.ALREADY_ANSWERED)
            deadline = None
            if band is ScoreBand.LOW:
                mark = await self._mark_case(
                    session, answer_id, customer.id, CaseTrigger.LOW_SCORE, score, survey.scale
                )
                deadline = mark.first_response_due_at
            # A new answer has no chips chosen yet: only the offered ones to read.
            chips = (
                await self._chips(session, answer_id, fresh=True) if band is ScoreBand.LOW else ()
            )
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=stage,
            band=band,
            score=score,
            top=max(SCORES[survey.scale]),
            chips=chips,
            location=visit.location,
            deadline=deadline,
            review_url=self.policy.review_url,
            **_person(customer),
        )

    # -- reasons -------------------------------------------------------------------------------

    async def toggle_reason(self, profile: TelegramProfile, answer_id: int, reason_id: int) -> Turn:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            answers = AnswerRepository(session)
            found = await self._own_answer(answers, profile, answer_id)
            if isinstance(found, Turn):
                return found
            if found.answer.stage is not AnswerStage.REASONS:
                return Turn(Result.STEP_DONE, answer_id=answer_id)
            offered = {reason.id for reason in await ReasonRepository(session).offered()}
            if reason_id not in offered:
                return Turn(Result.NOT_USABLE, answer_id=answer_id)
            await answers.toggle_reason(answer_id, reason_id)
            await answers.update(answer_id, now=now)
            chips = await self._chips(session, answer_id)
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=AnswerStage.REASONS,
            chips=chips,
            location=found.visit.location if found.visit else None,
            **_person(found.customer),
        )

    async def reasons_done(self, profile: TelegramProfile, answer_id: int) -> Turn:
        """Done under the chips: on to the comment."""
        return await self._advance(profile, answer_id, AnswerStage.REASONS, AnswerStage.COMMENT)

    # -- the comment ---------------------------------------------------------------------------

    async def skip_comment(self, profile: TelegramProfile, answer_id: int) -> Turn:
        return await self._advance(profile, answer_id, AnswerStage.COMMENT, None)

    async def message(
        self,
        profile: TelegramProfile,
        *,
        text: str | None = None,
        media: Media | None = None,
    ) -> Turn:
        """Words (or a voice note, photo…) the customer sent: a comment, an addition to their
        last answer, or unsolicited feedback; see the module docstring."""
        text = text.strip() if text else None
        turn = await self._message(profile, text, media)
        if text and turn.ok and turn.score is not None and self.learning is not None:
            await self.learning.label_added()  # a comment with a score: a new label
        return turn

    async def _message(
        self, profile: TelegramProfile, text: str | None, media: Media | None
    ) -> Turn:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            customers = CustomerRepository(session)
            # Nearly always a known customer: one read. (Name changes are taken at /start.)
            customer = await customers.by_telegram_id(profile.user_id)
            if customer is None:
                customer, _ = await customers.get_or_create_by_telegram(profile, now=now)
            answers = AnswerRepository(session)
            answer_id = await answers.latest_open(
                customer.id,
                since=now - COMMENT_WINDOW,
                stages=(AnswerStage.REASONS, AnswerStage.COMMENT),
            )
            if answer_id is None:
                # Nothing asked: while a case is being worked on, words go to its staff.
                case = await CaseRepository(session).active_with_card(customer.id)
                if case is not None:
                    return Turn(Result.RELAY, case_id=case.id, **_person(customer))
                answer_id = await answers.latest_open(
                    customer.id,
                    since=now - FOLLOW_ON,
                    stages=(AnswerStage.CONTACT, AnswerStage.DONE),
                )
            if answer_id is not None:
                turn = await self._comment(session, answer_id, text, media, now)
                if turn is not None:
                    return turn
            return await self._unsolicited(session, customer, text, media, now)

    # -- contact -------------------------------------------------------------------------------

    async def contact(self, profile: TelegramProfile, answer_id: int, wanted: bool) -> Turn:
        """Yes or No to "may a manager contact you?"; the end of a low-score conversation."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            answers = AnswerRepository(session)
            found = await self._own_answer(answers, profile, answer_id)
            if isinstance(found, Turn):
                return found
            if not await answers.move(
                answer_id,
                from_stage=AnswerStage.CONTACT,
                to_stage=AnswerStage.DONE,
                now=now,
                contact_requested=wanted,
            ):
                return Turn(Result.STEP_DONE, answer_id=answer_id)
            answer = found.answer
            trigger = CaseTrigger.CONTACT_REQUESTED if wanted else CaseTrigger.LOW_SCORE
            mark = await self._mark_case(
                session, answer_id, found.customer.id, trigger, answer.score, answer.scale
            )
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=AnswerStage.DONE,
            band=ScoreBand.LOW,
            contact=wanted,
            deadline=mark.first_response_due_at,
            previous_prompt=answer.prompt_message_id,
            location=found.visit.location if found.visit else None,
            **_person(found.customer),
        )

    async def ensure_reasons(self) -> int:
        """Put in the default reason chips if there are none yet (first start)."""
        async with self._sessions.begin() as session:
            return await ReasonRepository(session).ensure_defaults(
                DEFAULT_REASONS, now=self._clock.now()
            )

    async def prompted(self, answer_id: int, stage: AnswerStage, message_id: int) -> None:
        """The bot asked the question of ``stage`` in message ``message_id``."""
        async with self._sessions.begin() as session:
            await AnswerRepository(session).set_prompt(
                answer_id, stage=stage, message_id=message_id
            )

    # -- inside --------------------------------------------------------------------------------

    async def _advance(
        self,
        profile: TelegramProfile,
        answer_id: int,
        from_stage: AnswerStage,
        to_stage: AnswerStage | None,
        **values: object,
    ) -> Turn:
        """Move on by a button; ``to_stage`` None: the step after the comment."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            answers = AnswerRepository(session)
            found = await self._own_answer(answers, profile, answer_id)
            if isinstance(found, Turn):
                return found
            answer = found.answer
            band = self._band_of(answer.score, answer.scale)
            target = to_stage or _after_comment(band)
            if not await answers.move(
                answer_id, from_stage=from_stage, to_stage=target, now=now, **values
            ):
                return Turn(Result.STEP_DONE, answer_id=answer_id)
            case = await CaseRepository(session).for_answer(answer_id)
            if case is not None and self.cases is not None:
                await self.cases.changed(session, case.id)
            chips = (
                await self._chips(session, answer_id) if from_stage is AnswerStage.REASONS else ()
            )
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=target,
            band=band,
            score=answer.score,
            chips=chips,
            previous_prompt=answer.prompt_message_id,
            location=found.visit.location if found.visit else None,
            review_url=self.policy.review_url,
            **_person(found.customer),
        )

    async def _comment(
        self,
        session: AsyncSession,
        answer_id: int,
        text: str | None,
        media: Media | None,
        now: datetime,
    ) -> Turn | None:
        """Add the words to the answer; None if it is not an answer words can go to."""
        answers = AnswerRepository(session)
        found = await answers.with_context(answer_id)
        if found is None:
            return None
        answer = found.answer
        if media is not None and answer.media_file_id is not None:
            return None  # one voice note or photo per answer: a second one stands on its own
        band = self._band_of(answer.score, answer.scale)
        stage = answer.stage
        values = self._with_words(answer.comment, text, media, band)
        if text:
            codes = self._read_reasons(values.get("comment"))
            # The chips tapped are looked up only when there is something to store or clear:
            # with no reason model (the usual case) a comment costs no extra query.
            if (codes or answer.suggested_reasons) and not await answers.chosen_reasons(answer_id):
                values["suggested_reasons"] = await self._offered(session, codes)
        # While the chips show, typed words are the comment we would have asked for next.
        added = stage not in (AnswerStage.REASONS, AnswerStage.COMMENT)
        target = stage if added else _after_comment(band)
        if not added:
            if not await answers.move(
                answer_id, from_stage=stage, to_stage=target, now=now, **values
            ):
                return None
        else:
            await answers.update(answer_id, now=now, **values)
        label = values.get("sentiment_label")
        deadline = await self._case_for_words(session, found, band, label)
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=target,
            band=band,
            score=answer.score,
            previous_prompt=None if added else answer.prompt_message_id,
            media_kind=media.kind if media else None,
            added=added,
            unsolicited=answer.unsolicited,
            sentiment=label if isinstance(label, SentimentLabel) else None,
            deadline=deadline,
            location=found.visit.location if found.visit else None,
            review_url=self.policy.review_url,
            **_person(found.customer),
        )

    async def _unsolicited(
        self,
        session: AsyncSession,
        customer: Customer,
        text: str | None,
        media: Media | None,
        now: datetime,
    ) -> Turn:
        answers = AnswerRepository(session)
        values = self._with_words(None, text, media, None)
        if text:
            codes = self._read_reasons(values.get("comment"))
            values["suggested_reasons"] = await self._offered(session, codes)
        answer_id = await answers.add_unsolicited(customer.id, now=now, **values)
        label = values.get("sentiment_label")
        deadline = None
        if isinstance(label, SentimentLabel) and is_negative(label):
            mark = await self._mark_case(
                session, answer_id, customer.id, CaseTrigger.UNSOLICITED, None, None
            )
            deadline = mark.first_response_due_at
        return Turn(
            Result.OK,
            answer_id=answer_id,
            stage=AnswerStage.DONE,
            unsolicited=True,
            media_kind=media.kind if media else None,
            survey_pending=await answers.has_pending_survey(customer.id),
            sentiment=label if isinstance(label, SentimentLabel) else None,
            deadline=deadline,
            **_person(customer),
        )

    def _with_words(
        self, comment: str | None, text: str | None, media: Media | None, band: ScoreBand | None
    ) -> dict[str, object]:
        """The answer's columns after adding ``text`` / ``media``, re-classified."""
        values: dict[str, object] = {}
        if text:
            joined = f"{comment}\n\n{text}" if comment else text
            values["comment"] = joined[:COMMENT_MAX]
        if media is not None:
            values["media_kind"] = media.kind
            values["media_file_id"] = media.file_id
        words = values.get("comment", comment)
        if isinstance(words, str) and words:
            sentiment = self._classifier.classify(words)
            values["sentiment_label"] = overall(sentiment, band)
            values["sentiment_score"] = sentiment.score
            values["sentiment_language"] = sentiment.language
        elif band is None:
            values["sentiment_label"] = SentimentLabel.UNKNOWN
        return values

    def _read_reasons(self, words: object) -> Sequence[str]:
        """The reason codes the learned model reads in ``words`` ([] without a model)."""
        if self.learning is None or not isinstance(words, str) or not words:
            return []
        return self.learning.suggest_reasons(words)

    async def _offered(self, session: AsyncSession, codes: Sequence[str]) -> list[str] | None:
        """``codes`` among the reasons offered now (not hidden); None when none is."""
        if not codes:
            return None
        offered = {reason.code for reason in await ReasonRepository(session).offered()}
        return [code for code in codes if code in offered] or None

    async def _case_for_words(
        self,
        session: AsyncSession,
        found: AnswerWithContext,
        band: ScoreBand | None,
        label: object,
    ) -> datetime | None:
        """Open (or raise) a case when the words are negative though the score was not low;
        the case's first-response time if the answer has a case."""
        answer, customer = found.answer, found.customer
        trigger: CaseTrigger | None = None
        if isinstance(label, SentimentLabel) and is_negative(label):
            if band is None:
                trigger = CaseTrigger.UNSOLICITED
            elif band is ScoreBand.HIGH:
                trigger = CaseTrigger.MIXED
            elif band is ScoreBand.MIDDLE:
                trigger = CaseTrigger.NEGATIVE_COMMENT
        if trigger is not None:
            mark = await self._mark_case(
                session, answer.id, customer.id, trigger, answer.score, answer.scale
            )
            return mark.first_response_due_at
        case = await CaseRepository(session).for_answer(answer.id)
        if case is None:
            return None
        if self.cases is not None:
            await self.cases.changed(session, case.id)
        return case.first_response_due_at

    async def _mark_case(
        self,
        session: AsyncSession,
        answer_id: int,
        customer_id: int,
        trigger: CaseTrigger,
        score: int | None,
        scale: SurveyScale | None,
    ) -> CaseMark:
        now = self._clock.now()
        sla = (
            self.policy.sla_contact_requested
            if trigger is CaseTrigger.CONTACT_REQUESTED
            else self.policy.sla_first_response
        )
        mark = await CaseRepository(session).mark(
            answer_id=answer_id,
            customer_id=customer_id,
            trigger=trigger,
            severity=CaseSeverity(case_severity(trigger, score, scale)),
            first_response_due_at=now + sla,
            now=now,
        )
        if self.cases is not None:
            urgent = trigger is CaseTrigger.CONTACT_REQUESTED
            if mark.created or urgent:
                await self.cases.opened(session, mark.case_id, urgent=urgent)
            if not mark.created:
                await self.cases.changed(session, mark.case_id)
        return mark

    async def _own_answer(
        self, answers: AnswerRepository, profile: TelegramProfile, answer_id: int
    ) -> AnswerWithContext | Turn:
        """The answer, if it is the tapping person's; else a NOT_USABLE turn."""
        found = await answers.with_context(answer_id)
        if found is None or found.customer.telegram_user_id != profile.user_id:
            return Turn(Result.NOT_USABLE)
        return found

    async def _chips(
        self, session: AsyncSession, answer_id: int, *, fresh: bool = False
    ) -> tuple[Chip, ...]:
        """The chips to show; ``fresh``: the answer was just made, none is chosen."""
        chosen: list[Reason] = (
            [] if fresh else await AnswerRepository(session).chosen_reasons(answer_id)
        )
        offered: list[Reason] = await ReasonRepository(session).offered()
        chosen_ids = {reason.id for reason in chosen}
        # A chosen reason hidden meanwhile still shows, so the customer sees their choice.
        shown = {reason.id for reason in offered}
        extra = [reason for reason in chosen if reason.id not in shown]
        return tuple(
            Chip(reason.id, reason.code, reason.label, reason.id in chosen_ids)
            for reason in [*offered, *extra]
        )

    def _band_of(self, score: int | None, scale: SurveyScale | None) -> ScoreBand | None:
        if score is None or scale is None:
            return None
        return score_band(score, scale, self.policy.low_limit(scale))


def _after_comment(band: ScoreBand | None) -> AnswerStage:
    return AnswerStage.CONTACT if band is ScoreBand.LOW else AnswerStage.DONE


def _person(customer: Customer) -> dict[str, object]:
    return {
        "first_name": customer.first_name,
        "language": customer.language,
        "timezone": customer.timezone,
    }
