"""The Emulator: one object that owns the emulated Telegram and serves it over HTTP.

The life of every Bot API call, in :meth:`Emulator.handle`:

1. the token must belong to a bot added with :meth:`Emulator.add_bot` (else 401 Unauthorized);
2. the method must exist in the spec, case-insensitively (else 404 "Not Found: method 'x' does
   not exist");
3. injected faults may answer instead (5xx, a held request, a 429 storm — faults.py);
4. the parameters are coerced and validated against the spec (400 on failure — spec.py);
5. the method runs against the world (methods.py), meeting flood limits (limits.py) on the way;
6. the call is recorded in :attr:`Emulator.calls` and counted in :attr:`Emulator.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from bot.emulator import methods
from bot.emulator.errors import ApiError, not_found, server_error, too_many_requests, unauthorized
from bot.emulator.events import EventLog
from bot.emulator.faults import Faults
from bot.emulator.limits import FloodControl, Limits, as_now, tells_wall_time
from bot.emulator.recording import Call, Stats
from bot.emulator.server import build_app
from bot.emulator.spec import Spec, Upload
from bot.emulator.webhook import WebhookDelivery
from bot.emulator.world import (
    BotAccount,
    Member,
    SimChat,
    SimUser,
    StoredMessage,
    World,
)


class WaitTimeout(AssertionError):
    """:meth:`Emulator.wait_for` gave up; the message says on what and what happened last."""


class Emulator:
    """A Telegram Bot API server on loopback, with simulated people, chats, limits and faults.

    ``clock``: monotonic seconds for flood limits, 429 storms and callback-query age — a
    callable or an object with ``now()``, returning a float or a datetime (datetimes also set
    message dates). Default: ``time.monotonic``. ``limits``: :class:`Limits` (``Limits.off()``
    for benchmarks). ``seed`` makes tokens, file ids and update ids reproducible.
    ``callback_timeout``: emulator seconds within which a callback query can be answered.
    ``webhook_retry_delay``: first pause before re-posting a failed webhook delivery.
    ``max_calls``: how many recorded calls to keep (the oldest are dropped beyond it, so a
    long-running sandbox does not grow without end; ``calls_dropped`` counts them).
    """

    def __init__(
        self,
        *,
        clock: Any = None,
        limits: Limits | None = None,
        seed: int = 0,
        spec: Spec | None = None,
        callback_timeout: float = 15.0,
        webhook_retry_delay: float = 0.05,
        max_calls: int = 100_000,
    ) -> None:
        self.now = as_now(clock)
        follows_clock = tells_wall_time(clock)
        self.spec = spec or Spec.load()
        self.faults = Faults(self.now)
        self.world = World(
            self.now,
            (lambda: int(self.now())) if follows_clock else (lambda: int(time.time())),
            self.faults,
            seed,
        )
        self.flood = FloodControl(limits or Limits(), self.now)
        self.webhooks = WebhookDelivery(self, retry_delay=webhook_retry_delay)
        self.api = methods.BotApi(
            self.world,
            self.flood,
            callback_timeout=callback_timeout,
            on_webhook_change=self.webhooks.changed,
        )
        self.world.on_update = self._on_update
        #: Messages appearing, changing and going in every chat, in order (events.py).
        self.events = EventLog(self.world)
        self.calls: list[Call] = []
        #: Called with every call as it is recorded (benchmarks watch replies this way rather
        #: than polling `calls`). A listener must be quick and must not raise.
        self.call_listeners: list[Callable[[Call], None]] = []
        self.calls_dropped = 0
        self.max_calls = max_calls
        self.stats = Stats()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- running ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; pass to ``TelegramAPIServer.from_base``."""
        if self._url is None:
            raise RuntimeError("the emulator is not running: await emu.start() first")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (port 0: a free one); return the base URL."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        bound = sock.getsockname()[1]
        self._url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
        self.api.stopping.clear()
        await self.webhooks.start()
        return self._url

    async def stop(self) -> None:
        """Answer pending long polls, release held requests, stop webhooks and the server."""
        if self._runner is None:
            return
        self.api.stopping.set()
        for bot in self.world.bots.values():
            bot.signal.fire()
        await self.webhooks.stop()
        await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the people and chats -----------------------------------------------------------------

    def add_bot(
        self,
        username: str = "hearback_bot",
        first_name: str = "Hearback",
        *,
        token: str | None = None,
        privacy_mode: bool = True,
    ) -> BotAccount:
        """Register a bot; ``token`` is made up (``<id>:AA…``, 35 characters after the colon)."""
        bot = self.world.add_bot(username, first_name, token, privacy_mode)
        if self._runner is not None:
            self.webhooks.changed(bot)
        return bot

    def add_user(
        self,
        first_name: str = "Anna",
        username: str | None = None,
        language_code: str | None = "en",
        *,
        last_name: str | None = None,
        is_premium: bool = False,
        user_id: int | None = None,
    ) -> SimUser:
        return self.world.add_user(
            first_name, username, language_code, last_name, is_premium, user_id
        )

    def add_group(
        self,
        title: str,
        forum: bool = False,
        members: Iterable[SimUser] = (),
        admins: Iterable[SimUser] = (),
        *,
        supergroup: bool = False,
        creator: SimUser | None = None,
        username: str | None = None,
    ) -> SimChat:
        """A basic group, or a supergroup (``supergroup=True``), or a forum (``forum=True``)."""
        return self.world.add_group(
            title,
            forum=forum,
            supergroup=supergroup,
            members=members,
            admins=admins,
            creator=creator,
            username=username,
        )

    def add_bot_to_chat(
        self,
        bot: BotAccount,
        chat: SimChat,
        admin: bool = False,
        can_manage_topics: bool = False,
        *,
        rights: dict[str, bool] | None = None,
        by: SimUser | None = None,
    ) -> Member:
        """Add (or promote) ``bot`` in ``chat``; the bot gets a ``my_chat_member`` update."""
        all_rights = {"can_manage_topics": can_manage_topics, **(rights or {})}
        status = "administrator" if admin else "member"
        return self.world.set_member(chat, bot, status, rights=all_rights, by=by)

    def remove_bot_from_chat(
        self, bot: BotAccount, chat: SimChat, *, kicked: bool = True, by: SimUser | None = None
    ) -> Member:
        return self.world.set_member(chat, bot, "kicked" if kicked else "left", by=by)

    def set_member(
        self,
        chat: SimChat,
        user: SimUser,
        status: str,
        *,
        rights: dict[str, bool] | None = None,
        by: SimUser | None = None,
    ) -> Member:
        """Change a person's status (creator/administrator/member/left/kicked) in a group."""
        return self.world.set_member(chat, user, status, rights=rights, by=by)

    def chat_messages(self, chat_id: int, bot: BotAccount | None = None) -> list[StoredMessage]:
        """What is in a chat now, oldest first (private chats: pass ``bot`` if several)."""
        return self.world.chat_messages(chat_id, bot)

    def find_bot(self, ref: int | str) -> BotAccount:
        """A bot by id, token or username (with or without @)."""
        world = self.world
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            found = world.bots.get(int(ref))
        elif ":" in ref:
            found = world.bots_by_token.get(ref)
        else:
            wanted = ref.lstrip("@").lower()
            found = next((b for b in world.bots.values() if b.username.lower() == wanted), None)
        if found is None:
            raise KeyError(f"no bot {ref!r}")
        return found

    # -- limits -------------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        return self.flood.limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        """Switch flood-limit settings; all buckets start full again."""
        self.flood.reset(value)

    # -- assertions ---------------------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive), optionally only (un)successful."""
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted and (ok is None or c.ok == ok)]

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,  # noqa: ASYNC109 - the public API takes a timeout
        *,
        interval: float = 0.01,
        message: str | None = None,
    ) -> Any:
        """Poll ``predicate`` (sync, or returning an awaitable) until truthy; return its value.

        Raises :class:`WaitTimeout` (an AssertionError) after ``timeout`` real seconds, naming
        the predicate and the last API calls, which usually shows why it never came true.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if loop.time() >= deadline:
                raise WaitTimeout(self._explain_wait(predicate, timeout, message))
            await asyncio.sleep(interval)

    def _explain_wait(self, predicate: Callable[[], Any], timeout: float, note: str | None) -> str:
        try:
            what = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            what = repr(predicate)
        recent = [
            f"  {c.method} -> {c.status}" + (f" {c.description}" if c.description else "")
            for c in self.calls[-8:]
        ]
        lines = [f"condition not met within {timeout}s: {note or what}"]
        lines.append("last API calls:" if recent else "no API calls were made")
        return "\n".join(lines + recent)

    # -- the pipeline -------------------------------------------------------------------------

    async def handle(
        self,
        token: str,
        name: str,
        raw: dict[str, Any],
        uploads: dict[str, Upload] | None = None,
        *,
        via: str = "http",
    ) -> tuple[int, dict[str, Any]]:
        """Run one Bot API call end to end; return (HTTP status, JSON body)."""
        bot = self.world.bots_by_token.get(token)
        spec_method = self.spec.method(name)
        canonical = spec_method.name if spec_method else name
        params: dict[str, Any] = dict(raw)
        fault: str | None = None
        hold: tuple[float | None, bool] | None = None
        try:
            if bot is None:
                raise unauthorized()
            if spec_method is None:
                raise not_found(f"method '{name}' does not exist")
            decision = self.faults.decide(canonical, methods.is_sending(canonical))
            if decision is not None:
                fault = decision.kind
                if decision.kind == "flood":
                    raise too_many_requests(decision.retry_after)
                if decision.kind == "error":
                    raise server_error(decision.status)
                hold = (decision.hold, decision.perform)
                raise server_error(504)
            params = self.spec.validate_call(spec_method, _legacy_reply(raw), uploads)
            result = await self.api.call(bot, canonical, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.status, exc.payload()
        # A snapshot: later edits must not change what this call answered.
        body = json.loads(json.dumps(body, ensure_ascii=False))
        self._record(Call(canonical, params, status, body, self.now(), token, fault, via))
        if hold is not None:
            await self._hold(bot, canonical, raw, uploads, *hold)
        return status, body

    async def _hold(
        self,
        bot: BotAccount | None,
        name: str,
        raw: dict[str, Any],
        uploads: dict[str, Upload] | None,
        seconds: float | None,
        perform: bool,
    ) -> None:
        """An injected timeout: maybe perform the call, then keep the client waiting."""
        if perform and bot is not None:
            spec_method = self.spec.method(name)
            assert spec_method is not None
            with contextlib.suppress(ApiError):
                params = self.spec.validate_call(spec_method, _legacy_reply(raw), uploads)
                await self.api.call(bot, name, params)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.api.stopping.wait()

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if len(self.calls) > self.max_calls + self.max_calls // 10:
            # Trim in chunks, not one by one: deleting from the front of a list is O(n).
            excess = len(self.calls) - self.max_calls
            del self.calls[:excess]
            self.calls_dropped += excess
        stats = self.stats
        stats.requests += 1
        stats.by_method[call.method] += 1
        stats.by_status[call.status] += 1
        if call.ok:
            stats.ok += 1
            if methods.is_sending(call.method):
                stats.messages_sent += 1
        else:
            stats.errors += 1
        if call.status == 429:
            stats.too_many_requests += 1
            if call.fault is None:
                stats.flood_limited += 1
        if call.fault == "error":
            stats.server_errors += 1
        if call.fault == "timeout":
            stats.timeouts += 1
        for listener in self.call_listeners:
            listener(call)

    def _on_update(self, bot: BotAccount) -> None:
        self.stats.updates_created += 1


def _legacy_reply(raw: dict[str, Any]) -> dict[str, Any]:
    """Telegram still honours ``reply_to_message_id``; map it onto ``reply_parameters``."""
    if raw.get("reply_to_message_id") in (None, "") or raw.get("reply_parameters"):
        return raw
    reply: dict[str, Any] = {"message_id": raw["reply_to_message_id"]}
    allow = raw.get("allow_sending_without_reply")
    if allow not in (None, ""):
        reply["allow_sending_without_reply"] = allow
    return {**raw, "reply_parameters": reply}
