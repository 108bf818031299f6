"""`hearback demo`: the whole loop, played headlessly on the emulator, printed chat by chat.

The same sandbox as `hearback run` (emulator, cast, the real bot polling over HTTP), with no page.
One unhappy visit is played from start to end by the simulated people, each step waiting for
the bot's real answer: the visit comes in through the HTTP API, Anna scores 2, picks a reason,
comments and asks to be contacted; the case opens a topic in the staff forum; Maria takes it,
answers Anna there, and resolves it with a voucher; the follow-up asks Anna whether it was put
right; the admin reads /stats. Then each party's chat is printed from the emulator's event log:
the customer's, the staff forum topic by topic, and the admin's, ending with /stats.

It runs on a temporary SQLite database unless given one, with the follow-up a few seconds after
Resolve, so it takes well under a minute.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

from bot import texts
from bot.callbacks import ScoreCallback
from bot.emulator import SimUser, StoredMessage
from bot.emulator.world import SimChat
from bot.sandbox import Sandbox, sandbox_settings
from bot.settings import Settings
from bot.values import QuietHours

T = TypeVar("T")

#: How long any one step may take before the demo gives up and says which.
STEP_TIMEOUT = 60.0
FOLLOWUP = timedelta(seconds=3)
COMMENT = "Forty minutes for a coffee, and nobody said sorry."
STAFF_REPLY = "Anna, I am so sorry about the wait. Your next coffee is on us."
THANKS = "Thank you, that is kind."


class DemoFailed(Exception):
    """A step did not happen: the message says which, and what the chat held."""


def demo_settings(settings: Settings, database_url: str) -> Settings:
    """The sandbox's settings, with what the loop needs whatever the environment says."""
    played = sandbox_settings(settings.model_copy(update={"database_url": database_url}))
    return played.model_copy(
        update={
            "http_port": 0,
            "emulator_port": 0,
            "survey_scale": "csat",
            "low_score": None,
            "quiet_hours": QuietHours.off(),
            "survey_cooldown": timedelta(0),
            "followup_delay": FOLLOWUP,
        }
    )


def run_demo(settings: Settings, database_url: str | None = None, out: TextIO = sys.stdout) -> int:
    from storage.migrate import upgrade

    if settings.log_level_number > logging.DEBUG:
        # The transcript is the output; the bot's INFO lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hearback-demo-") as folder:
        url = database_url or f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        upgrade(url)
        try:
            asyncio.run(play(demo_settings(settings, url), out))
        except DemoFailed as error:
            print(f"\nThe demo stopped: {error}", file=out, flush=True)
            return 1
    return 0


async def play(settings: Settings, out: TextIO) -> None:
    started = time.monotonic()
    async with Sandbox(settings, page=False) as sandbox:
        assert sandbox.cast is not None and sandbox.app is not None
        cast = sandbox.cast
        anna, maria, admin = cast.customers[0], cast.staff[0], cast.admin
        player = Player(sandbox)

        status, answer = await sandbox.record_visit(anna, now=True)
        if status != 201:
            raise DemoFailed(f"the HTTP API answered {status}: {answer}")

        # The customer: survey, low score, apology and reasons, comment, contact.
        survey = await player.bot_message(anna, _score_buttons, "the survey")
        await player.tap(anna, survey, data=_score(survey, 2))
        apology = await player.bot_message(anna, lambda m: _has(m, texts.BUTTON_DONE), "reasons")
        chips = [b for b in apology.buttons if b["text"] != _label(texts.BUTTON_DONE)]
        reason = chips[1] if len(chips) > 1 else chips[0]  # "Waited too long", by default
        await player.tap(anna, apology, data=reason["callback_data"])
        await player.tap(anna, apology, label=_label(texts.BUTTON_DONE))
        await player.bot_message(anna, lambda m: not m.buttons or _has(m, texts.BUTTON_SKIP), "ask")
        await anna.send(cast.bot, COMMENT)
        ask = await player.bot_message(anna, lambda m: _has(m, texts.BUTTON_CONTACT_YES), "contact")
        await player.tap(anna, ask, label=_label(texts.BUTTON_CONTACT_YES))
        await player.bot_message(anna, lambda m: not m.buttons, "the closing message")

        # The staff forum: a topic with the card; take, answer Anna, resolve.
        card = await player.group_message(lambda m: _button(m, "Take") is not None, "the card")
        thread = card.thread_id
        await player.tap(maria, card, label="Take")
        await player.edited(cast.group, card, lambda m: "taken by" in (m.text or ""), "taken")
        await maria.send_to_chat(cast.bot, cast.group, STAFF_REPLY, thread_id=thread)
        await player.bot_message(anna, lambda m: STAFF_REPLY in (m.text or ""), "the reply")
        await anna.send(cast.bot, THANKS)
        await player.group_message(lambda m: THANKS in (m.text or ""), "Anna's thanks")
        card = cast.group.message(card.message_id) or card
        await player.tap(maria, card, label="Resolve")
        offer = await player.group_message(lambda m: _button(m, "Voucher") is not None, "offers")
        await player.tap(maria, offer, label="Voucher")
        await player.edited(cast.group, offer, lambda m: "resolved" in (m.text or ""), "resolved")

        # FOLLOWUP_DELAY later: was it put right?
        followup = await player.bot_message(
            anna, lambda m: _has(m, texts.BUTTON_FOLLOWUP_YES), "the follow-up"
        )
        await player.tap(anna, followup, label=_label(texts.BUTTON_FOLLOWUP_YES))
        await player.edited(anna.chat_with(cast.bot), followup, lambda m: not m.buttons, "yes")

        # The admin's figures.
        await admin.send(cast.bot, "/stats")
        await player.bot_message(admin, lambda m: "photo" in m, "the /stats chart")
        await player.settled()

        elapsed = time.monotonic() - started
        print(transcript(sandbox), file=out)
        print(f"\nThe loop played through in {elapsed:.0f} s.", file=out, flush=True)


