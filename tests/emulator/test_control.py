"""The /_emulator/ control API, used by the sandbox and by tests in another process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.emulator import BotAccount, Emulator

from .conftest import Raw, expect


@pytest.fixture
async def control(emu: Emulator) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession(base_url=emu.url) as session:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with session.request(method, path, json=body) as response:
                return response.status, await response.json()

        yield call


async def test_playing_a_customer_over_http(
    emu: Emulator, control: Any, api: Raw, bot_account: BotAccount
) -> None:
    status, user = await control(
        "POST", "/_emulator/users", {"first_name": "Anna", "username": "anna"}
    )
    assert status == 200 and user["first_name"] == "Anna" and user["is_bot"] is False
    status, message = await control(
        "POST", f"/_emulator/users/{user['id']}/send", {"text": "/start"}
    )
    assert status == 200 and message["text"] == "/start"
    keyboard = {"inline_keyboard": [[{"text": "5", "callback_data": "score:5"}]]}
    sent = expect(
        await api("sendMessage", chat_id=user["id"], text="Rate", reply_markup=keyboard), 200
    )
    message_id = sent.result["message_id"]
    status, tap = await control(
        "POST",
        f"/_emulator/users/{user['id']}/tap",
        {"bot": "hearback_bot", "message_id": message_id, "data": "score:5"},
    )
    assert status == 200 and tap["data"] == "score:5"
    status, inbox = await control("GET", f"/_emulator/users/{user['id']}/inbox")
    assert [m["text"] for m in inbox] == ["Rate"]
    status, messages = await control("GET", f"/_emulator/chats/{user['id']}/messages")
    assert [m["text"] for m in messages] == ["/start", "Rate"]
    assert messages[1]["from"]["is_bot"] is True
    status, _ = await control(
        "POST", f"/_emulator/users/{user['id']}/block", {"bot": bot_account.token}
    )
    expect(await api("sendMessage", chat_id=user["id"], text="x"), 403)
    await control("POST", f"/_emulator/users/{user['id']}/unblock", {})
    for kind in ("sticker", "photo", "voice", "document"):
        status, message = await control(
            "POST", f"/_emulator/users/{user['id']}/send", {"kind": kind}
        )
        assert status == 200 and kind in message


async def test_groups_over_http(emu: Emulator, control: Any, bot_account: BotAccount) -> None:
    _, olga = await control("POST", "/_emulator/users", {"first_name": "Olga"})
    status, group = await control(
        "POST", "/_emulator/groups", {"title": "Staff", "forum": True, "admins": [olga["id"]]}
    )
    assert status == 200 and group["is_forum"] is True
    status, member = await control(
        "POST",
        f"/_emulator/chats/{group['id']}/bots",
        {"bot": bot_account.id, "admin": True, "can_manage_topics": True},
    )
    assert member["status"] == "administrator" and member["can_manage_topics"] is True
    status, said = await control(
        "POST", f"/_emulator/chats/{group['id']}/send", {"user": olga["id"], "text": "/stats"}
    )
    assert status == 200 and said["chat"]["id"] == group["id"]
    _, overview = await control("GET", "/_emulator")
    assert overview["bots"][0]["token"] == bot_account.token
    assert overview["groups"][0]["title"] == "Staff"


async def test_calls_stats_faults_and_limits_over_http(
    emu: Emulator, control: Any, api: Raw
) -> None:
    await api("getMe")
    status, calls = await control("GET", "/_emulator/calls?method=getme")
    assert status == 200 and calls[-1]["method"] == "getMe" and calls[-1]["status"] == 200
    status, active = await control(
        "POST", "/_emulator/faults", {"kind": "error", "count": 1, "status": 502}
    )
    assert active == [{"kind": "error", "remaining": 1, "status": 502}]
    expect(await api("getMe"), 502)
    await control("POST", "/_emulator/faults", {"kind": "flood", "seconds": 30})
    _, active = await control("GET", "/_emulator/faults")
    assert active[0]["kind"] == "flood"
    await control("POST", "/_emulator/faults", {"kind": "clear"})
    _, stats = await control("GET", "/_emulator/stats")
    assert stats["server_errors"] == 1 and stats["by_method"]["getMe"] == 2
    status, limits = await control("POST", "/_emulator/limits", {"enabled": False})
    assert status == 200 and limits["enabled"] is False and emu.limits.enabled is False


async def test_control_errors(control: Any, bot_account: BotAccount) -> None:
    assert (await control("POST", "/_emulator/users", {}))[0] == 400
    assert (await control("POST", "/_emulator/users/5/send", {"text": "x"}))[0] == 404
    _, user = await control("POST", "/_emulator/users", {"first_name": "Anna"})
    status, error = await control(
        "POST", f"/_emulator/users/{user['id']}/tap", {"message_id": 1, "data": "x"}
    )
    assert status == 400 and "not in the chat" in error["error"]
    assert (await control("POST", "/_emulator/faults", {"kind": "meteor"}))[0] == 400
    assert (await control("POST", "/_emulator/limits", {"speed": 1}))[0] == 400


async def test_python_m_bot_emulator_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        second = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = first.split()[-1]
        token = second.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/bot{token}/getMe") as response,
        ):
            assert (await response.json())["result"]["username"] == "hearback_bot"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
