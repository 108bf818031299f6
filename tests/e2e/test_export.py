"""/export end to end: an admin receives the CSV document, and its bytes are the surveys; anyone
else's /export is answered like any unknown command; a bad period, an empty period and one too
big for Telegram are each explained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.app import Application
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.export import EXPORT_ACTION, HEADER
from bot.periods import EXAMPLES
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from handlers import admin_export
from storage.models import AuditEntry, CaseSeverity, CaseState, SentimentLabel
from tests.e2e.conftest import QUICK, UNPACED, ask, e2e_settings, replies, running
from tests.e2e.test_admin import unknown_command_reply
from tests.services.test_export import CHINESE, add_reasons, add_survey, parse

BOSS = 5_300_001  # an admin through ADMIN_IDS
MEI = 5_300_002  # a customer
NOW = datetime(2026, 2, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[BOSS], timezone="Asia/Shanghai")


@pytest.fixture
async def app(make_app, emulator: Emulator) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    app = make_app(limiter=RateLimiter(UNPACED, QUICK), clock=FakeClock(NOW))
    async with running(app) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", user_id=BOSS)


@pytest.fixture
def mei(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Mei", user_id=MEI)


@pytest.fixture
async def january(app: Application) -> None:
    """Three surveys about visits in January (Shanghai time) and one test survey."""
    async with app.session_factory.begin() as session:
        reason = await add_reasons(session)
        await add_survey(
            session,
            "POS-1",
            datetime(2026, 1, 3, 4, 30, tzinfo=UTC),
            score=1,
            comment=CHINESE,
            reasons=(reason["cold_food"], reason["rude"]),
            sentiment=SentimentLabel.NEGATIVE,
            contact=True,
            case={"state": CaseState.OPEN, "severity": CaseSeverity.CRITICAL},
        )
        await add_survey(session, "POS-2", datetime(2026, 1, 12, tzinfo=UTC), score=5)
        await add_survey(session, "=2+3", datetime(2026, 1, 31, 15, 59, tzinfo=UTC))
        await add_survey(session, "test:1:2:3", datetime(2026, 1, 5, tzinfo=UTC), score=1)


async def audit_entries(app: Application, *, expected: bool = False) -> list[AuditEntry]:
    """The export's audit entries, once written: the handler records the export after the
    document has gone, so the reply can arrive a moment before the entry (``expected``: wait
    for it)."""
    for _ in range(100 if expected else 1):
        async with app.session_factory() as session:
            entries = list(
                await session.scalars(select(AuditEntry).where(AuditEntry.action == EXPORT_ACTION))
            )
        if entries:
            return entries
        await asyncio.sleep(0.05)
    return []


async def test_an_admin_gets_the_surveys_of_a_month_as_a_csv_document(
    app: Application, telegram_bot: BotAccount, boss: SimUser, january: None
) -> None:
    [document] = await replies(boss, telegram_bot, "/export 2026-01")

    assert document["document"]["file_name"] == "hearback-2026-01.csv"
    assert document["document"]["mime_type"] == "text/csv"
    assert document.text == (
        "3 surveys about visits in January 2026, one row each; times in Asia/Shanghai. "
        "Opens as it is in Excel, Numbers or Google Sheets."
    )
    assert document.file is not None
    rows = parse(document.file.data)
    assert rows[0] == list(HEADER)
    shown = [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]
    assert [row["visit_id"] for row in shown] == ["POS-1", "POS-2", "'=2+3"]
    first = shown[0]
    assert first["occurred_at"] == "2026-01-03T12:30:00+08:00"
    assert first["comment"] == CHINESE
    assert first["reasons"] == "Cold food; Rude staff"
    assert (first["score"], first["sentiment"], first["contact_requested"]) == (
        "1",
        "negative",
        "yes",
    )
    assert (first["case_state"], first["case_severity"]) == ("open", "critical")
    assert [row["survey_state"] for row in shown] == ["answered", "answered", "answered"]

    [entry] = await audit_entries(app, expected=True)
    assert (entry.actor_id, entry.actor_name, entry.target) == (BOSS, "Bea", "January 2026")
    assert entry.new_value["rows"] == 3


async def test_without_a_period_the_last_30_days_are_exported(
    app: Application, telegram_bot: BotAccount, boss: SimUser, january: None
) -> None:
    [document] = await replies(boss, telegram_bot, "/export")

    # 11 Jan 12:00 .. 10 Feb 12:00 in Shanghai: POS-2 (12 Jan) and the last one (31 Jan).
    assert document["document"]["file_name"] == "hearback-2026-01-11-to-2026-02-10.csv"
    assert document.file is not None
    assert [row[0] for row in parse(document.file.data)[1:]] == ["POS-2", "'=2+3"]


async def test_a_customers_export_is_an_unknown_command(
    app: Application, telegram_bot: BotAccount, mei: SimUser, january: None
) -> None:
    assert await ask(mei, telegram_bot, "/export 2026-01") == unknown_command_reply("Mei")
    assert await audit_entries(app) == []


async def test_a_period_it_does_not_know_is_explained(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    reply = await ask(boss, telegram_bot, "/export last tuesday")

    assert reply == f"'last tuesday' is not a period I know. Try one of: {EXAMPLES}."


async def test_a_period_without_surveys_sends_no_file(
    app: Application, telegram_bot: BotAccount, boss: SimUser, january: None
) -> None:
    [reply] = await replies(boss, telegram_bot, "/export 2025-12")

    assert "document" not in reply
    assert reply.text == (
        "There are no surveys about visits in December 2025, so there is nothing to export. "
        "Try a longer period, e.g. /export 3m or /export all."
    )
    assert await audit_entries(app) == []


async def test_an_export_larger_than_telegram_takes_is_not_sent(
    app: Application,
    telegram_bot: BotAccount,
    boss: SimUser,
    january: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_export, "UPLOAD_LIMIT", 300)

    [reply] = await replies(boss, telegram_bot, "/export 2026-01")

    assert "document" not in reply
    assert reply.text == (
        "The export of January 2026 is larger than the 50 MB Telegram lets a bot send (it passed "
        "that after 3 surveys). Export a shorter period, e.g. /export lastweek, or run "
        "hearback export --period 2026-01 on the server, which has no size limit."
    )
    assert await audit_entries(app) == []