def _label(item: texts.Text) -> str:
    return texts.render(item)


def _button(message: StoredMessage, label: str) -> dict[str, Any] | None:
    return next((b for b in message.buttons if b.get("text") == label), None)


def _has(message: StoredMessage, item: texts.Text) -> bool:
    return _button(message, _label(item)) is not None


def _score_buttons(message: StoredMessage) -> bool:
    return any(data.startswith(f"{ScoreCallback.__prefix__}:") for data in message.callback_data)


def _score(survey: StoredMessage, score: int) -> str:
    survey_id = ScoreCallback.unpack(survey.callback_data[0]).survey_id
    return ScoreCallback(survey_id=survey_id, score=score).pack()


class Player:
    """Acts for the cast and waits for the bot's answers, each wait with a clear failure."""

    def __init__(self, sandbox: Sandbox) -> None:
        assert sandbox.cast is not None and sandbox.app is not None
        self.sandbox = sandbox
        self.cast = sandbox.cast
        self.app = sandbox.app
        self.emulator = sandbox.emulator
        self._seen: dict[int, int] = {}  # chat id -> messages already waited past

    async def _until(self, find: Callable[[], T | None], what: str, chat: SimChat) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_TIMEOUT
        while (found := find()) is None:
            if loop.time() > deadline:
                said = [m.text or ",".join(m.kinds) for m in chat.messages[-6:]]
                raise DemoFailed(f"no {what} within {STEP_TIMEOUT:.0f} s; last messages: {said}")
            await asyncio.sleep(0.05)
        return found

    async def _new(self, chat: SimChat, test: Callable[[StoredMessage], bool], what: str) -> Any:
        bot_id = self.cast.bot.id

        def find() -> StoredMessage | None:
            messages = chat.messages
            for index in range(self._seen.get(chat.id, 0), len(messages)):
                message = messages[index]
                if message.bot_id == bot_id and test(message):
                    self._seen[chat.id] = index + 1
                    return message
            return None

        return await self._until(find, what, chat)

    async def bot_message(
        self, person: SimUser, test: Callable[[StoredMessage], bool], what: str
    ) -> StoredMessage:
        """The bot's next message to ``person`` that passes ``test``."""
        chat = person.chat_with(self.cast.bot)
        message: StoredMessage = await self._new(chat, test, what)
        return message

    async def group_message(self, test: Callable[[StoredMessage], bool], what: str) -> Any:
        return await self._new(self.cast.group, test, what)

    async def edited(
        self,
        chat: SimChat,
        message: StoredMessage,
        test: Callable[[StoredMessage], bool],
        what: str,
    ) -> StoredMessage:
        def find() -> StoredMessage | None:
            current = chat.message(message.message_id)
            return current if current is not None and test(current) else None

        return await self._until(find, what, chat)

    async def tap(
        self,
        person: SimUser,
        message: StoredMessage,
        *,
        data: str | None = None,
        label: str | None = None,
    ) -> None:
        """Tap a button of the message as it is now, once the bot has handled what came before
        (a tap on a keyboard about to be replaced would be a stale button)."""
        await self.settled()
        current = message.chat.message(message.message_id) or message
        await person.tap(self.cast.bot, current, data, label=label)
        await self.settled()

    async def settled(self) -> None:
        """Until the bot has no update in flight and none waiting to be fetched."""
        for _ in range(int(STEP_TIMEOUT / 0.05)):
            await asyncio.sleep(0.05)
            if self.app.in_flight.count == 0 and not self.cast.bot.updates:
                return


