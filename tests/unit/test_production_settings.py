"""WEBHOOK_URL, WEBHOOK_SECRET, LOG_FORMAT, DEDUPE_WINDOW: working defaults, wrong values named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import ConfigurationError, Settings, load_settings
from bot.webhook import default_secret

TOKEN = "123456:ABCdef"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_poll_and_log_text() -> None:
    settings = load_settings()
    assert (settings.webhook_url, settings.webhook_path) == ("", "")
    assert settings.webhook_secret.get_secret_value() == ""
    assert settings.log_format == "text"
    assert settings.dedupe_window == 10_000


def test_a_webhook_url_gives_the_path_the_bot_serves() -> None:
    settings = load_settings(
        bot_token=TOKEN,
        webhook_url=" https://bot.example.com/telegram/hook ",
        webhook_secret="A-b_9" * 10,
        log_format="JSON",
    )
    assert settings.webhook_url == "https://bot.example.com/telegram/hook"
    assert settings.webhook_path == "/telegram/hook"
    assert settings.webhook_secret.get_secret_value() == "A-b_9" * 10
    assert settings.log_format == "json"


def test_plain_http_is_allowed_only_with_a_bot_api_server_of_ones_own() -> None:
    with pytest.raises(ConfigurationError, match="WEBHOOK_URL: must be https://"):
        load_settings(bot_token=TOKEN, webhook_url="http://bot.example.com/telegram")
    settings = load_settings(
        bot_token=TOKEN,
        webhook_url="http://127.0.0.1:8081/telegram",
        telegram_api_url="http://127.0.0.1:8090",
    )
    assert settings.webhook_path == "/telegram"


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        ("WEBHOOK_URL", "bot.example.com/telegram", "must be an https:// URL"),
        ("WEBHOOK_URL", "https://bot.example.com", "must have a path"),
        ("WEBHOOK_URL", "https://bot.example.com/", "must have a path"),
        ("WEBHOOK_URL", "https://bot.example.com/metrics", "must not use the path /metrics"),
        ("WEBHOOK_URL", "https://bot.example.com/api/v1/x", "must not use the path"),
        ("WEBHOOK_URL", "https://bot.example.com/t?x=1", "must not have a ?query"),
        ("WEBHOOK_SECRET", "has space", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
        ("WEBHOOK_SECRET", "ünïcode", "must be 1-256 characters"),
        ("WEBHOOK_SECRET", "x" * 257, "must be 1-256 characters"),
        ("LOG_FORMAT", "xml", "must be one of 'text' or 'json'"),
        ("DEDUPE_WINDOW", "5", "DEDUPE_WINDOW: "),
        ("REDIS_URL", "localhost:6379", "must start with redis://, rediss:// or unix://"),
    ],
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, explanation: str
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{variable}: " in message
    assert explanation in message


def test_the_default_secret_is_the_same_for_every_worker_and_allowed_by_telegram() -> None:
    secret = default_secret(TOKEN)
    assert secret == default_secret(TOKEN) != default_secret("123456:Other")
    # The same rule the settings apply to WEBHOOK_SECRET.
    assert load_settings(bot_token=TOKEN, webhook_secret=secret).webhook_secret
    assert TOKEN.split(":")[1] not in secret


def test_config_shows_neither_the_webhook_secret_nor_the_redis_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "hush-hush-hush")
    monkeypatch.setenv("REDIS_URL", "redis://worker:pa55word@redis.internal:6379/0")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "hush-hush-hush" not in out and "pa55word" not in out
    assert "redis://worker:***@redis.internal:6379/0" in out
    assert re.search(r"^WEBHOOK_SECRET\s+\(set\)", out, re.MULTILINE)
