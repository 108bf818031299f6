"""/link and /test_survey end to end: an admin asks in the private chat, the real bot answers
through the emulator, and a customer (or the admin as one) uses what came back.

The assertions are on what people see and on what the database kept.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import Application
from bot.callbacks import ScoreCallback
from bot.clock import FakeClock
from bot.emulator import BotAccount, Emulator, Limits, SimUser
from bot.emulator.world import StoredMessage
from bot.links import LINK_CREATED_ACTION
from bot.ratelimit import RateLimiter
from bot.settings import Settings
from bot.test_surveys import is_test_visit
from handlers import admin_links
from storage.models import Answer, AuditEntry, Survey, SurveyState, Visit, VisitSource
from tests.e2e.conftest import BUSINESS, QUICK, UNPACED, e2e_settings, replies, running
from tests.e2e.test_links import assert_qr_code_of

BOSS = 5_000_001  # an admin (ADMIN_IDS)
NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
LATE_EVENING = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)  # inside the default quiet hours
URL = re.compile(r"https://t\.me/hearback_test_bot\?start=([A-Za-z0-9_-]{1,64})")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return e2e_settings(database_url, admin_ids=[BOSS], worker_poll_interval=0.05)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
async def app(make_app, emulator: Emulator, clock: FakeClock) -> AsyncIterator[Application]:
    emulator.limits = Limits.off()
    async with running(make_app(clock=clock, limiter=RateLimiter(UNPACED, QUICK))) as started:
        yield started


@pytest.fixture
def boss(emulator: Emulator) -> SimUser:
    return emulator.add_user(first_name="Bea", user_id=BOSS)


async def settle(app: Application) -> None:
    for _ in range(100):
        await asyncio.sleep(0.05)
        if app.in_flight.count == 0:
            return


def bot_errors(emulator: Emulator) -> list[str]:
    return [f"{c.method} -> {c.status}" for c in emulator.calls if c.status != 200]


async def audit(app: Application) -> list[AuditEntry]:
    async with app.session_factory() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


# -- /link ---------------------------------------------------------------------------------------


async def test_link_sends_the_qr_code_as_a_photo_that_records_a_visit_when_scanned(
    app: Application,
    emulator: Emulator,
    telegram_bot: BotAccount,
    boss: SimUser,
    tmp_path: Path,
) -> None:
    [photo] = await replies(boss, telegram_bot, "/link Downtown")

    assert photo.kinds == ["photo"]
    url, _, explanation = (photo.caption or "").partition("\n\n")
    match = URL.fullmatch(url)
    assert match, photo.caption
    assert explanation == (
        "Print this at the counter. A customer who scans it and presses Start has a visit to "
        "Downtown recorded and gets a survey about it 2h later (moved out of quiet hours; none "
        "if they were asked within 30d)."
    )
    # The picture is exactly the QR code of that link (every module checked).
    assert photo.file is not None
    png = tmp_path / "qr.png"
    png.write_bytes(photo.file.data)
    assert_qr_code_of(png, url)

    # A customer who scans it is served as by any QR code at a counter.
    anna = emulator.add_user(first_name="Anna")
    [welcome] = await replies(anna, telegram_bot, f"/start {match[1]}")
    assert welcome.text == (
        "Thank you, Anna! I will ask you about your visit to Downtown at about 14:00."
    )
    async with app.session_factory() as session:
        visit = await session.scalar(select(Visit))
    assert visit is not None
    assert (visit.location, visit.staff, visit.source) == ("Downtown", None, VisitSource.LINK)

    [entry] = await audit(app)
    assert (entry.action, entry.actor_id, entry.actor_name) == (LINK_CREATED_ACTION, BOSS, "Bea")
    assert entry.target == "Downtown"
    assert entry.new_value["payload"] == match[1]
    assert bot_errors(emulator) == []


async def test_a_quoted_location_and_a_staff_member_make_their_own_link(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [plain] = await replies(boss, telegram_bot, "/link Downtown")
    # Phones turn " into curly quotes; either kind keeps the words together.
    [staffed] = await replies(boss, telegram_bot, "/link “Old Town” Anna")
    [again] = await replies(boss, telegram_bot, '/link "Old Town" Anna')

    staffed_url = (staffed.caption or "").split("\n\n")[0]
    assert "Print this at the counter for Anna." in (staffed.caption or "")
    assert "a visit to Old Town recorded" in (staffed.caption or "")
    assert staffed_url != (plain.caption or "").split("\n\n")[0]
    # The same target gives the same link: a reprinted QR code still works.
    assert (again.caption or "").split("\n\n")[0] == staffed_url

    payload = URL.fullmatch(staffed_url)[1]  # type: ignore[index]
    omar = emulator.add_user(first_name="Omar")
    await replies(omar, telegram_bot, f"/start {payload}")
    async with app.session_factory() as session:
        visit = await session.scalar(select(Visit))
    assert visit is not None
    assert (visit.location, visit.staff) == ("Old Town", "Anna")
    # Each request is recorded, also one that gave a link made before.
    assert [e.target for e in await audit(app)] == [
        "Downtown",
        "Old Town / Anna",
        "Old Town / Anna",
    ]


@pytest.mark.parametrize(
    "command",
    ["/link", "/link   ", '/link ""', "/link Downtown Anna extra", '/link "Old Town Anna'],
)
async def test_link_with_missing_extra_or_unclosed_words_answers_with_its_usage(
    app: Application, telegram_bot: BotAccount, boss: SimUser, command: str
) -> None:
    [answer] = await replies(boss, telegram_bot, command)
    assert answer.text == admin_links.LINK_USAGE
    assert await audit(app) == []


@pytest.mark.parametrize(
    ("field", "command"), [("location", "/link {long}"), ("staff", "/link Downtown {long}")]
)
async def test_a_name_longer_than_a_visit_holds_is_refused_with_the_limit(
    app: Application, telegram_bot: BotAccount, boss: SimUser, field: str, command: str
) -> None:
    [answer] = await replies(boss, telegram_bot, command.format(long="x" * 129))
    assert answer.text == (
        f"The {field} can be at most 128 characters; yours has 129. Please shorten it and send "
        "the command again."
    )
    assert await audit(app) == []
    # 128 is fine.
    [photo] = await replies(boss, telegram_bot, command.format(long="x" * 128))
    assert photo.kinds == ["photo"]


async def test_a_customer_typing_link_gets_the_unknown_command_answer(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    carl = emulator.add_user(first_name="Carl")
    [answer] = await replies(carl, telegram_bot, "/link Downtown")
    [made_up] = await replies(carl, telegram_bot, "/no_such_command")
    assert answer.text == made_up.text
    assert answer.text.startswith(texts.render(texts.UNKNOWN_COMMAND, name="Carl"))
    assert await audit(app) == []


# -- /test_survey --------------------------------------------------------------------------------


def score_data(survey: StoredMessage, score: int) -> str:
    survey_id = ScoreCallback.unpack(survey.callback_data[0]).survey_id
    return ScoreCallback(survey_id=survey_id, score=score).pack()


async def surveys_kept(app: Application) -> list[tuple[Survey, Visit]]:
    async with app.session_factory() as session:
        rows = await session.execute(
            select(Survey, Visit).join(Visit, Visit.id == Survey.visit_id).order_by(Survey.id)
        )
        return [(survey, visit) for survey, visit in rows]


async def test_a_test_survey_is_the_customers_survey_and_a_tap_plays_the_customers_flow(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    note, survey = await replies(boss, telegram_bot, "/test_survey", count=2)

    assert note.text == admin_links.TEST_SURVEY_NOTE
    assert survey.text == (
        f"How was your visit to {BUSINESS} today, Bea?\n\n" + texts.render(texts.SURVEY_HINT_CSAT)
    )
    assert [b["text"] for b in survey.buttons][-1].endswith("5")
    assert len(survey.buttons) == 5

    await boss.tap(telegram_bot, survey, score_data(survey, 5))
    for _ in range(200):
        if len(boss.inbox(telegram_bot)) >= 3:
            break
        await asyncio.sleep(0.05)
    thanks = boss.inbox(telegram_bot)[2]
    assert thanks.text.startswith("Thank you, Bea! We are delighted")
    edited = boss.chat_with(telegram_bot).message(survey.message_id)
    assert edited is not None and edited.text.endswith("Your score: 5 out of 5. Thank you!")

    [(row, visit)] = await surveys_kept(app)
    assert row.state is SurveyState.ANSWERED
    assert is_test_visit(visit.external_id)
    assert visit.location is None
    async with app.session_factory() as session:
        answer = await session.scalar(select(Answer).where(Answer.survey_id == row.id))
    assert answer is not None and answer.score == 5
    assert bot_errors(emulator) == []


async def test_a_test_survey_ignores_quiet_hours_and_the_cooldown_and_shows_a_location(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser, clock: FakeClock
) -> None:
    clock.set(LATE_EVENING)  # no customer is asked now
    await replies(boss, telegram_bot, "/test_survey", count=2)
    # Again at once, well inside the 30-day cooldown, about a named place.
    _, survey = await replies(boss, telegram_bot, '/test_survey "Old Town"', count=2)

    assert survey.text.startswith("How was your visit to Old Town today, Bea?")
    rows = await surveys_kept(app)
    assert [(s.state, v.location) for s, v in rows] == [
        (SurveyState.SENT, None),
        (SurveyState.SENT, "Old Town"),
    ]
    assert all(is_test_visit(v.external_id) for _, v in rows)
    # Test surveys send no reminder.
    await settle(app)
    async with app.session_factory() as session:
        assert all(s.reminder_sent_at is None for s in await session.scalars(select(Survey)))
    assert bot_errors(emulator) == []


async def test_an_admin_who_said_stop_is_told_how_to_turn_questions_on(
    app: Application, emulator: Emulator, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [question] = await replies(boss, telegram_bot, "/stop")
    await boss.tap(telegram_bot, question, label=texts.render(texts.BUTTON_STOP_YES))
    await settle(app)

    [answer] = await replies(boss, telegram_bot, "/test_survey")
    assert answer.text == admin_links.TEST_SURVEY_STOPPED
    assert await surveys_kept(app) == []


async def test_a_test_survey_location_longer_than_a_visit_holds_is_refused(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    [answer] = await replies(boss, telegram_bot, "/test_survey " + "y" * 129)
    assert answer.text == (
        "The location can be at most 128 characters; yours has 129. Please shorten it and send "
        "the command again."
    )
    [unclosed] = await replies(boss, telegram_bot, '/test_survey "Old Town')
    assert unclosed.text == admin_links.TEST_SURVEY_USAGE
    assert await surveys_kept(app) == []


async def test_a_customer_typing_test_survey_gets_the_unknown_command_answer(
    app: Application, emulator: Emulator, telegram_bot: BotAccount
) -> None:
    carl = emulator.add_user(first_name="Carl")
    [answer] = await replies(carl, telegram_bot, "/test_survey")
    assert answer.text.startswith(texts.render(texts.UNKNOWN_COMMAND, name="Carl"))
    await settle(app)
    assert len(carl.inbox(telegram_bot)) == 1
    assert await surveys_kept(app) == []


async def test_the_longest_location_and_staff_together_make_a_link_and_an_audit_entry(
    app: Application, telegram_bot: BotAccount, boss: SimUser
) -> None:
    location, staff = "L" * 128, "S" * 128
    [photo] = await replies(boss, telegram_bot, f"/link {location} {staff}")
    assert photo.kinds == ["photo"]
    assert len(photo.caption or "") <= 1024  # Telegram's caption limit
    [entry] = await audit(app)
    # The audit log's target holds 256 characters; the full names are in the new value.
    assert entry.target == f"{location} / {staff}"[:255] + "…"
    assert (entry.new_value["location"], entry.new_value["staff"]) == (location, staff)
