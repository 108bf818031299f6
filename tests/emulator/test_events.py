"""The emulator's event log: every message sent, edited or deleted in any chat, every tap and its
answer, in order; read over the control API as a long poll or as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.emulator import TINY_PNG, BotAccount, Emulator, SimUser

from .conftest import Raw, expect


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emu.url) as session:
        yield session


async def get(client: aiohttp.ClientSession, path: str, **params: Any) -> tuple[int, Any]:
    async with client.get(path, params={k: str(v) for k, v in params.items()}) as response:
        return response.status, await response.json()


async def test_the_log_follows_a_chat_message_by_message_with_snapshots(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount, client: Any
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}
    sent = expect(
        await api("sendMessage", chat_id=started.id, text="Sure?", reply_markup=keyboard), 200
    )
    message_id = sent.result["message_id"]
    await started.tap(bot_account, message_id, "y")
    [query] = emu.world.queries.values()
    expect(await api("answerCallbackQuery", callback_query_id=query.id, text="Noted"), 200)
    expect(
        await api("editMessageText", chat_id=started.id, message_id=message_id, text="Sure."), 200
    )
    expect(await api("deleteMessage", chat_id=started.id, message_id=message_id), 200)

    status, body = await get(client, "/_emulator/events", since=0)
    assert status == 200
    events = body["events"]
    assert [e["type"] for e in events] == ["message", "message", "tap", "answer", "edit", "delete"]
    assert [e["seq"] for e in events] == list(range(1, 7)) and body["last"] == 6
    assert {e["chat_id"] for e in events} == {started.id}
    assert {e["bot_id"] for e in events} == {bot_account.id}
    assert events[0]["message"]["text"] == "/start"
    # The message as it was when sent, buttons and all, although it was edited and deleted since.
    assert events[1]["message"]["text"] == "Sure?"
    assert events[1]["message"]["reply_markup"] == keyboard
    assert events[2] == {
        **events[2],
        "user_id": started.id,
        "message_id": message_id,
        "data": "y",
        "label": "Yes",
    }
    assert (events[3]["text"], events[3]["show_alert"]) == ("Noted", False)
    assert events[4]["message"]["text"] == "Sure." and "reply_markup" not in events[4]["message"]
    assert events[5]["message"]["message_id"] == message_id

    # Since a sequence number: only what came after it.
    status, body = await get(client, "/_emulator/events", since=4)
    assert [e["type"] for e in body["events"]] == ["edit", "delete"]


async def test_events_of_one_chat_and_of_groups_and_topics(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount, client: Any
) -> None:
    lena = emu.add_user(first_name="Lena")
    forum = emu.add_group("Staff", forum=True, members=[lena])
    emu.add_bot_to_chat(bot_account, forum, admin=True, can_manage_topics=True)
    topic = expect(await api("createForumTopic", chat_id=forum.id, name="#1 · Anna"), 200).result
    thread = topic["message_thread_id"]
    await lena.send_to_chat(bot_account, forum, "On it", thread_id=thread)

    status, body = await get(client, "/_emulator/events", chat_id=forum.id)
    assert status == 200
    events = body["events"]
    assert [e["type"] for e in events] == ["message", "message"]
    assert events[0]["message"]["forum_topic_created"]["name"] == "#1 · Anna"
    assert events[1]["message"]["message_thread_id"] == thread
    assert events[1]["bot_id"] is None  # a group belongs to no one bot
    assert all(e["chat_id"] == forum.id for e in events)
    # Anna's chat is left out of the group's events, and the other way round.
    _, body = await get(client, "/_emulator/events", chat_id=started.id)
    assert [e["message"]["text"] for e in body["events"]] == ["/start"]


async def test_a_long_poll_waits_for_the_next_event_and_bad_input_is_refused(
    emu: Emulator, api: Raw, started: SimUser, client: Any
) -> None:
    last = emu.events.last
    waiting = asyncio.create_task(get(client, "/_emulator/events", since=last, wait=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing new yet: it waits
    expect(await api("sendMessage", chat_id=started.id, text="Hello"), 200)
    status, body = await asyncio.wait_for(waiting, 5)
    assert status == 200
    assert [e["message"]["text"] for e in body["events"]] == ["Hello"]

    # Nothing new and no wait: an empty answer at once.
    status, body = await get(client, "/_emulator/events", since=emu.events.last)
    assert (status, body["events"]) == (200, [])
    status, body = await get(client, "/_emulator/events", since="yesterday")
    assert status == 400 and "since must be an integer" in body["error"]
    status, body = await get(client, "/_emulator/events", wait="long")
    assert status == 400 and "wait" in body["error"]


async def read_stream(response: aiohttp.ClientResponse, count: int) -> list[tuple[int, dict]]:
    """The next ``count`` events of a server-sent event stream, as (id, data)."""
    found: list[tuple[int, dict]] = []
    event_id, data = None, None
    async with asyncio.timeout(10):
        while len(found) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                assert event_id is not None
                found.append((event_id, data))
                event_id, data = None, None
    return found


async def test_the_stream_sends_events_live_and_resumes_after_a_reconnect(
    emu: Emulator, api: Raw, started: SimUser, client: Any
) -> None:
    async with client.get("/_emulator/events/stream", params={"since": "0"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        [(first, start)] = await read_stream(response, 1)
        assert start["message"]["text"] == "/start" and first == start["seq"]
        expect(await api("sendMessage", chat_id=started.id, text="Live"), 200)
        [(second, live)] = await read_stream(response, 1)
        assert live["message"]["text"] == "Live" and second == first + 1

    # The browser reconnects with the last id it saw: only what it missed comes.
    expect(await api("sendMessage", chat_id=started.id, text="Missed"), 200)
    headers = {"Last-Event-ID": str(second)}
    async with client.get("/_emulator/events/stream", headers=headers) as response:
        [(_, missed)] = await read_stream(response, 1)
        assert missed["message"]["text"] == "Missed"


async def test_the_stream_ends_when_the_emulator_stops(emu_clock: Any) -> None:
    emulator = Emulator(clock=emu_clock)
    await emulator.start()
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{emulator.url}/_emulator/events/stream")
        assert response.status == 200
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(emulator.stop(), 5)
        # The stream ended at once rather than being cut off after the server's grace period.
        await asyncio.wait_for(response.read(), 5)
        assert loop.time() - began < 0.9
        response.release()


async def test_files_photos_documents_and_replies_over_the_control_api(
    emu: Emulator, api: Raw, started: SimUser, bot_account: BotAccount, client: Any
) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("photo", TINY_PNG, filename="chart.png", content_type="image/png")
    photo = expect(await api.multipart("sendPhoto", form), 200).result
    form = aiohttp.FormData()
    form.add_field("chat_id", str(started.id))
    form.add_field("document", b"visit,score\nV1,2\n", filename="export.csv")
    document = expect(await api.multipart("sendDocument", form), 200).result

    async with client.get(f"/_emulator/files/{photo['photo'][-1]['file_id']}") as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == TINY_PNG
    async with client.get(f"/_emulator/files/{document['document']['file_id']}") as response:
        assert response.status == 200 and response.content_type == "text/csv"
        assert await response.read() == b"visit,score\nV1,2\n"
    async with client.get("/_emulator/files/nonsense") as response:
        assert response.status == 404

    # A person answers a message as a reply to it.
    async with client.post(
        f"/_emulator/users/{started.id}/send",
        json={"text": "What is this?", "reply_to": document["message_id"]},
    ) as response:
        assert response.status == 200
        sent = await response.json()
    assert sent["reply_to_message"]["message_id"] == document["message_id"]
    assert emu.world.bots[bot_account.id].updates[-1]["message"]["reply_to_message"]
