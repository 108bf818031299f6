"""Getting updates: long polling with offsets, and webhooks posted to a local server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.emulator import BotAccount, Emulator, SimUser

from .conftest import Raw, expect


async def test_offset_confirms_earlier_updates(api: Raw, anna: SimUser, bot_account) -> None:
    for text in ("one", "two", "three"):
        await anna.send(bot_account, text)
    first = expect(await api("getUpdates", limit=2), 200).result
    assert [u["message"]["text"] for u in first] == ["one", "two"]
    again = expect(await api("getUpdates"), 200).result
    assert len(again) == 3  # nothing was confirmed yet
    rest = expect(await api("getUpdates", offset=first[-1]["update_id"] + 1), 200).result
    assert [u["message"]["text"] for u in rest] == ["three"]
    assert expect(await api("getUpdates", offset=rest[-1]["update_id"] + 1), 200).result == []


async def test_negative_offset_keeps_the_last_updates(api: Raw, anna: SimUser, bot_account) -> None:
    for text in ("one", "two", "three"):
        await anna.send(bot_account, text)
    last = expect(await api("getUpdates", offset=-1), 200).result
    assert [u["message"]["text"] for u in last] == ["three"]
    assert len(bot_account.updates) == 1


async def test_a_long_poll_wakes_when_a_user_writes(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    poll = asyncio.create_task(api("getUpdates", timeout=10))
    await emu.wait_for(lambda: bot_account.poll_generation == 1)
    assert not poll.done()
    await anna.send(bot_account, "/start")
    reply = await asyncio.wait_for(poll, 5)
    assert [u["message"]["text"] for u in expect(reply, 200).result] == ["/start"]


async def test_a_long_poll_times_out_empty(api: Raw) -> None:
    reply = await api("getUpdates", timeout=1)
    assert expect(reply, 200).result == []


async def test_a_second_poller_ends_the_first_with_409(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    first = asyncio.create_task(api("getUpdates", timeout=10))
    await emu.wait_for(lambda: bot_account.poll_generation == 1)  # the first poll is waiting
    second = asyncio.create_task(api("getUpdates", timeout=0))
    expect(
        await asyncio.wait_for(first, 5),
        409,
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )
    expect(await second, 200)


async def test_allowed_updates_filter_later_updates(
    api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    expect(await api("getUpdates", allowed_updates=["callback_query"]), 200)
    await anna.send(bot_account, "ignored")
    assert expect(await api("getUpdates"), 200).result == []
    expect(await api("getUpdates", allowed_updates=[]), 200)  # back to the default set
    await anna.send(bot_account, "seen")
    assert [u["message"]["text"] for u in expect(await api("getUpdates"), 200).result] == ["seen"]


async def test_stopping_answers_a_pending_long_poll(
    emu: Emulator, api: Raw, bot_account: BotAccount
) -> None:
    poll = asyncio.create_task(api("getUpdates", timeout=30))
    await emu.wait_for(lambda: bot_account.poll_generation == 1)
    await emu.stop()
    assert expect(await asyncio.wait_for(poll, 5), 200).result == []


async def test_duplicate_updates_are_served_again_once(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    emu.faults.duplicate_updates(1)
    await anna.send(bot_account, "answer: 5")
    (update,) = expect(await api("getUpdates"), 200).result
    (again,) = expect(await api("getUpdates", offset=update["update_id"] + 1), 200).result
    assert again == update
    assert expect(await api("getUpdates", offset=update["update_id"] + 1), 200).result == []


# -- webhooks ----------------------------------------------------------------------------------


class Receiver:
    """A local webhook endpoint that records what it was posted and answers as told."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, Any], str | None]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.reply: dict[str, Any] | None = None
        self.url = ""
        # While set, each post is held open until `release` is set: how many arrive at once.
        self.release: asyncio.Event | None = None
        self.open_now = 0
        self.most_open = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append((body, request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        if self.release is not None:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            try:
                await self.release.wait()
            finally:
                self.open_now -= 1
        status = self.statuses.pop(0) if self.statuses else 200
        reply, self.reply = self.reply, None
        return web.json_response(reply or {}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    hook.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield hook
    await runner.cleanup()


async def test_a_webhook_receives_updates_with_the_secret(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount, receiver: Receiver
) -> None:
    expect(await api("setWebhook", url=receiver.url, secret_token="s3cret"), 200)
    await anna.send(bot_account, "/start")
    await emu.wait_for(lambda: receiver.posts)
    body, secret = receiver.posts[0]
    assert body["message"]["text"] == "/start" and secret == "s3cret"
    await emu.wait_for(lambda: not bot_account.updates)
    info = expect(await api("getWebhookInfo"), 200).result
    assert info == {
        "url": receiver.url,
        "has_custom_certificate": False,
        "pending_update_count": 0,
        "max_connections": 40,
    }


async def test_getupdates_conflicts_with_a_webhook(api: Raw, receiver: Receiver) -> None:
    expect(await api("setWebhook", url=receiver.url), 200)
    expect(
        await api("getUpdates"),
        409,
        "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    )
    expect(await api("deleteWebhook"), 200)
    expect(await api("getUpdates"), 200)


async def test_failed_deliveries_are_retried_and_reported(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount, receiver: Receiver
) -> None:
    receiver.statuses = [500, 502]
    expect(await api("setWebhook", url=receiver.url), 200)
    await anna.send(bot_account, "/start")
    await emu.wait_for(lambda: emu.stats.webhook_deliveries == 1)
    assert [p[0]["update_id"] for p in receiver.posts] == [receiver.posts[0][0]["update_id"]] * 3
    info = expect(await api("getWebhookInfo"), 200).result
    assert info["last_error_message"] == "Wrong response from the webhook: 502 Bad Gateway"
    assert emu.stats.webhook_failures == 2 and emu.stats.webhook_deliveries == 1


async def test_delete_webhook_can_drop_pending_updates(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount
) -> None:
    expect(await api("setWebhook", url="http://127.0.0.1:9/unreachable"), 200)
    await anna.send(bot_account, "/start")
    info = expect(await api("getWebhookInfo"), 200).result
    assert info["pending_update_count"] == 1
    expect(await api("deleteWebhook", drop_pending_updates=True), 200)
    assert expect(await api("getUpdates"), 200).result == []


async def test_webhooks_only_go_to_loopback(api: Raw) -> None:
    reply = await api("setWebhook", url="https://example.com/hook")
    expect(
        reply,
        400,
        "Bad Request: bad webhook: the emulator delivers webhooks to loopback addresses only",
    )
    reply = await api("setWebhook", url="ftp://127.0.0.1/hook")
    expect(reply, 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
    reply = await api("setWebhook", url="http://127.0.0.1/hook", secret_token="no spaces")
    expect(reply, 400, "Bad Request: bad webhook: secret token contains unallowed characters")


async def test_a_webhook_may_answer_with_a_method(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount, receiver: Receiver
) -> None:
    receiver.reply = {"method": "sendMessage", "chat_id": anna.id, "text": "Hi from the hook"}
    expect(await api("setWebhook", url=receiver.url), 200)
    await anna.send(bot_account, "/start")
    await emu.wait_for(lambda: anna.inbox(bot_account))
    assert anna.inbox(bot_account)[0].text == "Hi from the hook"
    assert emu.calls_to("sendMessage")[-1].via == "webhook-reply"


async def test_a_webhook_gets_duplicates_when_asked(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount, receiver: Receiver
) -> None:
    emu.faults.duplicate_updates(1)
    expect(await api("setWebhook", url=receiver.url), 200)
    await anna.send(bot_account, "5")
    await emu.wait_for(lambda: len(receiver.posts) == 2)
    assert receiver.posts[0] == receiver.posts[1]
    await emu.wait_for(lambda: not bot_account.updates)
    assert json.dumps(receiver.posts[0][0])


async def test_posts_to_different_chats_overlap_up_to_max_connections(
    emu: Emulator, api: Raw, bot_account: BotAccount, receiver: Receiver
) -> None:
    people = [emu.add_user(first_name=f"Guest{n}") for n in range(6)]
    receiver.release = asyncio.Event()
    expect(await api("setWebhook", url=receiver.url, max_connections=4), 200)
    for person in people:
        await person.send(bot_account, "hello")
    await emu.wait_for(lambda: receiver.open_now == 4)
    await asyncio.sleep(0.1)
    assert receiver.most_open == 4, "no more than max_connections posts at once"
    receiver.release.set()
    await emu.wait_for(lambda: not bot_account.updates)
    assert sorted(p[0]["message"]["from"]["id"] for p in receiver.posts) == sorted(
        p.id for p in people
    )


async def test_one_chats_updates_are_posted_one_at_a_time_in_order(
    emu: Emulator, api: Raw, anna: SimUser, bot_account: BotAccount, receiver: Receiver
) -> None:
    ben = emu.add_user(first_name="Ben")
    receiver.release = asyncio.Event()
    expect(await api("setWebhook", url=receiver.url), 200)
    for n in range(3):
        await anna.send(bot_account, f"anna {n}")
    await ben.send(bot_account, "ben 0")
    # Anna's first and Ben's only update are out together; Anna's next ones wait their turn.
    await emu.wait_for(lambda: receiver.open_now == 2)
    await asyncio.sleep(0.1)
    assert [p[0]["message"]["text"] for p in receiver.posts] == ["anna 0", "ben 0"]
    receiver.release.set()
    await emu.wait_for(lambda: not bot_account.updates)
    annas = [
        p[0]["message"]["text"] for p in receiver.posts if p[0]["message"]["from"]["id"] == anna.id
    ]
    assert annas == ["anna 0", "anna 1", "anna 2"]
    assert receiver.most_open == 2
