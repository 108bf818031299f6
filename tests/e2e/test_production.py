"""`hearback run` as production runs it: webhook mode, /metrics, logs in either format, and no
personal data in the logs at INFO."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import Emulator
from tests.e2e.test_process import HEARBACK, environment, stop
from tests.net import free_port

# Recognisable, and in nothing the bot says by itself: any hit in the logs is a leak.
NAME = "Zebediah"
USERNAME = "zebediah_quuxley"
WORDS = "the platypus soup was lukewarm"


async def spawn(tmp_path: Path, *args: str, **variables: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *HEARBACK,
        "run",
        *args,
        cwd=tmp_path,
        env=environment(tmp_path, **variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("log_format", "webhook"),
    [("text", False), ("json", True)],
    ids=["text-polling", "json-webhook"],
)
async def test_a_conversation_leaves_no_personal_data_in_the_info_logs(
    tmp_path: Path, database_url: str, log_format: str, webhook: bool
) -> None:
    async with Emulator() as emulator:
        account = emulator.add_bot(username="hearback_prod_bot", first_name="Rice Shop")
        http_port = free_port()
        variables = {
            "BOT_TOKEN": account.token,
            "TELEGRAM_API_URL": emulator.url,
            "DATABASE_URL": database_url,
            "HTTP_PORT": str(http_port),
            "BUSINESS_NAME": "Rice Shop",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": log_format,
        }
        args: list[str] = []
        if webhook:
            args = ["--webhook"]
            variables["WEBHOOK_URL"] = f"http://127.0.0.1:{http_port}/telegram"
            variables["WEBHOOK_SECRET"] = "prod-secret_123"
        process = await spawn(tmp_path, *args, **variables)
        try:
            person = emulator.add_user(first_name=NAME, last_name="Quux", username=USERNAME)
            await person.send(account, "/start")
            await emulator.wait_for(lambda: person.inbox(account), timeout=60)
            assert person.inbox(account)[0].text.startswith(f"Hello, {NAME}!")
            await person.send(account, WORDS)
            await emulator.wait_for(lambda: len(person.inbox(account)) >= 2, timeout=30)
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://127.0.0.1:{http_port}/metrics") as response,
            ):
                assert response.status == 200
                metrics = await response.text()
        finally:
            status, _, err = await stop(process, signal.SIGTERM)

    assert status == 0, err
    assert 'hearback_updates_total{result="handled"} 2.0' in metrics
    if webhook:
        assert emulator.calls_to("getUpdates") == []
        assert emulator.stats.webhook_deliveries == 2
        assert 'hearback_webhook_requests_total{result="accepted"} 2.0' in metrics
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("Stopped cleanly" in line for line in lines)
    if log_format == "json":
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= set(entries[0])
        assert any(e["message"] == "Stopped cleanly" for e in entries)
    else:
        assert all(line[:4].isdigit() for line in lines), lines
    for secret in (NAME, USERNAME, "Quux", "platypus", "lukewarm"):
        assert secret.lower() not in err.lower(), f"{secret!r} leaked into the logs:\n{err}"


async def test_webhook_mode_without_a_webhook_url_is_a_clear_start_up_error(
    tmp_path: Path,
) -> None:
    process = await spawn(tmp_path, "--webhook", BOT_TOKEN="123456:ABCdef")
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    message = err.decode()
    assert "WEBHOOK_URL: must be set for `hearback run --webhook`" in message
    assert "Traceback" not in message


async def test_a_webhook_secret_telegram_would_refuse_stops_start_up(tmp_path: Path) -> None:
    process = await spawn(
        tmp_path,
        "--webhook",
        BOT_TOKEN="123456:ABCdef",
        WEBHOOK_URL="https://bot.example.com/telegram",
        WEBHOOK_SECRET="not allowed!",
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "WEBHOOK_SECRET: must be 1-256 characters of A-Z, a-z, 0-9, _ and -" in err.decode()


async def test_a_webhook_url_telegram_refuses_stops_the_bot_with_why(
    tmp_path: Path, database_url: str
) -> None:
    async with Emulator() as emulator:
        account = emulator.add_bot(username="hearback_prod_bot", first_name="Rice Shop")
        process = await spawn(
            tmp_path,
            "--webhook",
            BOT_TOKEN=account.token,
            TELEGRAM_API_URL=emulator.url,
            DATABASE_URL=database_url,
            HTTP_PORT=str(free_port()),
            # The emulator, like Telegram for its own reasons, refuses this address.
            WEBHOOK_URL="https://bot.example.com/telegram",
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    message = err.decode()
    assert process.returncode == 1, message
    assert "Telegram refused WEBHOOK_URL https://bot.example.com/telegram: " in message
    assert "loopback addresses only" in message
    assert "Traceback" not in message
