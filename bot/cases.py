"""Cases: every unhappy customer in front of a person until the loop is closed.

A case is opened by the conversation (bot.conversation marks it and schedules `CASE_POST`).
From there everything is a job in the queue, so it survives restarts:

    CASE_POST      route the case (bot.staffchats.Routing), open its forum topic (forum
                   supergroups) or post its card (plain groups: the card's reply thread is the
                   case), attach the customer's voice note or photo, arm the SLA timers.
                   No staff chat at all: the admins get the card privately.
    CASE_REFRESH   the card is edited to show what changed (reasons, comment, contact, state).
    CASE_SLA       at 80 % of the first-response and resolution times a reminder in the thread;
                   at the deadline a notice to ESCALATION_CHAT (or privately to the admins).
    CASE_FOLLOWUP  FOLLOWUP_DELAY after Resolve, inside allowed hours: "Was this put right?"

Cards are paced per staff chat (`CardPacer`): Telegram allows 20 messages a minute in a group,
and a card job that waited for the rate limiter would hold a scheduler slot for minutes, starving
survey sends. A card whose chat is busy is re-scheduled for its turn instead; when a chat's
backlog passes a minute, one digest lists the waiting cases and each card follows in turn.

Staff act with the card's buttons (Take, Resolve → what was offered, Reopen, Full text,
Sentiment… → their own reading of the customer's words, a label the learned model trains on)
and by writing in the case's thread: a message there goes to the customer from the bot, under
the business's name; one starting with ``//`` stays in the back room. While a case is active, what
the customer writes comes back into its thread. Every action is audited.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import InlineKeyboardButton, Message, ReplyParameters
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.callbacks import FollowupCallback, one_row
from bot.case_card import card_keyboard, card_text, offer_keyboard, topic_name
from bot.clock import Clock
from bot.policy import next_allowed
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.sla import due_at, reminder_at
from bot.text_editor import MESSAGE_LIMIT, telegram_length
from bot.texts import Texts
from bot.values import QuietHours
from storage.answer_repository import AnswerRepository
from storage.case_repository import ACTIVE, CaseFile, CaseRepository
from storage.jobs import ClaimedJob, JobQueue
from storage.model_repository import CORRECTABLE, CORRECTION_ACTION
from storage.models import CaseOffer, CaseState, MessageDirection, SentimentLabel, StaffChat
from storage.repositories import AuditRepository
from storage.staff_repository import StaffRepository

log = logging.getLogger(__name__)

CASE_POST = "case_post"
CASE_REFRESH = "case_refresh"
CASE_SLA = "case_sla"
CASE_FOLLOWUP = "case_followup"

#: A case's card waits this long after the low-score tap, so that it usually shows the reasons
#: and the comment, not an empty case that is edited a moment later. "Contact me" posts at once.
CARD_SETTLE = timedelta(seconds=20)

BACK_ROOM = "//"


def post_key(case_id: int) -> str:
    return f"case:{case_id}:post"


def refresh_key(case_id: int) -> str:
    return f"case:{case_id}:refresh"


class RoutingPort(Protocol):
    async def choose(
        self, session: AsyncSession, *, location: str | None, reason_codes: Any, severity: Any
    ) -> StaffChat | None: ...


class AccessPort(Protocol):
    async def may_act(self, chat_id: int, user_id: int) -> bool: ...


class LabelHook(Protocol):
    async def label_added(self) -> object: ...


class AdminsPort(Protocol):
    async def admins(self) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class CasePolicy:
    sla_resolution: timedelta = timedelta(days=3)
    # Working-time calculator for the resolution deadline (bot.sla.WorkingTime), or None.
    working: Any = None
    followup_delay: timedelta = timedelta(hours=24)
    quiet_hours: QuietHours | None = None
    escalation_chat: int | None = None
    zone: tzinfo | None = None  # the business's zone, for times on cards

    @classmethod
    def from_settings(cls, settings: Settings) -> CasePolicy:
        return cls(
            sla_resolution=settings.sla_resolution,
            working=settings.working_time,
            followup_delay=settings.followup_delay,
            quiet_hours=settings.quiet_hours,
            escalation_chat=settings.escalation_chat,
            zone=settings.zone,
        )


# ---------------------------------------------------------------------------------- pacing


#: While a backlog lasts, a further digest (of the cases that arrived since) at most this often.
DIGEST_EVERY = 600.0


class CardPacer:
    """Turns for messages in each staff chat, 18 a minute.

    Telegram allows 20 a minute in a group and the rate limiter lets 19 through; pacing cards a
    little slower than the limiter leaves room for the digests and the notes that share the
    chat, so a card is never held in the limiter for long and a small delay wears off instead
    of carrying over to every later card.

    In memory: after a restart the first cards go at once and the rate limiter absorbs the
    overlap. Several processes would share this through Redis.
    """

    def __init__(
        self, per_minute: float = 18.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.spacing = 60.0 / per_minute
        self._monotonic = monotonic
        self._next: dict[int, float] = {}
        self._waiting: dict[int, deque[tuple[float, int]]] = {}
        # Per chat: the waiting cases a digest has listed already, and when the last went.
        self._listed: dict[int, set[int]] = {}
        self._last_digest: dict[int, float] = {}

    def reserve(self, chat_id: int, case_id: int) -> float:
        """A turn for a card: seconds from now until it may go (0: now)."""
        now = self._monotonic()
        turn = max(now, self._next.get(chat_id, now))
        self._next[chat_id] = turn + self.spacing
        waiting = self._drop_past(chat_id, now)
        if turn > now:
            waiting.append((turn, case_id))
        return turn - now

    def take_extra(self, chat_id: int) -> None:
        """A message outside the card turns (a digest) used one of the chat's turns."""
        now = self._monotonic()
        self._next[chat_id] = max(now, self._next.get(chat_id, now)) + self.spacing

    def digest_due(self, chat_id: int) -> list[int] | None:
        """The waiting cases no digest has listed yet, once they are a minute's worth of turns:
        a digest when a backlog passes a minute, and, while it lasts, another at most every
        `DIGEST_EVERY` seconds for the cases that arrived since (a digest a minute would itself
        crowd the chat)."""
        now = self._monotonic()
        waiting = self._drop_past(chat_id, now)
        listed = self._listed.setdefault(chat_id, set())
        unlisted = [case_id for _, case_id in waiting if case_id not in listed]
        if len(unlisted) < self.per_minute:
            return None
        if listed and now - self._last_digest.get(chat_id, -math.inf) < DIGEST_EVERY:
            return None
        listed.update(unlisted)
        self._last_digest[chat_id] = now
        return unlisted

    def _drop_past(self, chat_id: int, now: float) -> deque[tuple[float, int]]:
        waiting = self._waiting.setdefault(chat_id, deque())
        listed = self._listed.get(chat_id)
        while waiting and waiting[0][0] <= now:
            _, case_id = waiting.popleft()
            if listed is not None:
                listed.discard(case_id)
        return waiting