# ----------------------------------------------------------------------------------- transcript


def transcript(sandbox: Sandbox) -> str:
    """Each party's chat from the event log: customer, staff forum (by topic), admin."""
    assert sandbox.cast is not None
    cast = sandbox.cast
    events = sandbox.emulator.events.since(0)
    names = {person.id: person.first_name for person in [cast.admin, *cast.customers, *cast.staff]}
    names[cast.bot.id] = cast.bot.first_name
    bot = f"@{cast.bot.username}"
    anna = cast.customers[0]
    parts = [
        "Hearback demo: one unhappy visit, start to end, played by the real bot on the emulator.",
        _section(f"{anna.first_name} (customer) · private chat with {bot}", events, anna.id, names),
    ]
    group = [e for e in events if e["chat_id"] == cast.group.id]
    threads: dict[int | None, str] = {None: "General"}
    for event in group:
        created = event.get("message", {}).get("forum_topic_created")
        if event["type"] == "message" and created:
            threads[event["message"]["message_thread_id"]] = f"topic “{created['name']}”"
    thread_of = {
        e["message"]["message_id"]: e["message"].get("message_thread_id")
        for e in group
        if e["type"] == "message"
    }
    for thread, title in threads.items():
        in_thread = [e for e in group if thread_of.get(_message_id(e)) == thread]
        parts.append(_render(f"{cast.group.title} (staff forum) · {title}", in_thread, names))
    parts.append(
        _section(
            f"{cast.admin.first_name} (admin) · private chat with {bot}",
            events,
            cast.admin.id,
            names,
        )
    )
    return "\n\n".join(parts)


def _message_id(event: dict[str, Any]) -> int:
    return int(event["message"]["message_id"] if "message" in event else event["message_id"])


def _section(title: str, events: list[dict[str, Any]], chat_id: int, names: dict[int, str]) -> str:
    return _render(title, [e for e in events if e["chat_id"] == chat_id and e["bot_id"]], names)


def _render(title: str, events: list[dict[str, Any]], names: dict[int, str]) -> str:
    width = max((len(name) for name in names.values()), default=8)
    lines = [f"── {title} " + "─" * max(3, 76 - len(title))]
    texts_now: dict[int, str] = {}

    def say(who: str, body: str) -> None:
        first, *rest = body.splitlines() or [""]
        lines.append(f"{who:<{width}}  {first}")
        lines.extend(f"{'':<{width}}  {line}" for line in rest)

    for event in events:
        kind = event["type"]
        if kind == "tap":
            label = event.get("label") or event.get("data")
            say(names.get(event["user_id"], "?"), f"[taps “{label}”]")
            continue
        if kind == "answer":
            if event.get("text"):
                say("", f"(notice: {event['text']})")
            continue
        message = event["message"]
        if message.get("forum_topic_created"):
            continue
        body = _content(message)
        if kind == "edit":
            # Only what the edit added: a card edited five times would otherwise fill pages.
            before = set(texts_now.get(message["message_id"], "").splitlines())
            added = [line for line in body.splitlines() if line not in before and line.strip()]
            texts_now[message["message_id"]] = body
            if not added:
                continue  # only buttons went, or lines were taken away
            say(names.get(message.get("from", {}).get("id"), "?"), "(edited) " + "\n".join(added))
            continue
        elif kind == "delete":
            body = "(deleted)"
        texts_now[message["message_id"]] = _content(message)
        say(names.get(message.get("from", {}).get("id"), "?"), body)
    return "\n".join(lines)


def _content(message: dict[str, Any]) -> str:
    parts = []
    if "photo" in message:
        biggest = message["photo"][-1]
        parts.append(f"[photo {biggest['width']}×{biggest['height']}]")
    if "document" in message:
        parts.append(f"[document {message['document'].get('file_name', '')}]")
    text = message.get("text", message.get("caption"))
    if text:
        parts.append(text)
    buttons = [
        b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    ]
    if buttons:
        parts.append(" ".join(f"[{label}]" for label in buttons))
    return "\n".join(parts) or ",".join(k for k in message if k not in ("chat", "from", "date"))
