"""The Bot API methods the emulator implements, with Telegram's semantics and error texts.

Every handler gets the calling bot and parameters already validated and coerced against the
spec (spec.py), and returns the ``result`` of the answer or raises :class:`ApiError`. The
order of checks inside a sending method is: the chat (400 chat not found), the right to write
there (403), the topic, the content (text/caption length and entities, buttons), the replied
message, and last the flood limit — so a refused message never uses up a flood-limit token.

Notable Telegram behaviour reproduced on purpose:

- ``editMessageText`` without ``reply_markup`` removes the message's inline keyboard, and an
  edit that changes nothing is refused with "message is not modified: …";
- only inline keyboards are part of the Message object; a reply keyboard sent along with a
  message is kept on the stored message (``StoredMessage.keyboard``) for tests to inspect;
- a callback query can be answered once, within ``callback_timeout`` emulator seconds;
- bots in groups are checked for membership (400 chat not found when the bot never was there,
  403 not a member / kicked), and forum topics for existence, closure and rights.

Methods of the spec that are not implemented answer 400 "method X is not supported by the
emulator", so a test notices rather than getting a made-up success.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from bot.emulator import errors, media
from bot.emulator.errors import ApiError, bad_request, forbidden
from bot.emulator.formatting import MAX_CAPTION, MAX_TEXT, EntityParseError, parse_text
from bot.emulator.limits import FloodControl
from bot.emulator.spec import Upload
from bot.emulator.world import (
    DEFAULT_UPDATES,
    BotAccount,
    FileRecord,
    Member,
    SimChat,
    SimUser,
    StoredMessage,
    Topic,
    World,
)

Handler = Callable[["BotApi", BotAccount, dict[str, Any]], Awaitable[Any]]
_HANDLERS: dict[str, Handler] = {}

#: Methods that send a message and so count against flood limits (see limits.py).
SENDING_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendsticker",
        "sendvoice",
        "sendaudio",
        "sendvideo",
        "sendanimation",
        "sendvideonote",
        "sendmediagroup",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendinvoice",
        "sendgame",
        "sendpaidmedia",
        "sendchecklist",
        "sendlivephoto",
        "sendrichmessage",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
    }
)
EDITING_METHODS = frozenset({"editmessagetext", "editmessagecaption", "editmessagereplymarkup"})

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
#: The six colours Telegram allows for a forum topic's icon.
TOPIC_COLORS = frozenset({7322096, 16766590, 13338331, 9367192, 16749490, 16478047})
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LOOPBACK = ("localhost", "::1", "[::1]")
_MAX_DOWNLOAD = 20 * 1024 * 1024
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for the Bot API method ``name``."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[name] = handler
        return handler

    return register


def implemented_methods() -> list[str]:
    """Names of the Bot API methods the emulator implements, sorted."""
    return sorted(_HANDLERS)


class BotApi:
    """Runs Bot API methods against the emulator's world."""

    def __init__(
        self,
        world: World,
        flood: FloodControl,
        *,
        callback_timeout: float = 15.0,
        on_webhook_change: Callable[[BotAccount], None] = lambda bot: None,
    ) -> None:
        self.world = world
        self.flood = flood
        self.callback_timeout = callback_timeout
        self.on_webhook_change = on_webhook_change
        self.stopping = asyncio.Event()

    def supports(self, name: str) -> bool:
        return name in _HANDLERS

    async def call(self, bot: BotAccount, name: str, params: dict[str, Any]) -> Any:
        """Run the method ``name`` (canonical spelling) for ``bot``."""
        handler = _HANDLERS.get(name)
        if handler is None:
            raise bad_request(f"method {name} is not supported by the emulator")
        return await handler(self, bot, params)

    # -- chats and rights ---------------------------------------------------------------------

    def chat(self, bot: BotAccount, chat_id: int | str) -> SimChat:
        """The chat ``chat_id`` as ``bot`` can address it (400 chat not found otherwise)."""
        world = self.world
        if isinstance(chat_id, str):
            wanted = chat_id.lstrip("@").lower()
            for group in world.groups.values():
                if group.username and group.username.lower() == wanted:
                    return self._known_group(bot, group)
            raise bad_request("chat not found")
        if chat_id in world.groups:
            return self._known_group(bot, world.groups[chat_id])
        user = world.users.get(chat_id)
        if user is not None:
            return world.private_chat(bot, user)
        if chat_id in world.bots and chat_id != bot.id:
            raise forbidden("bot can't send messages to bots")
        raise bad_request("chat not found")

    @staticmethod
    def _known_group(bot: BotAccount, group: SimChat) -> SimChat:
        if bot.id not in group.members:
            raise bad_request("chat not found")
        return group

    def writable(self, bot: BotAccount, chat: SimChat) -> None:
        """Raise the 403 Telegram gives when ``bot`` may not write in ``chat``."""
        if chat.is_private:
            user = chat.user
            assert user is not None
            if user.deactivated:
                raise forbidden("user is deactivated")
            if bot.id in user.blocked:
                raise forbidden("bot was blocked by the user")
            if bot.id not in user.started:
                raise forbidden("bot can't initiate conversation with a user")
            return
        member = chat.members.get(bot.id)
        kind = "group chat" if chat.type == "group" else "supergroup chat"
        if member is None or member.status == "left":
            raise forbidden(f"bot is not a member of the {kind}")
        if member.status == "kicked":
            raise forbidden(f"bot was kicked from the {kind}")

    def thread(self, bot: BotAccount, chat: SimChat, thread_id: int | None) -> int | None:
        """Check the forum topic a message goes to; None for the chat itself / General."""
        if thread_id is None:
            return None
        topic = chat.topics.get(thread_id) if chat.is_forum else None
        if topic is None or topic.deleted:
            raise bad_request("message thread not found")
        member = chat.members.get(bot.id)
        if topic.closed and not (member and member.can("can_manage_topics")):
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    def reply_target(
        self, bot: BotAccount, chat: SimChat, params: dict[str, Any]
    ) -> StoredMessage | None:
        reply = params.get("reply_parameters")
        if not reply:
            return None
        source = chat
        if reply.get("chat_id") is not None:
            source = self.chat(bot, reply["chat_id"])
        target = source.message(reply["message_id"])
        if target is None and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        return target

    def take_flood_token(self, bot: BotAccount, chat: SimChat) -> None:
        retry_after = self.flood.acquire(bot.id, chat.id, chat.is_private)
        if retry_after:
            raise errors.too_many_requests(retry_after)

    # -- content ------------------------------------------------------------------------------

    @staticmethod
    def text_content(params: dict[str, Any]) -> dict[str, Any]:
        """text + entities after parsing, checked against Telegram's 1–4096 rule."""
        text, entities = _parse(params["text"], params.get("parse_mode"))
        if params.get("entities") and not params.get("parse_mode"):
            entities = params["entities"]
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    @staticmethod
    def caption_content(params: dict[str, Any]) -> dict[str, Any]:
        """caption + caption_entities, checked against Telegram's 1024 limit."""
        if params.get("caption") is None:
            return {}
        caption, entities = _parse(params["caption"], params.get("parse_mode"))
        if params.get("caption_entities") and not params.get("parse_mode"):
            entities = params["caption_entities"]
        if len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
        if entities and caption:
            content["caption_entities"] = entities
        return content

    @staticmethod
    def markup(params: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(inline keyboard for the Message, other keyboard kept aside), with button checks."""
        markup = params.get("reply_markup")
        if not markup:
            return None, None
        if "inline_keyboard" not in markup:
            return None, markup
        for row in markup["inline_keyboard"]:
            for button in row:
                check_button(button)
        return markup, None

    def media_file(self, value: Upload | str, kind: str) -> FileRecord:
        """The file behind a photo/document/… parameter: an upload, a file_id or a URL."""
        world = self.world
        if isinstance(value, Upload):
            if not value.data:
                raise bad_request("file must be non-empty")
            if kind in ("photo", "sticker"):
                size = media.image_size(value.data)
                if size is None:
                    raise bad_request("IMAGE_PROCESS_FAILED")
                return world.store_file(kind, value.data, width=size[0], height=size[1])
            return world.store_file(
                kind,
                value.data,
                file_name=value.filename,
                mime_type=media.guess_mime(value.filename, value.content_type),
            )
        existing = world.files.get(value)
        if existing is not None:
            if existing.kind != kind and kind != "document":
                raise bad_request(
                    f"can't use file of type {existing.kind.capitalize()} as {kind.capitalize()}"
                )
            return existing
        if urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc:
            name = urlsplit(value).path.rsplit("/", 1)[-1] or None
            return world.store_file(
                kind,
                b"",
                url=value,
                file_name=name,
                mime_type=media.guess_mime(name),
                width=320,
                height=320,
            )
        raise bad_request("wrong file identifier/HTTP URL specified")

    def media_content(self, kind: str, file: FileRecord, params: dict[str, Any]) -> dict[str, Any]:
        fields = self.world.file_fields(file)
        if kind == "photo":
            return {"photo": self.world.photo_sizes(file)}
        if kind == "document":
            document = dict(fields)
            if file.file_name:
                document["file_name"] = file.file_name
            if file.mime_type:
                document["mime_type"] = file.mime_type
            return {"document": document}
        if kind == "sticker":
            return {
                "sticker": {
                    **fields,
                    "type": "regular",
                    "width": file.width or 512,
                    "height": file.height or 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": params.get("emoji") or "🙂",
                }
            }
        voice = {**fields, "duration": int(params.get("duration") or 1)}
        voice["mime_type"] = file.mime_type or "audio/ogg"
        return {"voice": voice}

    # -- the common path of every sending method ---------------------------------------------

    def deliver(
        self,
        bot: BotAccount,
        params: dict[str, Any],
        build: Callable[[SimChat], tuple[dict[str, Any], FileRecord | None]],
    ) -> StoredMessage:
        """Checks in Telegram's order, then store the message ``build`` describes."""
        chat = self.chat(bot, params["chat_id"])
        self.writable(bot, chat)
        thread_id = self.thread(bot, chat, params.get("message_thread_id"))
        content, file = build(chat)
        inline, keyboard = self.markup(params)
        if inline is not None:
            content["reply_markup"] = inline
        reply_to = self.reply_target(bot, chat, params)
        self.take_flood_token(bot, chat)
        return self.world.new_message(
            chat,
            content,
            sender=bot,
            thread_id=thread_id,
            reply_to=reply_to,
            file=file,
            keyboard=keyboard,
        )

    def own_message(
        self, bot: BotAccount, params: dict[str, Any], missing: str = "message to edit not found"
    ) -> StoredMessage:
        """The message an edit refers to; must be the bot's own."""
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        if params.get("chat_id") is None:
            raise bad_request("chat_id is empty")
        if params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        chat = self.chat(bot, params["chat_id"])
        self.writable(bot, chat)
        message = chat.message(params["message_id"])
        if message is None:
            raise bad_request(missing)
        if message.bot_id != bot.id:
            raise bad_request("message can't be edited")
        return message

    def apply_edit(self, bot: BotAccount, message: StoredMessage, changes: dict[str, Any]) -> Any:
        """Apply an edit unless it changes nothing; returns the edited Message."""
        current = {k: message.data.get(k) for k in changes}
        if current == changes:
            raise bad_request(NOT_MODIFIED)
        if self.flood.limits.count_edits:
            self.take_flood_token(bot, message.chat)
        message.history.append(dict(message.data))
        for key, value in changes.items():
            if value is None:
                message.data.pop(key, None)
            else:
                message.data[key] = value
        message.data["edit_date"] = self.world.date()
        self.world.message_changed("edit", message)
        return message.data

    def topic_for_change(self, bot: BotAccount, params: dict[str, Any]) -> tuple[SimChat, Topic]:
        chat = self.chat(bot, params["chat_id"])
        self.writable(bot, chat)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        topic = chat.topics.get(params["message_thread_id"])
        if topic is None or topic.deleted:
            raise bad_request("TOPIC_ID_INVALID")
        member = chat.members[bot.id]
        if not member.can("can_manage_topics") and topic.creator_id != bot.id:
            raise bad_request("not enough rights to manage topics in the chat")
        return chat, topic

    def service_message(
        self, bot: BotAccount, chat: SimChat, topic: Topic, content: dict[str, Any]
    ) -> None:
        self.world.new_message(chat, content, sender=bot, thread_id=topic.thread_id)

    def scope_key(
        self, bot: BotAccount, params: dict[str, Any]
    ) -> tuple[str, int | None, int | None, str]:
        scope = params.get("scope") or {"type": "default"}
        chat_id = None
        if scope.get("chat_id") is not None:
            chat_id = self.chat(bot, scope["chat_id"]).id
        return scope["type"], chat_id, scope.get("user_id"), params.get("language_code") or ""


def check_button(button: dict[str, Any]) -> None:
    """Telegram's checks on one inline keyboard button."""
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        size = len(button["callback_data"].encode("utf-8"))
        if not 1 <= size <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        parts = urlsplit(button["url"])
        if parts.scheme not in ("http", "https", "tg") or not (parts.netloc or parts.path):
            raise bad_request("BUTTON_URL_INVALID")


def _parse(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    try:
        return parse_text(text, parse_mode)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def _member_or_left(chat: SimChat, account: SimUser | BotAccount) -> Member:
    return chat.members.get(account.id) or Member(account, "left")


# ---------------------------------------------------------------------------------------------
# Getting updates


@method("getMe")
async def get_me(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    return {
        **bot.as_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": not bot.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("getUpdates")
async def get_updates(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    if bot.webhook is not None:
        raise errors.conflict(
            "can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first"
        )
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.signal.fire()  # an older long poll of this bot ends with 409, as on Telegram
    if "allowed_updates" in p:
        bot.allowed_updates = frozenset(p["allowed_updates"]) or DEFAULT_UPDATES
    _confirm(bot, p.get("offset"))
    limit = min(max(p.get("limit", 100), 1), 100)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(p.get("timeout", 0), 0)
    while not bot.updates and not api.stopping.is_set():
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await bot.signal.wait(remaining)
        if bot.poll_generation != generation:
            raise errors.conflict(
                "terminated by other getUpdates request; "
                "make sure that only one bot instance is running"
            )
        if bot.webhook is not None:
            break
    return bot.updates[:limit]


def _confirm(bot: BotAccount, offset: int | None) -> None:
    """Forget updates below ``offset`` (negative: keep only the last -offset ones)."""
    if offset is None:
        return
    if offset < 0:
        bot.updates = bot.updates[offset:]
        return
    kept = []
    for update in bot.updates:
        update_id = update["update_id"]
        if update_id >= offset:
            kept.append(update)
        elif update_id in bot.duplicates:
            bot.duplicates.discard(update_id)
            kept.append(update)
    bot.updates = kept


@method("setWebhook")
async def set_webhook(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    parts = urlsplit(p["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    host = parts.hostname
    if not (host in _LOOPBACK or host.startswith("127.")):
        # The emulator runs tests on one machine: it never posts updates anywhere else.
        raise bad_request("bad webhook: the emulator delivers webhooks to loopback addresses only")
    secret = p.get("secret_token")
    if secret is not None and not _SECRET_TOKEN.match(secret):
        raise bad_request("bad webhook: secret token contains unallowed characters")
    if p.get("drop_pending_updates"):
        bot.updates.clear()
        bot.duplicates.clear()
    if "allowed_updates" in p:
        bot.allowed_updates = frozenset(p["allowed_updates"]) or DEFAULT_UPDATES
    bot.webhook = {
        "url": p["url"],
        "secret_token": secret,
        "max_connections": p.get("max_connections", 40),
        "ip_address": p.get("ip_address"),
    }
    bot.webhook_error = None
    bot.signal.fire()
    api.on_webhook_change(bot)
    return True


@method("deleteWebhook")
async def delete_webhook(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    bot.webhook = None
    bot.webhook_error = None
    if p.get("drop_pending_updates"):
        bot.updates.clear()
        bot.duplicates.clear()
    api.on_webhook_change(bot)
    return True


@method("getWebhookInfo")
async def get_webhook_info(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    info: dict[str, Any] = {
        "url": bot.webhook["url"] if bot.webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    if bot.webhook:
        info["max_connections"] = bot.webhook["max_connections"]
        if bot.webhook.get("ip_address"):
            info["ip_address"] = bot.webhook["ip_address"]
        if bot.allowed_updates != DEFAULT_UPDATES:
            info["allowed_updates"] = sorted(bot.allowed_updates)
    if bot.webhook_error:
        info["last_error_date"], info["last_error_message"] = bot.webhook_error
    return info


# ---------------------------------------------------------------------------------------------
# Sending


@method("sendMessage")
async def send_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    message = api.deliver(bot, p, lambda chat: (api.text_content(p), None))
    return message.data


def _send_media(kind: str) -> Handler:
    async def send(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
        def build(chat: SimChat) -> tuple[dict[str, Any], FileRecord | None]:
            caption = api.caption_content(p) if kind in ("photo", "document", "voice") else {}
            file = api.media_file(p[kind], kind)
            return {**api.media_content(kind, file, p), **caption}, file

        return api.deliver(bot, p, build).data

    return send


method("sendPhoto")(_send_media("photo"))
method("sendDocument")(_send_media("document"))
method("sendSticker")(_send_media("sticker"))
method("sendVoice")(_send_media("voice"))

_CONTENT_KEYS = ("text", "entities", "photo", "document", "sticker", "voice", "caption")
_SERVICE_KEYS = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
)


def _source_message(api: BotApi, bot: BotAccount, p: dict[str, Any], verb: str) -> StoredMessage:
    """The message copyMessage/forwardMessage takes; the bot needs only to have seen it."""
    message = api.chat(bot, p["from_chat_id"]).message(p["message_id"])
    if message is None:
        raise bad_request(f"message to {verb} not found")
    if any(key in message.data for key in _SERVICE_KEYS):
        raise bad_request(f"message can't be {'copied' if verb == 'copy' else 'forwarded'}")
    return message


@method("copyMessage")
async def copy_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    source = _source_message(api, bot, p, "copy")

    def build(chat: SimChat) -> tuple[dict[str, Any], FileRecord | None]:
        content = {k: source.data[k] for k in _CONTENT_KEYS if k in source.data}
        content.update({k: source.data[k] for k in ("caption_entities",) if k in source.data})
        if "text" not in content and p.get("caption") is not None:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(api.caption_content(p))
        return content, source.file

    return {"message_id": api.deliver(bot, p, build).message_id}


@method("forwardMessage")
async def forward_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    source = _source_message(api, bot, p, "forward")

    def build(chat: SimChat) -> tuple[dict[str, Any], FileRecord | None]:
        content = {k: source.data[k] for k in _CONTENT_KEYS if k in source.data}
        if "caption_entities" in source.data:
            content["caption_entities"] = source.data["caption_entities"]
        content["forward_origin"] = {
            "type": "user",
            "sender_user": source.data["from"],
            "date": source.data["date"],
        }
        return content, source.file

    return api.deliver(bot, p, build).data


@method("sendChatAction")
async def send_chat_action(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    api.thread(bot, chat, p.get("message_thread_id"))
    if p["action"] not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.last_action = p["action"]
    return True


# ---------------------------------------------------------------------------------------------
# Editing and deleting


@method("editMessageText")
async def edit_message_text(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    message = api.own_message(bot, p)
    if "text" not in message.data:
        raise bad_request("there is no text in the message to edit")
    content = api.text_content(p)
    inline, _ = api.markup(p)
    changes = {
        "text": content["text"],
        "entities": content.get("entities"),
        "reply_markup": inline,
    }
    return api.apply_edit(bot, message, changes)


@method("editMessageCaption")
async def edit_message_caption(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    message = api.own_message(bot, p)
    if "text" in message.data or not message.kinds:
        raise bad_request("there is no caption in the message to edit")
    content = api.caption_content(p)
    inline, _ = api.markup(p)
    changes = {
        "caption": content.get("caption"),
        "caption_entities": content.get("caption_entities"),
        "reply_markup": inline,
    }
    return api.apply_edit(bot, message, changes)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    message = api.own_message(bot, p)
    inline, _ = api.markup(p)
    return api.apply_edit(bot, message, {"reply_markup": inline})


def _deletable(bot: BotAccount, chat: SimChat, message: StoredMessage) -> bool:
    if chat.is_private or message.bot_id == bot.id:
        return True
    member = chat.members.get(bot.id)
    return bool(member and member.can("can_delete_messages"))


@method("deleteMessage")
async def delete_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    message = chat.message(p["message_id"])
    if message is None:
        raise bad_request("message to delete not found")
    if not _deletable(bot, chat, message):
        raise bad_request("message can't be deleted")
    api.world.delete_message(message)
    return True


@method("deleteMessages")
async def delete_messages(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    if not 1 <= len(p["message_ids"]) <= 100:
        raise bad_request("message_ids must contain 1-100 identifiers")
    for message_id in p["message_ids"]:
        message = chat.message(message_id)
        if message is not None and _deletable(bot, chat, message):
            api.world.delete_message(message)
    return True


@method("answerCallbackQuery")
async def answer_callback_query(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    query = api.world.queries.get(p["callback_query_id"])
    if (
        query is None
        or query.bot is not bot
        or query.answered
        or api.world.now() - query.created > api.callback_timeout
    ):
        raise bad_request(QUERY_TOO_OLD)
    text = p.get("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    query.answer = {key: p[key] for key in ("text", "show_alert", "url", "cache_time") if key in p}
    api.world.query_changed(query)
    return True


@method("pinChatMessage")
async def pin_chat_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    if chat.message(p["message_id"]) is None:
        raise bad_request("message to pin not found")
    member = chat.members.get(bot.id)
    if not chat.is_private and not (member and member.can("can_pin_messages")):
        raise bad_request("not enough rights to manage pinned messages in the chat")
    if p["message_id"] not in chat.pinned:
        chat.pinned.append(p["message_id"])
    return True


@method("unpinChatMessage")
async def unpin_chat_message(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    member = chat.members.get(bot.id)
    if not chat.is_private and not (member and member.can("can_pin_messages")):
        raise bad_request("not enough rights to manage pinned messages in the chat")
    target = p.get("message_id") or (chat.pinned[-1] if chat.pinned else None)
    if target in chat.pinned:
        chat.pinned.remove(target)
    return True


# ---------------------------------------------------------------------------------------------
# Forum topics


@method("createForumTopic")
async def create_forum_topic(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    api.writable(bot, chat)
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")
    if not chat.members[bot.id].can("can_manage_topics"):
        raise bad_request("not enough rights to create a topic")
    name = p["name"]
    if not 1 <= len(name) <= 128:
        raise bad_request("topic name must be 1-128 characters long")
    color = p.get("icon_color", 7322096)
    if color not in TOPIC_COLORS:
        raise bad_request("invalid icon_color specified")
    created = {"name": name, "icon_color": color}
    if p.get("icon_custom_emoji_id"):
        created["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
    thread_id = chat._next_message_id
    topic = Topic(thread_id, name, color, p.get("icon_custom_emoji_id"), creator_id=bot.id)
    chat.topics[thread_id] = topic
    api.service_message(bot, chat, topic, {"forum_topic_created": created})
    return {"message_thread_id": thread_id, **created}


@method("editForumTopic")
async def edit_forum_topic(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat, topic = api.topic_for_change(bot, p)
    edited: dict[str, Any] = {}
    if p.get("name") is not None and p["name"] != topic.name:
        if len(p["name"]) > 128:
            raise bad_request("topic name must be 1-128 characters long")
        edited["name"] = p["name"]
    emoji = p.get("icon_custom_emoji_id")
    if emoji is not None and emoji != (topic.icon_custom_emoji_id or ""):
        edited["icon_custom_emoji_id"] = emoji
    if not edited:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.name = edited.get("name", topic.name)
    topic.icon_custom_emoji_id = edited.get("icon_custom_emoji_id", topic.icon_custom_emoji_id)
    api.service_message(bot, chat, topic, {"forum_topic_edited": edited})
    return True


async def _set_closed(api: BotApi, bot: BotAccount, p: dict[str, Any], closed: bool) -> Any:
    chat, topic = api.topic_for_change(bot, p)
    if topic.closed == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.closed = closed
    key = "forum_topic_closed" if closed else "forum_topic_reopened"
    api.service_message(bot, chat, topic, {key: {}})
    return True


@method("closeForumTopic")
async def close_forum_topic(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    return await _set_closed(api, bot, p, True)


@method("reopenForumTopic")
async def reopen_forum_topic(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    return await _set_closed(api, bot, p, False)


@method("deleteForumTopic")
async def delete_forum_topic(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat, topic = api.topic_for_change(bot, p)
    if not chat.members[bot.id].can("can_delete_messages"):
        raise bad_request("not enough rights to delete the topic")
    topic.deleted = True
    for message in chat.topic_messages(topic.thread_id):
        api.world.delete_message(message)
    return True


# ---------------------------------------------------------------------------------------------
# Commands, menu button, profile texts


@method("setMyCommands")
async def set_my_commands(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    commands = p["commands"]
    if len(commands) > 100:
        raise bad_request("too many commands")
    for command in commands:
        if not _COMMAND_NAME.match(command["command"]):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(command["description"]) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = api.scope_key(bot, p)
    if commands:
        bot.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    else:
        bot.commands.pop(key, None)
    return True


@method("getMyCommands")
async def get_my_commands(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    return list(bot.commands.get(api.scope_key(bot, p), []))


@method("deleteMyCommands")
async def delete_my_commands(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    bot.commands.pop(api.scope_key(bot, p), None)
    return True


@method("setChatMenuButton")
async def set_chat_menu_button(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat_id = None
    if p.get("chat_id") is not None:
        chat = api.chat(bot, p["chat_id"])
        if not chat.is_private:
            raise bad_request("chat not found")
        chat_id = chat.id
    bot.menu_buttons[chat_id] = p.get("menu_button") or {"type": "default"}
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat_id = p.get("chat_id")
    return bot.menu_buttons.get(chat_id) or bot.menu_buttons.get(None) or {"type": "default"}


def _profile_text(field: str, limit: int) -> tuple[Handler, Handler]:
    async def set_text(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
        value = p.get(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} must be at most {limit} characters long")
        bot.texts[(field, p.get("language_code") or "")] = value
        if field == "name" and value and not p.get("language_code"):
            bot.first_name = value
        return True

    async def get_text(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
        value = bot.texts.get((field, p.get("language_code") or ""))
        if value is None and field == "name":
            value = bot.first_name
        return {field: value or ""}

    return set_text, get_text


for _field, _limit, _suffix in (
    ("name", 64, "Name"),
    ("description", 512, "Description"),
    ("short_description", 120, "ShortDescription"),
):
    _set, _get = _profile_text(_field, _limit)
    method(f"setMy{_suffix}")(_set)
    method(f"getMy{_suffix}")(_get)


# ---------------------------------------------------------------------------------------------
# Chats and members


@method("getChat")
async def get_chat(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    if chat.is_private:
        assert chat.user is not None
        if bot.id not in chat.user.started:
            raise bad_request("chat not found")
    else:
        api.writable(bot, chat)
    info = {
        **chat.as_chat(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }
    if chat.description:
        info["description"] = chat.description
    return info


@method("getChatMember")
async def get_chat_member(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    user_id = p["user_id"]
    account: SimUser | BotAccount | None = api.world.users.get(user_id) or api.world.bots.get(
        user_id
    )
    if account is None:
        raise bad_request("user not found")
    if chat.is_private:
        if account is chat.user or account is bot:
            return Member(account, "member").as_chat_member()
        raise bad_request("user not found")
    api.writable(bot, chat)
    return _member_or_left(chat, account).as_chat_member()


@method("getChatAdministrators")
async def get_chat_administrators(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    if chat.is_private:
        raise bad_request("there are no administrators in the private chat")
    api.writable(bot, chat)
    order = {"creator": 0, "administrator": 1}
    admins = [m for m in chat.members.values() if m.status in order]
    admins.sort(key=lambda m: order[m.status])
    return [m.as_chat_member() for m in admins]


@method("getChatMemberCount")
async def get_chat_member_count(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    if chat.is_private:
        return 2
    api.writable(bot, chat)
    return sum(1 for m in chat.members.values() if m.is_present)


@method("leaveChat")
async def leave_chat(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    chat = api.chat(bot, p["chat_id"])
    if chat.is_private:
        raise bad_request("chat member status can't be changed in private chats")
    api.writable(bot, chat)
    api.world.set_member(chat, bot, "left", by=bot)
    return True


# ---------------------------------------------------------------------------------------------
# Files


@method("getFile")
async def get_file(api: BotApi, bot: BotAccount, p: dict[str, Any]) -> Any:
    record = api.world.files.get(p["file_id"])
    if record is None:
        raise bad_request("invalid file_id")
    if record.size > _MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": p["file_id"],
        "file_unique_id": record.file_unique_id,
        "file_size": record.size,
        "file_path": record.file_path,
    }


def is_sending(name: str) -> bool:
    """Whether a method sends a message (and so meets flood limits and 429 storms)."""
    return name.lower() in SENDING_METHODS


__all__ = [
    "EDITING_METHODS",
    "SENDING_METHODS",
    "ApiError",
    "BotApi",
    "implemented_methods",
    "is_sending",
]
