"""A small JSON control API under ``/_emulator/``, for the sandbox and out-of-process tests.

Everything a test does in-process (add people, make them write and tap, read chats, read the
call log, inject faults) can be done over HTTP here. Bodies are JSON objects (whatever the
Content-Type, so a bare ``curl -d '{…}'`` works). A success is answered 200 with the result
itself as JSON (a user, a list of messages, …); a failure with ``{"error": "…"}`` and status
400 (bad input) or 404 (unknown id).

========  ===================================  ================================================
Method    Path                                 Body / query
========  ===================================  ================================================
GET       /_emulator                           → url, bots (with tokens), users, groups
POST      /_emulator/bots                      {username, first_name, token?, privacy_mode?}
POST      /_emulator/users                     {first_name, username?, language_code?, …}
GET       /_emulator/users
POST      /_emulator/users/{id}/send           {bot, text, reply_to?} or {bot, kind: sticker|
                                               photo|voice|document, caption?}
POST      /_emulator/users/{id}/tap            {bot, message_id, data? | label?, chat_id?,
                                               forged?}
POST      /_emulator/users/{id}/block          {bot}   (and …/unblock)
GET       /_emulator/users/{id}/inbox          ?bot=
POST      /_emulator/groups                    {title, forum?, supergroup?, members?, admins?}
POST      /_emulator/chats/{id}/bots           {bot, admin?, can_manage_topics?}
POST      /_emulator/chats/{id}/send           {user, bot, text, thread_id?, reply_to?}
GET       /_emulator/chats/{id}/messages       ?bot=  (private chats with several bots)
GET       /_emulator/calls                     ?method=&since=<index> (indexes count
                                               from the first call ever made)
GET       /_emulator/events                    ?since=<seq>&chat_id=&wait=<seconds ≤ 30>
                                               → {events, last} (a long poll: waits for the
                                               first event after since)
GET       /_emulator/events/stream             ?since=&chat_id= → the same events as
                                               server-sent events (id: seq), resumed from
                                               Last-Event-ID after a reconnect
GET       /_emulator/files/{file_id}           → the file's bytes (photos, documents, …)
GET       /_emulator/stats
GET       /_emulator/faults
POST      /_emulator/faults                    {kind: error|fraction|timeout|flood|duplicate|
                                               clear, count?, status?, fraction?, seed?,
                                               hold?, perform?, seconds?, retry_after?,
                                               methods?}
POST      /_emulator/limits                    {enabled?, private_burst?, …} (Limits fields)
========  ===================================  ================================================

``bot`` may be a bot's id, token or username, and may be left out while there is one bot.
Messages are Bot API Message objects in their current state (after edits, without the deleted
ones); taps answer ``{"id": <callback query id>, "data": …}``. Events are described in
events.py: every message sent, edited or deleted in any chat, and every answered tap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.world import SimulationError, SimUser, StoredMessage

if TYPE_CHECKING:
    from bot.emulator.emulator import Emulator

Route = Callable[[web.Request], Awaitable[web.Response]]

#: Set when the server hosting the control routes shuts down, so open event streams end.
STOPPING_KEY = web.AppKey("control-stopping", asyncio.Event)
#: Longest long poll on /_emulator/events, and the keep-alive period of the stream.
MAX_WAIT = 30.0
KEEP_ALIVE = 15.0


class _BadInput(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def setup(app: web.Application, emu: Emulator) -> None:
    """Add the control routes to ``app``."""

    stopping = asyncio.Event()
    app[STOPPING_KEY] = stopping

    async def stop_streams(app: web.Application) -> None:
        stopping.set()
        emu.events.signal.fire()  # wakes the waiting streams and long polls, which then see it

    app.on_shutdown.append(stop_streams)

    def route(handler: Callable[[web.Request, dict[str, Any]], Awaitable[Any]]) -> Route:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                body: dict[str, Any] = {}
                if request.body_exists:
                    body = json.loads(await request.read() or b"{}")
                    if not isinstance(body, dict):
                        raise _BadInput("the body must be a JSON object")
                result = await handler(request, body)
            except _BadInput as exc:
                return _answer({"error": str(exc)}, exc.status)
            except (SimulationError, ValueError, TypeError) as exc:
                return _answer({"error": str(exc)}, 400)
            return _answer(result)

        return wrapped

    def user(request: web.Request) -> SimUser:
        user_id = _int(request.match_info["user_id"], "user id")
        found = emu.world.users.get(user_id)
        if found is None:
            raise _BadInput(f"no user {user_id}", 404)
        return found

    def bot(ref: Any) -> Any:
        if ref is None:
            if len(emu.world.bots) == 1:
                return next(iter(emu.world.bots.values()))
            raise _BadInput("say which bot")
        try:
            return emu.find_bot(ref)
        except KeyError:
            raise _BadInput(f"no bot {ref!r}", 404) from None

    def group(request: web.Request) -> Any:
        chat_id = _int(request.match_info["chat_id"], "chat id")
        found = emu.world.groups.get(chat_id)
        if found is None:
            raise _BadInput(f"no group {chat_id}", 404)
        return found

    def users(ids: Any) -> list[SimUser]:
        out = []
        for ref in ids or []:
            found = emu.world.users.get(_int(ref, "user id"))
            if found is None:
                raise _BadInput(f"no user {ref}", 404)
            out.append(found)
        return out

    async def overview(request: web.Request, body: dict[str, Any]) -> Any:
        return {
            "url": emu.url,
            "bots": [
                {**b.as_user(), "token": b.token, "webhook": (b.webhook or {}).get("url")}
                for b in emu.world.bots.values()
            ],
            "users": [u.as_user() for u in emu.world.users.values()],
            "groups": [_group_view(g) for g in emu.world.groups.values()],
        }

    async def add_bot(request: web.Request, body: dict[str, Any]) -> Any:
        created = emu.add_bot(
            body.get("username", "hearback_bot"),
            body.get("first_name", "Hearback"),
            token=body.get("token"),
            privacy_mode=bool(body.get("privacy_mode", True)),
        )
        return {**created.as_user(), "token": created.token}

    async def add_user(request: web.Request, body: dict[str, Any]) -> Any:
        if not body.get("first_name"):
            raise _BadInput("first_name is required")
        created = emu.add_user(
            body["first_name"],
            body.get("username"),
            body.get("language_code", "en"),
            last_name=body.get("last_name"),
        )
        return created.as_user()

    async def list_users(request: web.Request, body: dict[str, Any]) -> Any:
        return [u.as_user() for u in emu.world.users.values()]

    async def send(request: web.Request, body: dict[str, Any]) -> Any:
        person, target = user(request), bot(body.get("bot"))
        kind = body.get("kind", "text")
        if kind == "text":
            if not body.get("text"):
                raise _BadInput("text is required")
            reply_to = body.get("reply_to")
            message = await person.send(
                target,
                body["text"],
                reply_to=None if reply_to is None else _int(reply_to, "reply_to"),
            )
        elif kind == "sticker":
            message = await person.send_sticker(target)
        elif kind == "photo":
            message = await person.send_photo(target, caption=body.get("caption"))
        elif kind == "voice":
            message = await person.send_voice(target)
        elif kind == "document":
            message = await person.send_document(target, caption=body.get("caption"))
        else:
            raise _BadInput(f"unknown kind {kind!r}")
        return _message_view(message)

    async def tap(request: web.Request, body: dict[str, Any]) -> Any:
        person, target = user(request), bot(body.get("bot"))
        if "message_id" not in body:
            raise _BadInput("message_id is required")
        message_id = _int(body["message_id"], "message_id")
        chat_id = body.get("chat_id")
        ref: Any = message_id
        if chat_id is not None:
            ref = {"message_id": message_id, "chat": {"id": _int(chat_id, "chat_id")}}
        query = await person.tap(
            target, ref, body.get("data"), label=body.get("label"), forged=bool(body.get("forged"))
        )
        return {"id": query.id, "data": query.data}

    async def block(request: web.Request, body: dict[str, Any]) -> Any:
        user(request).block(bot(body.get("bot")))
        return True

    async def unblock(request: web.Request, body: dict[str, Any]) -> Any:
        user(request).unblock(bot(body.get("bot")))
        return True

    async def inbox(request: web.Request, body: dict[str, Any]) -> Any:
        return [_message_view(m) for m in user(request).inbox(bot(request.query.get("bot")))]

    async def add_group(request: web.Request, body: dict[str, Any]) -> Any:
        if not body.get("title"):
            raise _BadInput("title is required")
        created = emu.add_group(
            body["title"],
            forum=bool(body.get("forum")),
            members=users(body.get("members")),
            admins=users(body.get("admins")),
            supergroup=bool(body.get("supergroup")),
        )
        return _group_view(created)

    async def add_bot_to_group(request: web.Request, body: dict[str, Any]) -> Any:
        chat = group(request)
        member = emu.add_bot_to_chat(
            bot(body.get("bot")),
            chat,
            admin=bool(body.get("admin")),
            can_manage_topics=bool(body.get("can_manage_topics")),
        )
        return member.as_chat_member()

    async def send_to_group(request: web.Request, body: dict[str, Any]) -> Any:
        chat = group(request)
        if body.get("user") is None:
            raise _BadInput("user is required")
        (person,) = users([body["user"]])
        if not body.get("text"):
            raise _BadInput("text is required")
        message = await person.send_to_chat(
            bot(body.get("bot")),
            chat,
            body["text"],
            thread_id=body.get("thread_id"),
            reply_to=body.get("reply_to"),
        )
        return _message_view(message)

    async def chat_messages(request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = _int(request.match_info["chat_id"], "chat id")
        which = bot(request.query["bot"]) if "bot" in request.query else None
        return [_message_view(m) for m in emu.chat_messages(chat_id, which)]

    async def calls(request: web.Request, body: dict[str, Any]) -> Any:
        since = _int(request.query.get("since", "0"), "since")
        wanted = request.query.get("method", "").lower()
        return [
            {"index": i, **c.as_dict()}
            for i, c in enumerate(emu.calls, start=emu.calls_dropped)
            if i >= since and (not wanted or c.method.lower() == wanted)
        ]

    def event_query(request: web.Request) -> tuple[int, int | None]:
        since = _int(
            request.headers.get("Last-Event-ID") or request.query.get("since", "0"), "since"
        )
        chat = request.query.get("chat_id")
        return since, None if chat is None else _int(chat, "chat_id")

    async def events(request: web.Request, body: dict[str, Any]) -> Any:
        since, chat_id = event_query(request)
        try:
            wait = min(max(float(request.query.get("wait", "0")), 0.0), MAX_WAIT)
        except ValueError:
            raise _BadInput("wait must be a number of seconds") from None
        found = await emu.events.wait(since, chat_id, wait, stopping)
        return {"events": found, "last": emu.events.last}

    async def event_stream(request: web.Request) -> web.StreamResponse:
        try:
            seq, chat_id = event_query(request)
        except _BadInput as exc:
            return _answer({"error": str(exc)}, exc.status)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        # Tell the browser how soon to reconnect when the stream breaks.
        await response.write(b"retry: 1000\n\n")
        try:
            while not stopping.is_set():
                found = await emu.events.wait(seq, chat_id, KEEP_ALIVE, stopping)
                if not found:
                    await response.write(b": keep-alive\n\n")
                    continue
                chunk = "".join(
                    f"id: {event['seq']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
                    for event in found
                )
                await response.write(chunk.encode("utf-8"))
                seq = found[-1]["seq"]
        except ConnectionResetError:
            pass  # the page was closed: nothing more to send
        return response

    async def file(request: web.Request) -> web.StreamResponse:
        record = emu.world.files.get(request.match_info["file_id"])
        if record is None:
            return _answer({"error": "no such file"}, 404)
        content_type = record.mime_type or _image_type(record.data)
        return web.Response(
            body=record.data,
            content_type=content_type,
            headers={"Cache-Control": "max-age=3600"},
        )

    async def stats(request: web.Request, body: dict[str, Any]) -> Any:
        return emu.stats.as_dict()

    async def faults(request: web.Request, body: dict[str, Any]) -> Any:
        return emu.faults.active

    async def inject(request: web.Request, body: dict[str, Any]) -> Any:
        kind = body.get("kind")
        f = emu.faults
        only = body.get("methods")
        if kind == "error":
            f.fail_next(
                int(body.get("count", 1)), status=int(body.get("status", 500)), methods=only
            )
        elif kind == "fraction":
            f.fail_fraction(
                float(body["fraction"]),
                status=int(body.get("status", 502)),
                seed=int(body.get("seed", 0)),
                methods=only,
            )
        elif kind == "timeout":
            hold = body.get("hold")
            f.timeout_next(
                int(body.get("count", 1)),
                hold=None if hold is None else float(hold),
                perform=bool(body.get("perform")),
                methods=only,
            )
        elif kind == "flood":
            retry = body.get("retry_after")
            f.flood(
                float(body.get("seconds", 10)),
                retry_after=None if retry is None else int(retry),
                methods=only,
            )
        elif kind == "duplicate":
            f.duplicate_updates(int(body.get("count", 1)))
        elif kind == "clear":
            f.clear()
        else:
            raise _BadInput("kind must be error, fraction, timeout, flood, duplicate or clear")
        return f.active

    async def limits(request: web.Request, body: dict[str, Any]) -> Any:
        known = {f.name for f in fields(emu.limits)}
        unknown = set(body) - known
        if unknown:
            raise _BadInput(f"unknown limit settings: {', '.join(sorted(unknown))}")
        emu.limits = emu.limits.but(**body)
        return {name: getattr(emu.limits, name) for name in sorted(known)}

    r = app.router
    r.add_get("/_emulator", route(overview))
    r.add_post("/_emulator/bots", route(add_bot))
    r.add_post("/_emulator/users", route(add_user))
    r.add_get("/_emulator/users", route(list_users))
    r.add_post("/_emulator/users/{user_id}/send", route(send))
    r.add_post("/_emulator/users/{user_id}/tap", route(tap))
    r.add_post("/_emulator/users/{user_id}/block", route(block))
    r.add_post("/_emulator/users/{user_id}/unblock", route(unblock))
    r.add_get("/_emulator/users/{user_id}/inbox", route(inbox))
    r.add_post("/_emulator/groups", route(add_group))
    r.add_post("/_emulator/chats/{chat_id}/bots", route(add_bot_to_group))
    r.add_post("/_emulator/chats/{chat_id}/send", route(send_to_group))
    r.add_get("/_emulator/chats/{chat_id}/messages", route(chat_messages))
    r.add_get("/_emulator/calls", route(calls))
    r.add_get("/_emulator/events", route(events))
    r.add_get("/_emulator/events/stream", event_stream)
    r.add_get("/_emulator/files/{file_id}", file)
    r.add_get("/_emulator/stats", route(stats))
    r.add_get("/_emulator/faults", route(faults))
    r.add_post("/_emulator/faults", route(inject))
    r.add_post("/_emulator/limits", route(limits))


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _BadInput(f"{what} must be an integer, got {value!r}") from None


def _image_type(data: bytes) -> str:
    """Photos are stored without a MIME type: read it from the first bytes."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"GIF8":
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _message_view(message: StoredMessage) -> dict[str, Any]:
    return message.data


def _group_view(chat: Any) -> dict[str, Any]:
    return {
        **chat.as_chat(),
        "members": [m.as_chat_member() for m in chat.members.values()],
        "topics": [
            {"message_thread_id": t.thread_id, "name": t.name, "closed": t.closed}
            for t in chat.topics.values()
            if not t.deleted
        ],
    }
