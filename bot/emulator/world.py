"""The emulated Telegram: bots, people, chats, messages and the bots' update queues.

Everything here is plain state plus the actions people take (a user writes to a bot, taps a
button, blocks it; staff write in a group or a forum topic). The Bot API methods in
``methods.py`` read and change the same state, so what the bot sends is what the simulated
users see.

How the pieces map to Telegram:

- **Ids.** Users get ids from 1 000 000 001 up; a private chat's id is the user's id (from each
  bot's point of view — two bots have two separate private chats with the same user, so they
  are kept per bot). Basic groups get negative ids (-4 000 000 001, …) and supergroups and forum
  supergroups ``-100…`` ids (-1 002 000 000 001, …), as on Telegram. Message ids count up per
  chat. Update ids count up per bot and never repeat.
- **Starting a bot.** A private chat exists once the user has written to the bot (any message;
  on Telegram the first one is always /start). Before that the bot gets 403 "bot can't initiate
  conversation with a user"; after the user blocks it, 403 "bot was blocked by the user". A user
  who writes to a bot they blocked unblocks it, as pressing Restart does.
- **Groups.** Members have a status (creator, administrator, member, left, kicked) and
  administrators have rights (``can_manage_topics`` …). Bots run in privacy mode by default:
  in groups they receive only commands, replies to their own messages (in a forum topic every
  message counts as a reply to the topic's first message) and mentions, unless they are
  administrators or were added with ``privacy_mode=False``.
- **Forum topics.** A topic is opened by a service message whose id is the topic's
  ``message_thread_id``; messages in it carry that id and ``is_topic_message``.
- **Updates.** Users' messages become ``message`` updates, edits ``edited_message``, taps
  ``callback_query``; blocking, unblocking and adding the bot to a group produce
  ``my_chat_member``; other members' status changes ``chat_member`` (delivered only when asked
  for in ``allowed_updates``, as on Telegram).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.emulator import media
from bot.emulator.formatting import command_entities

if TYPE_CHECKING:
    from bot.emulator.faults import Faults

#: Update types a bot gets when it did not ask for particular ones (Telegram's default).
DEFAULT_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

#: Rights an administrator has unless told otherwise (Telegram's defaults when promoting).
DEFAULT_ADMIN_RIGHTS: dict[str, bool] = {
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
    "can_manage_topics": False,
}

#: Telegram's service account; it appears as the actor of changes nobody in particular made.
SERVICE_USER_ID = 777000

_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


class SimulationError(ValueError):
    """A test asked a simulated person to do something Telegram would not let them do."""


class Signal:
    """Wakes everyone waiting for "something new" (long polls, webhook delivery)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the next fire; return whether it came.

        ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11, ``wait_for`` can swallow
        a cancellation that arrives just as the event fires, and a task would never stop.
        """
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


@dataclass(eq=False)
class FileRecord:
    """A file Telegram stores: uploaded by the bot or sent by a user; readable via getFile."""

    file_id: str
    file_unique_id: str
    kind: str  # photo, document, sticker, voice
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    url: str | None = None  # set when the bot sent it by URL (the emulator does not fetch it)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(eq=False)
class Topic:
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False
    creator_id: int | None = None


@dataclass(eq=False)
class Member:
    """Someone's place in a group: a status and, for administrators, rights."""

    account: SimUser | BotAccount
    status: str  # creator, administrator, member, left, kicked
    rights: dict[str, bool] = field(default_factory=dict)

    @property
    def is_present(self) -> bool:
        return self.status in ("creator", "administrator", "member")

    def can(self, right: str) -> bool:
        """Whether this member holds an administrator right (creators hold them all)."""
        if self.status == "creator":
            return True
        return self.status == "administrator" and {**DEFAULT_ADMIN_RIGHTS, **self.rights}.get(
            right, False
        )

    def as_chat_member(self) -> dict[str, Any]:
        """The ChatMember object for this member."""
        user = self.account.as_user()
        if self.status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if self.status == "administrator":
            rights = {**DEFAULT_ADMIN_RIGHTS, **self.rights}
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                **rights,
                # Newer than the shipped spec (Bot API 10.2+), but aiogram 3.31 requires it.
                "can_send_welcome_messages": False,
            }
        if self.status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        return {"status": self.status, "user": user}


