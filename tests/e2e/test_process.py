"""`hearback run` as a process: it serves, stops cleanly on a signal, refuses bad config."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import Emulator
from tests.net import free_port

HEARBACK = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parents[2]


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment: only what the test sets, run from an empty directory (no .env)."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "SYSTEMROOT"}}
    env["PYTHONPATH"] = str(ROOT)
    env.update(variables)
    return env


async def spawn(tmp_path: Path, **variables: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *HEARBACK,
        "run",
        cwd=tmp_path,
        env=environment(tmp_path, **variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(sig)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"hearback did not stop within 20 s of {sig.name}") from None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_bot_process_greets_and_stops_cleanly_on_a_signal(
    tmp_path: Path, database_url: str, sig: signal.Signals
) -> None:
    async with Emulator() as emulator:
        account = emulator.add_bot(username="hearback_process_bot", first_name="Rice Shop")
        http_port = free_port()
        process = await spawn(
            tmp_path,
            BOT_TOKEN=account.token,
            TELEGRAM_API_URL=emulator.url,
            DATABASE_URL=database_url,
            HTTP_PORT=str(http_port),
            BUSINESS_NAME="Rice Shop",
        )
        try:
            anna = emulator.add_user(first_name="Anna")
            await anna.send(account, "/start")
            await emulator.wait_for(lambda: anna.inbox(account), timeout=30)
            assert anna.inbox(account)[0].text.startswith("Hello, Anna!")

            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://127.0.0.1:{http_port}/healthz") as response,
            ):
                assert response.status == 200
                assert (await response.json())["database"] == "ok"
        finally:
            status, _, err = await stop(process, sig)

    assert status == 0, err
    assert "Stopped cleanly" in err
    assert "Traceback" not in err


async def test_without_a_token_make_run_starts_the_sandbox(
    tmp_path: Path, database_url: str
) -> None:
    emulator_port, sandbox_port = free_port(), free_port()
    process = await spawn(
        tmp_path,
        DATABASE_URL=database_url,
        EMULATOR_PORT=str(emulator_port),
        HTTP_PORT=str(free_port()),
        SANDBOX_PORT=str(sandbox_port),
    )
    try:
        banner = ""
        while "Press Ctrl-C to stop." not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the sandbox exited before printing where it listens"
            banner += line.decode()
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        assert re.search(rf"Bot API emulator\s+{emulator_url}", banner)
        assert "/healthz" in banner
        page_url = f"http://127.0.0.1:{sandbox_port}"
        assert re.search(rf"Play it in a browser\s+{page_url}", banner)
        async with aiohttp.ClientSession() as client, client.get(page_url) as response:
            assert response.status == 200
            assert "Record a visit" in await response.text()

        # Play a customer through the emulator's control API, as the banner suggests.
        async with aiohttp.ClientSession(base_url=emulator_url) as client:
            async with client.post("/_emulator/users", json={"first_name": "Anna"}) as response:
                assert response.status in (200, 201)
                user = await response.json()
            user_id = user.get("id") or user["user"]["id"]
            async with client.post(
                f"/_emulator/users/{user_id}/send", json={"text": "/start"}
            ) as response:
                assert response.status in (200, 201), await response.text()
            for _ in range(100):
                async with client.get(f"/_emulator/chats/{user_id}/messages") as response:
                    messages = await response.json()
                texts = [m.get("text") for m in messages if m.get("from", {}).get("is_bot")]
                if texts:
                    break
                await asyncio.sleep(0.1)
        assert texts and texts[0].startswith("Hello, Anna!")
    finally:
        status, _, err = await stop(process, signal.SIGINT)
    assert status == 0, err


async def test_a_wrong_setting_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    process = await spawn(tmp_path, TIMEZONE="Mars/Olympus", HTTP_PORT="80000")
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    message = err.decode()
    assert "TIMEZONE: must be an IANA time zone" in message
    assert "HTTP_PORT: " in message
    assert "Traceback" not in message
