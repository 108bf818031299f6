"""Settings: defaults that work, wrong values named, and .env.example in step with the class."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import DEFAULT_DATABASE_URL, ConfigurationError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets counts: no developer .env, no variables from the shell."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_work_without_any_configuration() -> None:
    settings = load_settings()
    assert settings.sandbox
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.sqlite_path == Path("data/hearback.db")
    assert settings.telegram_api_url == ""
    assert settings.admin_ids == []
    assert settings.timezone == "UTC"
    assert settings.log_level == "INFO"


def test_lists_and_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "111, 222 333")
    monkeypatch.setenv("API_KEYS", "k" * 16 + "," + "m" * 20)
    monkeypatch.setenv("BOT_TOKEN", "123456:ABCdef")
    monkeypatch.setenv("log_level", "debug")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example/hb")
    settings = load_settings()
    assert settings.admin_ids == [111, 222, 333]
    assert [key.get_secret_value() for key in settings.api_keys] == ["k" * 16, "m" * 20]
    assert not settings.sandbox
    assert settings.log_level == "DEBUG"
    assert settings.database_url == "postgresql+asyncpg://u:p@db.example/hb"
    assert settings.sqlite_path is None


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Europe/Berlin\nBUSINESS_NAME=Rice Shop\n")
    settings = load_settings()
    assert settings.timezone == "Europe/Berlin"
    assert settings.business_name == "Rice Shop"


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        ("DATABASE_URL", "mysql://x/y", "must start with sqlite+aiosqlite:// or postgresql"),
        ("TELEGRAM_API_URL", "ftp://host", "must be an http:// or https:// URL"),
        ("ADMIN_IDS", "12,alice", "must be numeric Telegram user ids (got 'alice')"),
        ("TIMEZONE", "Mars/Olympus", "must be an IANA time zone"),
        ("LOG_LEVEL", "LOUD", "must be one of 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("API_KEYS", "short", "at least 16 characters"),
        ("LINK_SECRET", "short", "at least 16 characters long, or empty"),
        ("HTTP_PORT", "70000", "less than or equal to 65535"),
        ("HTTP_PORT", "eighty", "valid integer"),
        ("BOT_TOKEN", "not-a-token", "must look like 123456789:AA"),
        ("STATS_ROLLUP_EVERY", "0", "must be at least 1m"),
    ],
)
def test_a_wrong_value_names_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, explanation: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{variable}: " in message
    assert explanation in message


def test_every_wrong_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEZONE", "Nowhere")
    monkeypatch.setenv("HTTP_PORT", "-1")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "TIMEZONE: " in str(caught.value)
    assert "HTTP_PORT: " in str(caught.value)


def test_start_up_stops_with_the_message_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEZONE", "Nowhere")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert "TIMEZONE: must be an IANA time zone" in err
    assert "Traceback" not in err


def test_config_command_hides_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123456:SECRETSECRET")
    monkeypatch.setenv("API_KEYS", "s" * 24)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "SECRETSECRET" not in out
    assert "s" * 24 not in out
    assert re.search(r"^BOT_TOKEN\s+\(set\)", out, re.MULTILINE)
    assert re.search(r"^API_KEYS\s+\(1 key\)", out, re.MULTILINE)


def test_env_example_lists_every_setting_with_a_comment_and_a_working_default() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented: dict[str, str] = {}
    for index, line in enumerate(lines):
        if match := re.match(r"^([A-Z_]+)=(.*)$", line):
            assert lines[index - 1].startswith("# "), f"{match[1]} has no comment line above it"
            documented[match[1]] = match[2]
    assert set(documented) == {name.upper() for name in Settings.model_fields}
    # The example's values are the defaults: copying it unchanged must give a working setup.
    example = Settings(_env_file=None, **{k.lower(): v for k, v in documented.items()})
    assert example.model_dump() == Settings(_env_file=None).model_dump()