class StoredMessage:
    """One message in a chat, in its current state (after edits); dict-like over its JSON.

    ``msg["text"]`` and ``msg.data`` give the Bot API Message object as the bot sees it.
    ``msg.text`` is the text, or the caption of a media message.
    """

    def __init__(
        self,
        chat: SimChat,
        data: dict[str, Any],
        *,
        bot_id: int | None = None,
        user_id: int | None = None,
        file: FileRecord | None = None,
        keyboard: dict[str, Any] | None = None,
    ) -> None:
        self.chat = chat
        self.data = data
        self.bot_id = bot_id  # the bot that sent it, if a bot did
        self.user_id = user_id  # the user who sent it, if a user did
        self.file = file
        self.keyboard = keyboard  # a reply keyboard / remove / force_reply sent along with it
        self.deleted = False
        self.history: list[dict[str, Any]] = []  # earlier versions, oldest first

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __repr__(self) -> str:
        body = self.text if self.text is not None else ",".join(self.kinds)
        return f"<Message {self.chat.id}/{self.message_id} {body!r}>"

    @property
    def message_id(self) -> int:
        return int(self.data["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.data["chat"]["id"])

    @property
    def thread_id(self) -> int | None:
        return self.data.get("message_thread_id")

    @property
    def text(self) -> str | None:
        return self.data.get("text", self.data.get("caption"))

    @property
    def caption(self) -> str | None:
        return self.data.get("caption")

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.data.get("entities", self.data.get("caption_entities", [])))

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.data.get("reply_markup")

    @property
    def kinds(self) -> list[str]:
        """The content keys present: text, photo, document, sticker, voice, forum_topic_created…"""
        content = (
            "text",
            "photo",
            "document",
            "sticker",
            "voice",
            "forum_topic_created",
            "forum_topic_edited",
            "forum_topic_closed",
            "forum_topic_reopened",
        )
        return [k for k in content if k in self.data]

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard's buttons, row by row, flattened."""
        markup = self.reply_markup or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


class SimChat:
    """A chat: private (one user and one bot), a group, a supergroup or a forum supergroup."""

    def __init__(
        self,
        world: World,
        chat_id: int,
        chat_type: str,
        *,
        title: str | None = None,
        is_forum: bool = False,
        username: str | None = None,
        user: SimUser | None = None,
        bot: BotAccount | None = None,
    ) -> None:
        self._world = world
        self.id = chat_id
        self.type = chat_type
        self.title = title
        self.is_forum = is_forum
        self.username = username
        self.user = user  # private chats: the person
        self.bot = bot  # private chats: the bot
        self.members: dict[int, Member] = {}
        self.topics: dict[int, Topic] = {}
        self.description: str | None = None
        self.pinned: list[int] = []
        self.last_action: str | None = None
        self._messages: list[StoredMessage] = []
        self._by_id: dict[int, StoredMessage] = {}
        self._next_message_id = 1

    def __repr__(self) -> str:
        return f"<Chat {self.id} {self.type} {self.title or ''}>".replace(" >", ">")

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    @property
    def messages(self) -> list[StoredMessage]:
        """The messages in the chat now (deleted ones left out), oldest first."""
        return [m for m in self._messages if not m.deleted]

    def message(self, message_id: int) -> StoredMessage | None:
        """A message that is still there, by id."""
        found = self._by_id.get(message_id)
        return None if found is None or found.deleted else found

    def topic_messages(self, thread_id: int) -> list[StoredMessage]:
        return [m for m in self.messages if m.thread_id == thread_id]

    def topic(self, name: str) -> Topic | None:
        """The live topic called ``name`` (the newest if several)."""
        found = [t for t in self.topics.values() if t.name == name and not t.deleted]
        return found[-1] if found else None

    def member(self, account_id: int) -> Member | None:
        return self.members.get(account_id)

    def as_chat(self) -> dict[str, Any]:
        """The Chat object for this chat."""
        if self.is_private:
            assert self.user is not None
            chat: dict[str, Any] = {"id": self.id, "type": "private"}
            chat.update(self.user.names())
            return chat
        chat = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat

    def _add(self, message: StoredMessage) -> StoredMessage:
        self._messages.append(message)
        self._by_id[message.message_id] = message
        return message

    def _next_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id


class BotAccount:
    """A bot registered with the emulator, with its token and server-side state."""

    def __init__(
        self, bot_id: int, token: str, username: str, first_name: str, privacy_mode: bool
    ) -> None:
        self.id = bot_id
        self.token = token
        self.username = username
        self.first_name = first_name
        self.privacy_mode = privacy_mode
        self.updates: list[dict[str, Any]] = []  # pending (unconfirmed) updates, oldest first
        self.next_update_id = 1
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATES
        self.duplicates: set[int] = set()  # update ids to serve once more after confirmation
        self.webhook: dict[str, Any] | None = None
        self.webhook_error: tuple[int, str] | None = None  # (date, message) of the last failure
        self.commands: dict[tuple[str, int | None, int | None, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.texts: dict[tuple[str, str], str] = {}  # (name|description|short_description, lang)
        self.poll_generation = 0
        self.signal = Signal()

    def __repr__(self) -> str:
        return f"<Bot {self.id} @{self.username}>"

    def as_user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def get_commands(
        self,
        scope: str = "default",
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        language_code: str = "",
    ) -> list[dict[str, Any]]:
        """The commands set for exactly this scope and language (what getMyCommands returns)."""
        return list(self.commands.get((scope, chat_id, user_id, language_code), []))


class SimUser:
    """A simulated person. Every action goes through the emulator's state and becomes updates."""

    def __init__(
        self,
        world: World,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        is_premium: bool,
    ) -> None:
        self._world = world
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.is_premium = is_premium
        self.started: set[int] = set()  # bots this user has written to
        self.blocked: set[int] = set()  # bots this user has blocked
        self.deactivated = False

    def __repr__(self) -> str:
        return f"<User {self.id} {self.first_name}>"

    def names(self) -> dict[str, Any]:
        out: dict[str, Any] = {"first_name": self.first_name}
        if self.last_name:
            out["last_name"] = self.last_name
        if self.username:
            out["username"] = self.username
        return out

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, **self.names()}
        if self.language_code:
            user["language_code"] = self.language_code
        if self.is_premium:
            user["is_premium"] = True
        return user

    # -- private chat with a bot --------------------------------------------------------------

    async def send(
        self, bot: BotAccount, text: str, *, reply_to: StoredMessage | int | None = None
    ) -> StoredMessage:
        """Write ``text`` to ``bot`` in the private chat (``/start payload`` starts the bot);
        ``reply_to``: as a reply to that message of the chat."""
        if not text:
            raise SimulationError("a message needs text")
        content: dict[str, Any] = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return await self._world.user_writes(self, bot, content, reply_to=reply_to)

    async def forward(
        self, bot: BotAccount, text: str, *, origin: SimUser | str, at: int | None = None
    ) -> StoredMessage:
        """Forward to ``bot`` a text message first written by ``origin``: a user, or a name
        alone when that user's privacy settings hide their account (``hidden_user``)."""
        if not text:
            raise SimulationError("a message needs text")
        date = at if at is not None else self._world.date()
        if isinstance(origin, SimUser):
            forward = {"type": "user", "sender_user": origin.as_user(), "date": date}
        else:
            forward = {"type": "hidden_user", "sender_user_name": origin, "date": date}
        content: dict[str, Any] = {"text": text, "forward_origin": forward}
        return await self._world.user_writes(self, bot, content)

    async def send_sticker(self, bot: BotAccount, emoji: str = "👍") -> StoredMessage:
        file = self._world.store_file("sticker", media.SAMPLE_STICKER, width=512, height=512)
        sticker = {
            **self._world.file_fields(file),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._world.user_writes(self, bot, {"sticker": sticker}, file=file)

    async def send_photo(
        self, bot: BotAccount, caption: str | None = None, data: bytes | None = None
    ) -> StoredMessage:
        data = data if data is not None else media.make_png(64, 48)
        size = media.image_size(data)
        if size is None:
            raise SimulationError("send_photo needs PNG, JPEG, GIF or WebP bytes")
        file = self._world.store_file("photo", data, width=size[0], height=size[1])
        content: dict[str, Any] = {"photo": self._world.photo_sizes(file)}
        if caption:
            content["caption"] = caption
        return await self._world.user_writes(self, bot, content, file=file)

    async def send_voice(self, bot: BotAccount, duration: int = 3) -> StoredMessage:
        file = self._world.store_file(
            "voice", media.SAMPLE_VOICE, mime_type="audio/ogg", duration=duration
        )
        voice = {**self._world.file_fields(file), "duration": duration, "mime_type": "audio/ogg"}
        return await self._world.user_writes(self, bot, {"voice": voice}, file=file)

    async def send_document(
        self,
        bot: BotAccount,
        data: bytes = b"hello",
        file_name: str = "note.txt",
        caption: str | None = None,
    ) -> StoredMessage:
        file = self._world.store_file(
            "document", data, file_name=file_name, mime_type=media.guess_mime(file_name)
        )
        document = {
            **self._world.file_fields(file),
            "file_name": file_name,
            "mime_type": file.mime_type,
        }
        content: dict[str, Any] = {"document": document}
        if caption:
            content["caption"] = caption
        return await self._world.user_writes(self, bot, content, file=file)

    async def edit(self, message: StoredMessage, text: str) -> StoredMessage:
        """Edit a text message this user sent; the bot gets an ``edited_message`` update."""
        return await self._world.user_edits(self, message, text)

    async def tap(
        self,
        bot: BotAccount,
        message: StoredMessage | dict[str, Any] | int,
        data: str | None = None,
        *,
        label: str | None = None,
        forged: bool = False,
    ) -> CallbackQuery:
        """Tap an inline button of ``bot``'s ``message``: by its callback ``data`` or ``label``.

        The button must exist on the message as it is now, unless ``forged=True`` (then any
        ``data`` is sent, as a tampering client could).
        """
        return await self._world.user_taps(self, bot, message, data, label=label, forged=forged)

    def block(self, bot: BotAccount) -> None:
        self._world.set_blocked(self, bot, True)

    def unblock(self, bot: BotAccount) -> None:
        self._world.set_blocked(self, bot, False)

    def deactivate(self) -> None:
        """Delete the account: bots then get 403 "user is deactivated"."""
        self.deactivated = True

    def inbox(self, bot: BotAccount) -> list[StoredMessage]:
        """What ``bot`` has sent this user and not deleted, current state, oldest first."""
        chat = self._world.private_chats.get((bot.id, self.id))
        if chat is None:
            return []
        return [m for m in chat.messages if m.bot_id == bot.id]

    def chat_with(self, bot: BotAccount) -> SimChat:
        """The private chat with ``bot`` (created, not started, if there was none)."""
        return self._world.private_chat(bot, self)

    # -- groups --------------------------------------------------------------------------------

    async def send_to_chat(
        self,
        bot: BotAccount,
        chat: SimChat,
        text: str,
        thread_id: int | None = None,
        reply_to: StoredMessage | int | None = None,
    ) -> StoredMessage:
        """Write in a group (``thread_id``: a forum topic) where ``bot`` may read it."""
        content: dict[str, Any] = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return await self._world.user_writes_in_group(
            self, bot, chat, content, thread_id=thread_id, reply_to=reply_to
        )


@dataclass(eq=False)
class CallbackQuery:
    """A tap on an inline button, and the bot's answer once it comes."""

    id: str
    user: SimUser
    bot: BotAccount
    message: StoredMessage
    data: str | None
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None  # text, show_alert, url, cache_time as answered
    label: str | None = None  # the tapped button's text (None when forged)

    def as_update_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": self.id,
            "from": self.user.as_user(),
            "message": _without_reply(self.message.data),
            "chat_instance": str(abs(self.message.chat_id * 1_000_003 + self.bot.id)),
        }
        if self.data is not None:
            payload["data"] = self.data
        return payload


def _without_reply(data: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in another object: Telegram nests replies one level only."""
    return {k: v for k, v in data.items() if k != "reply_to_message"}


class World:
    """All state of the emulated Telegram, and the actions that change it."""

    def __init__(
        self,
        now: Callable[[], float],
        date: Callable[[], int],
        faults: Faults,
        seed: int = 0,
    ) -> None:
        self.now = now
        self.date = date
        self.faults = faults
        self.rng = random.Random(seed)
        self.bots: dict[int, BotAccount] = {}
        self.bots_by_token: dict[str, BotAccount] = {}
        self.users: dict[int, SimUser] = {}
        self.groups: dict[int, SimChat] = {}
        self.private_chats: dict[tuple[int, int], SimChat] = {}
        self.files: dict[str, FileRecord] = {}
        self.queries: dict[str, CallbackQuery] = {}
        self._next_user_id = 1_000_000_001
        self._next_bot_id = 7_000_000_001
        self._next_group = 1
        self._next_file = 1
        self._next_query = 1
        self.on_update: Callable[[BotAccount], None] = lambda bot: None
        #: Called with (kind, message) whenever a message appears ("message"), changes
        #: ("edit") or goes ("delete") in any chat: the emulator's event log watches this way.
        self.message_watchers: list[Callable[[str, StoredMessage], None]] = []
        #: Called with every callback query when a person taps, and again once the bot has
        #: answered it (``query.answered`` tells which).
        self.query_watchers: list[Callable[[CallbackQuery], None]] = []

    # -- watching ------------------------------------------------------------------------------

    def message_changed(self, kind: str, message: StoredMessage) -> None:
        """Tell the watchers a message appeared, was edited or was deleted."""
        for watcher in self.message_watchers:
            watcher(kind, message)

    def delete_message(self, message: StoredMessage) -> None:
        message.deleted = True
        self.message_changed("delete", message)

    def query_changed(self, query: CallbackQuery) -> None:
        for watcher in self.query_watchers:
            watcher(query)

    # -- registration --------------------------------------------------------------------------

    def add_bot(
        self,
        username: str = "hearback_bot",
        first_name: str = "Hearback",
        token: str | None = None,
        privacy_mode: bool = True,
    ) -> BotAccount:
        if token is None:
            bot_id = self._next_bot_id
            self._next_bot_id += 1
            secret = "AA" + "".join(self.rng.choice(_TOKEN_ALPHABET) for _ in range(33))
            token = f"{bot_id}:{secret}"
        else:
            head, _, secret = token.partition(":")
            if not head.isdigit() or not secret:
                raise ValueError("a bot token looks like 123456789:AA… (id, colon, secret)")
            bot_id = int(head)
        if token in self.bots_by_token or bot_id in self.bots:
            raise ValueError(f"a bot with id {bot_id} is already registered")
        bot = BotAccount(bot_id, token, username, first_name, privacy_mode)
        bot.next_update_id = self.rng.randrange(100_000_000, 900_000_000)
        self.bots[bot_id] = bot
        self.bots_by_token[token] = bot
        return bot

    def add_user(
        self,
        first_name: str = "Anna",
        username: str | None = None,
        language_code: str | None = "en",
        last_name: str | None = None,
        is_premium: bool = False,
        user_id: int | None = None,
    ) -> SimUser:
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        if user_id in self.users:
            raise ValueError(f"user {user_id} already exists")
        user = SimUser(self, user_id, first_name, last_name, username, language_code, is_premium)
        self.users[user_id] = user
        return user

    def add_group(
        self,
        title: str,
        *,
        forum: bool = False,
        supergroup: bool = False,
        members: Iterable[SimUser] = (),
        admins: Iterable[SimUser] = (),
        creator: SimUser | None = None,
        username: str | None = None,
    ) -> SimChat:
        number = self._next_group
        self._next_group += 1
        if forum or supergroup:
            chat = SimChat(
                self,
                -(1_002_000_000_000 + number),
                "supergroup",
                title=title,
                is_forum=forum,
                username=username,
            )
        else:
            chat = SimChat(self, -(4_000_000_000 + number), "group", title=title)
        self.groups[chat.id] = chat
        if creator is not None:
            chat.members[creator.id] = Member(creator, "creator")
        for user in admins:
            chat.members[user.id] = Member(user, "administrator", {"can_manage_topics": forum})
        for user in members:
            chat.members.setdefault(user.id, Member(user, "member"))
        return chat

    def set_member(
        self,
        chat: SimChat,
        account: SimUser | BotAccount,
        status: str,
        *,
        rights: dict[str, bool] | None = None,
        by: SimUser | BotAccount | None = None,
    ) -> Member:
        """Put ``account`` in ``chat`` with ``status``; bots and watchers get the update."""
        if chat.is_private:
            raise SimulationError("private chats have no members to change")
        if status not in ("creator", "administrator", "member", "left", "kicked"):
            raise ValueError(f"unknown member status {status!r}")
        old = chat.members.get(account.id)
        old_object = old.as_chat_member() if old else Member(account, "left").as_chat_member()
        member = Member(account, status, dict(rights or {}))
        chat.members[account.id] = member
        actor = by or self._actor(chat)
        change = {
            "chat": chat.as_chat(),
            "from": actor.as_user(),
            "date": self.date(),
            "old_chat_member": old_object,
            "new_chat_member": member.as_chat_member(),
        }
        if isinstance(account, BotAccount):
            self.push_update(account, "my_chat_member", change)
        for other in self.bots.values():
            seen = chat.members.get(other.id)
            if other is not account and seen is not None and seen.status == "administrator":
                self.push_update(other, "chat_member", change)
        return member

    def _actor(self, chat: SimChat) -> SimUser:
        for status in ("creator", "administrator", "member"):
            for member in chat.members.values():
                if member.status == status and isinstance(member.account, SimUser):
                    return member.account
        service = self.users.get(SERVICE_USER_ID)
        if service is None:
            service = self.add_user("Telegram", language_code=None, user_id=SERVICE_USER_ID)
        return service

    # -- lookups ------------------------------------------------------------------------------

    def private_chat(self, bot: BotAccount, user: SimUser) -> SimChat:
        key = (bot.id, user.id)
        chat = self.private_chats.get(key)
        if chat is None:
            chat = SimChat(self, user.id, "private", user=user, bot=bot)
            self.private_chats[key] = chat
        return chat

    def chat_messages(self, chat_id: int, bot: BotAccount | None = None) -> list[StoredMessage]:
        """The messages of a group, or of a private chat (with ``bot``, or the only bot)."""
        if chat_id in self.groups:
            return self.groups[chat_id].messages
        chats = [c for (b, u), c in self.private_chats.items() if u == chat_id]
        if bot is not None:
            chats = [c for c in chats if c.bot is bot]
        if len(chats) > 1:
            raise SimulationError(f"user {chat_id} talks to several bots: pass bot=")
        return chats[0].messages if chats else []

    # -- files --------------------------------------------------------------------------------

    def store_file(self, kind: str, data: bytes, **details: Any) -> FileRecord:
        number = self._next_file
        self._next_file += 1
        suffix = "".join(self.rng.choice(_TOKEN_ALPHABET) for _ in range(24))
        prefix = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC", "voice": "AwAC"}
        extension = {"photo": "jpg", "sticker": "webp", "voice": "oga"}.get(kind, "bin")
        name = details.get("file_name")
        if kind == "document" and name and "." in name:
            extension = name.rsplit(".", 1)[1]
        record = FileRecord(
            file_id=f"{prefix.get(kind, 'BAAC')}AgIAAxk{number:06d}{suffix}",
            file_unique_id=f"AQAD{number:06d}",
            kind=kind,
            data=data,
            file_path=f"{kind}s/file_{number}.{extension}",
            **details,
        )
        self.files[record.file_id] = record
        return record

    def file_fields(self, file: FileRecord) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
        }
        if file.url is None:
            fields["file_size"] = file.size
        return fields

    def photo_sizes(self, file: FileRecord) -> list[dict[str, Any]]:
        """PhotoSize list for a photo: a thumbnail when it is large, and the photo itself.

        Every size refers to the same stored bytes (the emulator does not rescale).
        """
        width, height = file.width or 1, file.height or 1
        sizes = []
        if max(width, height) > 320:
            scale = 320 / max(width, height)
            thumb_id = f"{file.file_id}_s"
            self.files[thumb_id] = file
            sizes.append(
                {
                    "file_id": thumb_id,
                    "file_unique_id": f"{file.file_unique_id}s",
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": file.size,
                }
            )
        sizes.append({**self.file_fields(file), "width": width, "height": height})
        return sizes

    # -- updates ------------------------------------------------------------------------------

    def push_update(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update for ``bot``; None if the bot did not ask for this kind."""
        if kind not in bot.allowed_updates:
            return None
        update_id = bot.next_update_id
        bot.next_update_id += 1
        bot.updates.append({"update_id": update_id, kind: payload})
        if self.faults.take_duplicate():
            bot.duplicates.add(update_id)
        bot.signal.fire()
        self.on_update(bot)
        return update_id

    def new_message(
        self,
        chat: SimChat,
        content: dict[str, Any],
        *,
        sender: SimUser | BotAccount,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        file: FileRecord | None = None,
        keyboard: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Put a message into ``chat`` (no permission checks: callers do those)."""
        message_id = chat._next_id()
        data: dict[str, Any] = {"message_id": message_id}
        if thread_id is not None:
            data["message_thread_id"] = thread_id
        data["from"] = sender.as_user()
        data["date"] = self.date()
        data["chat"] = chat.as_chat()
        if thread_id is not None and chat.is_forum:
            data["is_topic_message"] = True
        if reply_to is None and thread_id is not None and chat.is_forum:
            root = chat.message(thread_id)
            if root is not None and root.message_id != message_id:
                reply_to = root
        if reply_to is not None:
            data["reply_to_message"] = _without_reply(reply_to.data)
        data.update(content)
        message = StoredMessage(
            chat,
            data,
            bot_id=sender.id if isinstance(sender, BotAccount) else None,
            user_id=sender.id if isinstance(sender, SimUser) else None,
            file=file,
            keyboard=keyboard,
        )
        chat._add(message)
        self.message_changed("message", message)
        return message

    # -- what people do -----------------------------------------------------------------------

    async def user_writes(
        self,
        user: SimUser,
        bot: BotAccount,
        content: dict[str, Any],
        file: FileRecord | None = None,
        reply_to: StoredMessage | int | None = None,
    ) -> StoredMessage:
        if user.deactivated:
            raise SimulationError(f"{user!r} is deactivated")
        if bot.id in user.blocked:
            self.set_blocked(user, bot, False)
        user.started.add(bot.id)
        chat = self.private_chat(bot, user)
        replied = None
        if reply_to is not None:
            reply_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
            replied = chat.message(reply_id)
            if replied is None:
                raise SimulationError(f"no message {reply_id} in {chat!r} to reply to")
        message = self.new_message(chat, content, sender=user, file=file, reply_to=replied)
        self.push_update(bot, "message", message.data)
        await asyncio.sleep(0)
        return message

    async def user_writes_in_group(
        self,
        user: SimUser,
        bot: BotAccount,
        chat: SimChat,
        content: dict[str, Any],
        *,
        thread_id: int | None,
        reply_to: StoredMessage | int | None,
    ) -> StoredMessage:
        member = chat.members.get(user.id)
        if member is None or not member.is_present:
            raise SimulationError(f"{user!r} is not a member of {chat!r}")
        bot_member = chat.members.get(bot.id)
        if bot_member is None or not bot_member.is_present:
            raise SimulationError(f"{bot!r} is not in {chat!r}: add_bot_to_chat first")
        if thread_id is not None:
            topic = chat.topics.get(thread_id)
            if not chat.is_forum or topic is None or topic.deleted:
                raise SimulationError(f"{chat!r} has no topic {thread_id}")
            if topic.closed and not member.can("can_manage_topics"):
                raise SimulationError(f"topic {thread_id} is closed")
        replied = None
        if reply_to is not None:
            reply_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
            replied = chat.message(reply_id)
            if replied is None:
                raise SimulationError(f"no message {reply_id} in {chat!r} to reply to")
        message = self.new_message(
            chat, content, sender=user, thread_id=thread_id, reply_to=replied
        )
        for other in self.bots.values():
            if self._bot_reads(other, chat, message):
                self.push_update(other, "message", message.data)
        await asyncio.sleep(0)
        return message

    def _bot_reads(self, bot: BotAccount, chat: SimChat, message: StoredMessage) -> bool:
        """Whether ``bot`` receives ``message`` in a group (privacy mode, see module doc)."""
        member = chat.members.get(bot.id)
        if member is None or not member.is_present:
            return False
        if not bot.privacy_mode or member.status in ("administrator", "creator"):
            return True
        text = message.get("text") or message.get("caption") or ""
        if text.startswith("/"):
            command = text.split()[0]
            target = command.partition("@")[2]
            return not target or target.lower() == bot.username.lower()
        if f"@{bot.username}".lower() in text.lower():
            return True
        replied = message.get("reply_to_message")
        return bool(replied and replied.get("from", {}).get("id") == bot.id)

    async def user_edits(self, user: SimUser, message: StoredMessage, text: str) -> StoredMessage:
        if message.user_id != user.id or "text" not in message.data:
            raise SimulationError("a user can edit only their own text messages")
        message.history.append(dict(message.data))
        message.data["text"] = text
        message.data["edit_date"] = self.date()
        entities = command_entities(text)
        if entities:
            message.data["entities"] = entities
        else:
            message.data.pop("entities", None)
        self.message_changed("edit", message)
        chat = message.chat
        readers = [chat.bot] if chat.is_private and chat.bot else list(self.bots.values())
        for bot in readers:
            if chat.is_private or self._bot_reads(bot, chat, message):
                self.push_update(bot, "edited_message", message.data)
        await asyncio.sleep(0)
        return message

    async def user_taps(
        self,
        user: SimUser,
        bot: BotAccount,
        message: StoredMessage | dict[str, Any] | int,
        data: str | None,
        *,
        label: str | None,
        forged: bool,
    ) -> CallbackQuery:
        stored = self._find_tapped(user, bot, message)
        if stored.bot_id != bot.id and not forged:
            raise SimulationError(f"{stored!r} was not sent by {bot!r}")
        if not forged:
            buttons = [b for b in stored.buttons if "callback_data" in b]
            if label is not None:
                matching = [b for b in buttons if b.get("text") == label]
            else:
                matching = [b for b in buttons if b["callback_data"] == data]
            if not matching:
                offered = [(b.get("text"), b["callback_data"]) for b in buttons]
                wanted = f"label {label!r}" if label is not None else f"data {data!r}"
                raise SimulationError(f"no button with {wanted} on {stored!r}; buttons: {offered}")
            data = matching[0]["callback_data"]
            label = matching[0].get("text")
        number = self._next_query
        self._next_query += 1
        query = CallbackQuery(
            id=str(4_000_000_000_000_000 + number * 7919),
            user=user,
            bot=bot,
            message=stored,
            data=data,
            created=self.now(),
            label=None if forged else label,
        )
        self.queries[query.id] = query
        self.query_changed(query)
        self.push_update(bot, "callback_query", query.as_update_payload())
        await asyncio.sleep(0)
        return query

    def _find_tapped(
        self, user: SimUser, bot: BotAccount, message: StoredMessage | dict[str, Any] | int
    ) -> StoredMessage:
        if isinstance(message, StoredMessage):
            stored: StoredMessage | None = message
            chat = message.chat
        else:
            message_id = message if isinstance(message, int) else int(message["message_id"])
            chat_id = user.id if isinstance(message, int) else int(message["chat"]["id"])
            chat = self.groups.get(chat_id) or self.private_chat(bot, user)
            stored = chat.message(message_id)
        if stored is None or stored.deleted:
            raise SimulationError("that message is not in the chat (deleted?)")
        if chat.is_private:
            if chat.user is not user:
                raise SimulationError(f"{user!r} cannot see {stored!r}")
        elif not (chat.members.get(user.id) and chat.members[user.id].is_present):
            raise SimulationError(f"{user!r} is not a member of {chat!r}")
        return stored

    def set_blocked(self, user: SimUser, bot: BotAccount, blocked: bool) -> None:
        if (bot.id in user.blocked) == blocked:
            return
        if blocked:
            user.blocked.add(bot.id)
        else:
            user.blocked.discard(bot.id)
        if bot.id not in user.started:
            return
        chat = self.private_chat(bot, user)
        member = Member(bot, "member").as_chat_member()
        kicked = Member(bot, "kicked").as_chat_member()
        self.push_update(
            bot,
            "my_chat_member",
            {
                "chat": chat.as_chat(),
                "from": user.as_user(),
                "date": self.date(),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
        )