# ---------------------------------------------------------------------------------- the service


class CaseService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        clock: Clock,
        bot: Bot,
        words: Texts,
        *,
        routing: RoutingPort,
        access: AccessPort,
        admins: AdminsPort,
        policy: CasePolicy,
        zone_for: Callable[[str | None], tzinfo],
        pacer: CardPacer | None = None,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._clock = clock
        self._bot = bot
        self._words = words
        self._routing = routing
        self._access = access
        self._admins = admins
        self.policy = policy
        self._zone_for = zone_for
        self.pacer = pacer or CardPacer()
        # Told of each staff correction of a sentiment: a new label (bot.training).
        self.learning: LabelHook | None = None

    def register(self, scheduler: Scheduler) -> None:
        scheduler.register(CASE_POST, self.handle_post)
        scheduler.register(CASE_REFRESH, self.handle_refresh)
        scheduler.register(CASE_SLA, self.handle_sla)
        scheduler.register(CASE_FOLLOWUP, self.handle_followup)

    # -- posting -----------------------------------------------------------------------------

    async def handle_post(self, job: ClaimedJob) -> str:
        return await self.post(int(job.payload["case_id"]), turn=bool(job.payload.get("turn")))

    async def post(self, case_id: int, *, turn: bool = False) -> str:
        """Route the case and post its card (see the module docstring); what happened."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            file = await CaseRepository(session).file(case_id)
            if file is None or file.case.card_message_id is not None:
                return "nothing"
            chat = file.staff_chat
            if chat is None or not chat.active:
                chat = await self._routing.choose(
                    session,
                    location=file.visit.location if file.visit else None,
                    reason_codes=[reason.code for reason in file.reasons],
                    severity=file.case.severity,
                )
        if chat is None:
            await self._tell_admins(file, now)
            return "admins"
        if not turn:
            wait = self.pacer.reserve(chat.chat_id, case_id)
            waiting = self.pacer.digest_due(chat.chat_id)
            if waiting:
                await self._digest(chat, waiting)
            if wait > 0.5:
                # Its turn comes later: free this worker and come back then.
                await self._jobs.schedule(
                    CASE_POST,
                    now + timedelta(seconds=wait),
                    {"case_id": case_id, "turn": True},
                    dedupe_key=f"{post_key(case_id)}@turn",
                )
                return "queued"
        try:
            await self._post_card(file, chat, now)
        except TelegramForbiddenError:
            # The bot was removed from the chat: stop routing there and route this case again.
            async with self._sessions.begin() as session:
                await StaffRepository(session).deactivate(chat.chat_id)
                await audit(
                    session, now, "staff_chat.bot_left", target=f"staff_chat:{chat.chat_id}"
                )
            log.warning("Staff chat %d refused the card of case %d: deactivated", chat.id, case_id)
            return await self.post(case_id, turn=True)
        return "posted"

    async def _post_card(self, file: CaseFile, chat: StaffChat, now: datetime) -> None:
        thread_id = None
        if chat.is_forum:
            topic = await self._bot.create_forum_topic(chat.chat_id, topic_name(file))
            thread_id = topic.message_thread_id
        zone = self._zone()
        card = await self._bot.send_message(
            chat.chat_id,
            card_text(file, zone, now),
            message_thread_id=thread_id,
            reply_markup=card_keyboard(file),
        )
        async with self._sessions.begin() as session:
            await CaseRepository(session).posted(
                file.case.id,
                staff_chat_id=chat.id,
                thread_id=thread_id,
                card_message_id=card.message_id,
                now=now,
            )
            await self._arm_sla(session, file, now)
            await audit(
                session, now, "case.posted", target=f"case:{file.case.id}", new=chat.chat_id
            )
        if file.answer is not None and file.answer.media_file_id and file.answer.media_kind:
            await self._send_media(
                chat.chat_id,
                file.answer.media_kind,
                file.answer.media_file_id,
                thread_id,
                card.message_id,
            )
        log.info("Case %d posted to staff chat %d", file.case.id, chat.id)

    async def _digest(self, chat: StaffChat, waiting: list[int]) -> None:
        lines = [f"{len(waiting)} cases are waiting to be posted here; each card follows in turn:"]
        lines += [f"• case #{case_id}" for case_id in waiting[:60]]
        if len(waiting) > 60:
            lines.append(f"… and {len(waiting) - 60} more")
        self.pacer.take_extra(chat.chat_id)
        with suppress(TelegramBadRequest, TelegramForbiddenError):
            await self._bot.send_message(chat.chat_id, "\n".join(lines))

    async def _tell_admins(self, file: CaseFile, now: datetime) -> None:
        text = (
            "No staff chat is registered, so this case comes to you. Add the bot to your staff "
            "group and send /staff_here there.\n\n" + card_text(file, self._zone(), now)
        )
        for admin in await self._admins.admins():
            with suppress(TelegramBadRequest, TelegramForbiddenError):
                await self._bot.send_message(admin, text)
        async with self._sessions.begin() as session:
            await audit(session, now, "case.to_admins", target=f"case:{file.case.id}")

    async def opened(self, session: AsyncSession, case_id: int, *, urgent: bool) -> None:
        """A case was opened (or became urgent): post its card after `CARD_SETTLE`, or now."""
        now = self._clock.now()
        await self._jobs.ensure_due(
            CASE_POST,
            now if urgent else now + CARD_SETTLE,
            {"case_id": case_id},
            dedupe_key=post_key(case_id),
            session=session,
        )

    # -- refreshing the card -----------------------------------------------------------------

    async def changed(self, session: AsyncSession, case_id: int) -> None:
        """Something on the card changed: edit it soon (inside the caller's transaction). A
        card not posted yet will show the change when it is."""
        if not await CaseRepository(session).has_card(case_id):
            return
        await self._jobs.ensure_due(
            CASE_REFRESH,
            self._clock.now(),
            {"case_id": case_id},
            dedupe_key=refresh_key(case_id),
            session=session,
        )

    async def handle_refresh(self, job: ClaimedJob) -> str:
        return await self.refresh(int(job.payload["case_id"]))

    async def refresh(self, case_id: int) -> str:
        async with self._sessions() as session:
            file = await CaseRepository(session).file(case_id)
        if file is None or file.staff_chat is None or file.case.card_message_id is None:
            return "nothing"
        try:
            await self._bot.edit_message_text(
                card_text(file, self._zone(), self._clock.now()),
                chat_id=file.staff_chat.chat_id,
                message_id=file.case.card_message_id,
                reply_markup=card_keyboard(file),
            )
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                log.info("Card of case %d not edited: %s", case_id, error.message)
            return "unchanged"
        return "refreshed"

    # -- staff actions ---------------------------------------------------------------------------

    async def may_act(self, case_id: int, chat_id: int, user_id: int) -> CaseFile | None:
        """The case, if ``user_id`` may act on it from chat ``chat_id``; else None."""
        async with self._sessions() as session:
            file = await CaseRepository(session).file(case_id)
        if file is None or file.staff_chat is None or file.staff_chat.chat_id != chat_id:
            return None
        if not await self._access.may_act(chat_id, user_id):
            return None
        return file

    async def take(self, file: CaseFile, user_id: int, name: str) -> bool:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            taken = await CaseRepository(session).take(
                file.case.id, user_id=user_id, name=name, now=now
            )
            if taken:
                await audit(
                    session,
                    now,
                    "case.taken",
                    actor=(user_id, name),
                    target=f"case:{file.case.id}",
                    new=name,
                )
                await self.changed(session, file.case.id)
        return taken

    async def ask_offer(self, file: CaseFile, name: str) -> None:
        """Resolve, step one: what was offered?"""
        await self._to_thread(
            file,
            f"{name} is resolving case #{file.case.id}. Was anything extra offered to put it "
            "right?",
            reply_markup=offer_keyboard(file.case.id),
        )

    async def resolve(
        self, file: CaseFile, user_id: int, name: str, offer: CaseOffer, prompt_message_id: int
    ) -> bool:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            repository = CaseRepository(session)
            if not await repository.resolve(file.case.id, user_id=user_id, offer=offer, now=now):
                return False
            # A reply to the prompt is the resolution note.
            await repository.add_message(
                file.case.id,
                MessageDirection.INTERNAL,
                now=now,
                author_user_id=user_id,
                text=f"resolved: {offer.value}",
                staff_chat_id=file.staff_chat.id if file.staff_chat else None,
                staff_message_id=prompt_message_id,
            )
            await audit(
                session,
                now,
                "case.resolved",
                actor=(user_id, name),
                target=f"case:{file.case.id}",
                new=offer.value,
            )
            await self._schedule_followup(session, file, now)
            await self.changed(session, file.case.id)
        return True

    async def reopen(self, file: CaseFile, user_id: int | None, name: str | None) -> bool:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            reopened = await CaseRepository(session).reopen(file.case.id, now=now)
            if reopened:
                actor = (user_id, name) if user_id is not None else None
                await audit(
                    session, now, "case.reopened", actor=actor, target=f"case:{file.case.id}"
                )
                await self.changed(session, file.case.id)
        return reopened

    async def correct_sentiment(
        self, file: CaseFile, user_id: int, name: str, label: SentimentLabel
    ) -> bool:
        """Staff read the case's sentiment differently from the bot: their label is kept beside
        the bot's, audited, shown on the card, and is a new label for the learned model (the
        strongest there is). False when it already was their label."""
        answer = file.answer
        if answer is None or label not in CORRECTABLE:
            return False
        now = self._clock.now()
        async with self._sessions.begin() as session:
            corrected = await AnswerRepository(session).correct_sentiment(answer.id, label)
            if corrected:
                before = answer.sentiment_corrected or answer.sentiment_label
                await audit(
                    session,
                    now,
                    CORRECTION_ACTION,
                    actor=(user_id, name),
                    target=f"case:{file.case.id}",
                    old=before.value if before is not None else None,
                    new=label.value,
                )
            await self.changed(session, file.case.id)  # the card shows it, buttons back
        if corrected and self.learning is not None:
            await self.learning.label_added()
        return corrected

    async def full_text(self, file: CaseFile) -> None:
        comment = (file.answer.comment if file.answer else None) or ""
        for piece in _pieces(comment, MESSAGE_LIMIT):
            await self._to_thread(file, piece)

    # -- messages between the thread and the customer ------------------------------------------

    async def case_of_staff_message(self, message: Message) -> CaseFile | None:
        """The case a message in a staff chat belongs to: its topic, or a reply to its card or
        to one of its messages."""
        async with self._sessions() as session:
            repository = CaseRepository(session)
            chat = await session.scalar(
                select(StaffChat.id).where(StaffChat.chat_id == message.chat.id)
            )
            if chat is None:
                return None
            case = None
            if message.is_topic_message and message.message_thread_id is not None:
                case = await repository.in_thread(chat, message.message_thread_id)
            if case is None and message.reply_to_message is not None:
                case = await repository.for_staff_message(chat, message.reply_to_message.message_id)
            return await repository.file(case.id) if case is not None else None

    async def from_staff(self, file: CaseFile, message: Message) -> str:
        """A staff message in the case's thread: a note, the resolution note, or a message for
        the customer. What happened."""
        now = self._clock.now()
        author = message.from_user
        if author is None or file.staff_chat is None:
            return "ignored"
        if not await self._access.may_act(file.staff_chat.chat_id, author.id):
            return "not_allowed"
        text = message.text or message.caption
        if (text or "").startswith(BACK_ROOM) or self._is_note_reply(file, message):
            async with self._sessions.begin() as session:
                repository = CaseRepository(session)
                await repository.add_message(
                    file.case.id,
                    MessageDirection.INTERNAL,
                    now=now,
                    author_user_id=author.id,
                    text=text,
                    staff_chat_id=file.staff_chat.id,
                    staff_message_id=message.message_id,
                )
                if self._is_note_reply(file, message) and text and not text.startswith(BACK_ROOM):
                    await repository.note(file.case.id, text, now=now)
                    await audit(
                        session,
                        now,
                        "case.note",
                        actor=(author.id, author.full_name),
                        target=f"case:{file.case.id}",
                    )
                    return "note"
            return "back_room"
        customer = file.customer
        if customer is None or customer.telegram_user_id is None:
            await self._to_thread(
                file, "This customer erased their data: messages can no longer reach them."
            )
            return "erased"
        locale = self._words.locale_for(customer.language)
        try:
            if message.text:
                sent = await self._bot.send_message(
                    customer.telegram_user_id,
                    self._words.render(texts.MESSAGE_FROM_BUSINESS, locale, message=message.text),
                )
                sent_id = sent.message_id
            else:
                copied = await self._bot.copy_message(
                    customer.telegram_user_id, message.chat.id, message.message_id
                )
                sent_id = copied.message_id
        except TelegramForbiddenError:
            await self._to_thread(file, "Not delivered: the customer has blocked the bot.")
            return "unreachable"
        async with self._sessions.begin() as session:
            repository = CaseRepository(session)
            await repository.add_message(
                file.case.id,
                MessageDirection.STAFF_TO_CUSTOMER,
                now=now,
                author_user_id=author.id,
                text=message.text or message.caption,
                media_kind=_media_kind(message),
                staff_chat_id=file.staff_chat.id,
                staff_message_id=message.message_id,
                customer_message_id=sent_id,
            )
            first = await repository.responded(file.case.id, now=now)
            if file.case.state in (CaseState.OPEN, CaseState.REOPENED):
                await repository.take(
                    file.case.id, user_id=author.id, name=author.full_name, now=now
                )
            await audit(
                session,
                now,
                "case.replied",
                actor=(author.id, author.full_name),
                target=f"case:{file.case.id}",
            )
            if first or file.case.state is not CaseState.TAKEN:
                await self.changed(session, file.case.id)
        return "relayed"

    async def from_customer(self, case_id: int, message: Message) -> bool:
        """What the customer wrote while their case is active goes into its thread."""
        now = self._clock.now()
        async with self._sessions() as session:
            file = await CaseRepository(session).file(case_id)
        if file is None or file.staff_chat is None:
            return False
        name = (file.customer.first_name if file.customer else None) or "Customer"
        caption = f"{name}: {message.caption}" if message.caption else name
        # A customer's message may fill Telegram's limit by itself; with their name in front it
        # would be refused, and the words lost to the staff. What does not fit follows.
        overflow = ""
        if telegram_length(caption) > MAX_CAPTION:
            caption, overflow = name, f"{name}: {message.caption}"
        if message.text:
            sent = None
            for piece in _pieces(f"{name}: {message.text}", MESSAGE_LIMIT):
                posted = await self._to_thread(file, piece)
                sent = sent or posted
        else:
            sent = await self._bot.copy_message(
                file.staff_chat.chat_id,
                message.chat.id,
                message.message_id,
                message_thread_id=file.case.thread_id,
                reply_parameters=self._reply_to_card(file),
                caption=caption,
            )
            for piece in _pieces(overflow, MESSAGE_LIMIT):
                await self._to_thread(file, piece)
        async with self._sessions.begin() as session:
            await CaseRepository(session).add_message(
                file.case.id,
                MessageDirection.CUSTOMER_TO_STAFF,
                now=now,
                author_user_id=message.from_user.id if message.from_user else None,
                text=message.text or message.caption,
                media_kind=_media_kind(message),
                staff_chat_id=file.staff_chat.id,
                staff_message_id=sent.message_id if sent else None,
                customer_message_id=message.message_id,
            )
        return True

    async def edited_by_staff(self, file: CaseFile, message: Message) -> None:
        await self._to_thread(
            file,
            "Edits are not passed on: the customer keeps the first version. Send a new message "
            "to correct it.",
            reply_to=message.message_id,
        )

    # -- follow-up -----------------------------------------------------------------------------

    async def handle_followup(self, job: ClaimedJob) -> str:
        return await self.followup(int(job.payload["case_id"]))

    async def followup(self, case_id: int) -> str:
        now = self._clock.now()
        async with self._sessions() as session:
            file = await CaseRepository(session).file(case_id)
        if file is None or file.case.state is not CaseState.RESOLVED:
            return "nothing"
        customer = file.customer
        if customer is None or customer.telegram_user_id is None or customer.opted_out_at:
            return "nothing"
        locale = self._words.locale_for(customer.language)
        name = self._words.name(customer.first_name, locale)
        keyboard = one_row(
            _followup_button(case_id, True, self._words.render(texts.BUTTON_FOLLOWUP_YES, locale)),
            _followup_button(case_id, False, self._words.render(texts.BUTTON_FOLLOWUP_NO, locale)),
        )
        async with self._sessions.begin() as session:
            if not await CaseRepository(session).followup_sent(case_id, now=now):
                return "nothing"
        try:
            await self._bot.send_message(
                customer.telegram_user_id,
                self._words.render(texts.FOLLOWUP_ASK, locale, name=name),
                reply_markup=keyboard,
            )
        except TelegramForbiddenError:
            return "unreachable"
        except Exception:
            # Not sent as far as we know: free the mark so that the job's retry asks again.
            # (Marked first, like the survey reminder: a lost question beats a doubled one.)
            async with self._sessions.begin() as session:
                await CaseRepository(session).followup_unsent(case_id, now=self._clock.now())
            raise
        return "asked"

    async def followup_answer(self, case_id: int, user_id: int, put_right: bool) -> str | None:
        """The customer's Yes/No; the text name to answer them with, None if not theirs."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            repository = CaseRepository(session)
            file = await repository.file(case_id)
            if file is None or file.customer is None or file.customer.telegram_user_id != user_id:
                return None
            if put_right:
                changed = await repository.confirm(case_id, now=now)
            else:
                changed = await repository.reopen(case_id, now=now, recovered=False)
            if not changed:
                return "done"
            await audit(
                session,
                now,
                "case.followup",
                target=f"case:{case_id}",
                new="put right" if put_right else "not put right",
            )
            await self.changed(session, case_id)
        note = (
            "✅ The customer says it was put right: case closed."
            if put_right
            else "↩️ The customer says it was not put right: the case is reopened."
        )
        await self._to_thread(file, note)
        return "yes" if put_right else "no"

    # -- SLA -----------------------------------------------------------------------------------

    async def _arm_sla(self, session: AsyncSession, file: CaseFile, now: datetime) -> None:
        case = file.case
        created = case.created_at
        resolution_due = due_at(created, self.policy.sla_resolution, self.policy.working)
        await CaseRepository(session).resolution_due(case.id, resolution_due, now=now)
        timers = []
        if case.first_response_due_at is not None:
            timers.append(("first_response", created, case.first_response_due_at, None))
        timers.append(("resolution", created, resolution_due, self.policy.working))
        for clock_name, start, due, working in timers:
            remind = reminder_at(start, due, working)
            for stage, at in (("remind", remind), ("breach", due)):
                await self._jobs.schedule(
                    CASE_SLA,
                    max(at, now),
                    {"case_id": case.id, "clock": clock_name, "stage": stage},
                    dedupe_key=f"case:{case.id}:{clock_name}:{stage}@{int(due.timestamp())}",
                    session=session,
                )

    async def handle_sla(self, job: ClaimedJob) -> str:
        case_id = int(job.payload["case_id"])
        clock_name, stage = job.payload["clock"], job.payload["stage"]
        async with self._sessions() as session:
            file = await CaseRepository(session).file(case_id)
        if file is None:
            return "nothing"
        case = file.case
        if clock_name == "first_response":
            due = case.first_response_due_at
            met = case.first_responded_at is not None or case.state not in ACTIVE
        else:
            due = case.resolution_due_at
            met = case.state in (CaseState.RESOLVED, CaseState.CONFIRMED)
        if met or due is None:
            return "met"
        what = "First response" if clock_name == "first_response" else "Resolution"
        zone = self._zone()
        if stage == "remind":
            await self._to_thread(
                file, f"⏰ {what} of case #{case_id} is due {due.astimezone(zone):%a %d %b %H:%M}."
            )
            return "reminded"
        notice = (
            f"⚠️ {what} of case #{case_id} is overdue since {due.astimezone(zone):%a %d %b %H:%M}"
            + (
                f" (staff chat: {file.staff_chat.title})"
                if file.staff_chat and file.staff_chat.title
                else ""
            )
            + "."
        )
        targets: Iterable[int] = (
            [self.policy.escalation_chat]
            if self.policy.escalation_chat is not None
            else await self._admins.admins()
        )
        for target in targets:
            with suppress(TelegramBadRequest, TelegramForbiddenError):
                await self._bot.send_message(target, notice)
        async with self._sessions.begin() as session:
            await audit(
                session,
                self._clock.now(),
                "case.breached",
                target=f"case:{case_id}",
                new=clock_name,
            )
            await self.changed(session, case_id)
        return "escalated"

    # -- inside ----------------------------------------------------------------------------------

    async def _schedule_followup(
        self, session: AsyncSession, file: CaseFile, now: datetime
    ) -> None:
        at = now + self.policy.followup_delay
        if self.policy.quiet_hours is not None and file.customer is not None:
            at = next_allowed(self.policy.quiet_hours, at, self._zone_for(file.customer.timezone))
        await self._jobs.schedule(
            CASE_FOLLOWUP,
            at,
            {"case_id": file.case.id},
            dedupe_key=f"case:{file.case.id}:followup@{int(now.timestamp())}",
            session=session,
        )

    def _is_note_reply(self, file: CaseFile, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(
            replied is not None
            and replied.from_user is not None
            and replied.from_user.is_bot
            and (replied.text or "").startswith(f"Case #{file.case.id} is resolved")
        )

    def _reply_to_card(self, file: CaseFile) -> ReplyParameters | None:
        if file.case.thread_id is not None or file.case.card_message_id is None:
            return None
        return ReplyParameters(
            message_id=file.case.card_message_id, allow_sending_without_reply=True
        )

    async def _to_thread(
        self, file: CaseFile, text: str, *, reply_markup: Any = None, reply_to: int | None = None
    ) -> Message | None:
        """Write in the case's thread (its topic, or a reply to its card)."""
        chat = file.staff_chat
        if chat is None:
            return None
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else self._reply_to_card(file)
        )
        try:
            return await self._bot.send_message(
                chat.chat_id,
                text,
                message_thread_id=file.case.thread_id,
                reply_parameters=reply,
                reply_markup=reply_markup,
            )
        except TelegramBadRequest as error:
            if "thread not found" not in error.message:
                raise
        # Someone deleted the case's topic: open it again, with the card, and write there.
        async with self._sessions.begin() as session:
            await CaseRepository(session).posted(
                file.case.id,
                staff_chat_id=chat.id,
                thread_id=None,
                card_message_id=None,
                now=self._clock.now(),
            )
        await self._post_card(file, chat, self._clock.now())
        async with self._sessions() as session:
            again = await CaseRepository(session).file(file.case.id)
        if again is None:
            return None
        return await self._bot.send_message(
            chat.chat_id, text, message_thread_id=again.case.thread_id, reply_markup=reply_markup
        )

    async def _send_media(
        self, chat_id: int, kind: str, file_id: str, thread_id: int | None, card_id: int
    ) -> None:
        reply = None if thread_id is not None else ReplyParameters(message_id=card_id)
        senders = {
            "photo": self._bot.send_photo,
            "voice": self._bot.send_voice,
            "video": self._bot.send_video,
            "video_note": self._bot.send_video_note,
            "audio": self._bot.send_audio,
            "document": self._bot.send_document,
        }
        send = senders.get(kind)
        if send is None:
            return
        with suppress(TelegramBadRequest):
            await send(chat_id, file_id, message_thread_id=thread_id, reply_parameters=reply)

    def _zone(self) -> tzinfo:
        return self.policy.zone or self._zone_for(None)


async def audit(
    session: AsyncSession,
    at: datetime,
    action: str,
    *,
    actor: tuple[int | None, str | None] | None = None,
    target: str | None = None,
    old: object = None,
    new: object = None,
) -> None:
    user_id, name = actor or (None, None)
    await AuditRepository(session).record(
        at=at, action=action, actor_id=user_id, actor_name=name, target=target, old=old, new=new
    )


def _followup_button(case_id: int, yes: bool, label: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=label, callback_data=FollowupCallback(case_id=case_id, yes=yes).pack()
    )


def _media_kind(message: Message) -> str | None:
    for kind in ("photo", "voice", "video", "video_note", "audio", "document", "sticker"):
        if getattr(message, kind, None):
            return kind
    return None


# Telegram's caption limit, in UTF-16 code units as it counts them (an emoji is often two).
MAX_CAPTION = 1024


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces Telegram takes (none for no text)."""
    pieces: list[str] = []
    start, size = 0, 0
    for index, character in enumerate(text):
        width = 2 if ord(character) > 0xFFFF else 1
        if size + width > limit:
            pieces.append(text[start:index])
            start, size = index, 0
        size += width
    if start < len(text):
        pieces.append(text[start:])
    return pieces
