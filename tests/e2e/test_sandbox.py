"""The sandbox: the cast meets the bot through its own commands, the page's routes record visits
through the real HTTP API, and `hearback demo` plays the whole loop and prints it."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot import texts
from bot.sandbox import SANDBOX_DATABASE_URL, Sandbox, sandbox_settings
from bot.settings import Settings
from bot.values import QuietHours
from tests.e2e.conftest import e2e_settings
from tests.e2e.test_process import environment


def playable(database_url: str, **overrides: object) -> Settings:
    base = e2e_settings(
        database_url, emulator_port=0, sandbox_port=0, business_name="Rice Shop", **overrides
    )
    return sandbox_settings(base)


@pytest.fixture
async def sandbox(database_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(playable(database_url)) as running:
        yield running


def test_the_sandbox_plays_fast_where_the_environment_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    leftover = tmp_path / "data" / "sandbox.db"
    leftover.parent.mkdir()
    leftover.write_bytes(b"an old sandbox's world")
    given = Settings(_env_file=None, quiet_hours="22:00-07:00", followup_delay="2h")
    played = sandbox_settings(given)
    # What the environment set stays; the rest is made playable in minutes.
    assert played.quiet_hours == given.quiet_hours
    assert played.followup_delay == timedelta(hours=2)
    assert played.survey_cooldown == timedelta(0)
    assert played.business_name == "Rice Shop"
    # The page records visits through the real API, so there is a key, a long one.
    assert len(played.api_keys) == 1 and len(played.api_keys[0].get_secret_value()) >= 16
    # A fresh world needs a fresh database of its own, not data/hearback.db.
    assert played.database_url == SANDBOX_DATABASE_URL
    assert not leftover.exists()

    chosen = Settings(_env_file=None, database_url="sqlite+aiosqlite:///./mine.db")
    kept = sandbox_settings(chosen)
    assert kept.database_url == "sqlite+aiosqlite:///./mine.db"
    assert sandbox_settings(Settings(_env_file=None, quiet_hours="")).quiet_hours == (
        QuietHours.off()
    )


async def test_the_cast_met_the_bot_through_its_own_commands(sandbox: Sandbox) -> None:
    cast, app = sandbox.cast, sandbox.app
    assert cast is not None and app is not None
    for person in [cast.admin, *cast.customers]:
        locale = "zh_Hans" if (person.language_code or "").startswith("zh") else "en"
        [greeting] = person.inbox(cast.bot)
        assert greeting.text == texts.render(
            texts.GREETING, locale, name=person.first_name, business="Rice Shop"
        )
    assert any((p.language_code or "").startswith("zh") for p in cast.customers)
    # The staff forum was registered by the admin's /staff_here, and the bot may open topics.
    [staff_chat] = await app.staff_chats.list()
    assert staff_chat.chat_id == cast.group.id
    assert cast.group.messages[0].text == "/staff_here"
    assert cast.group.members[cast.bot.id].can("can_manage_topics")
    assert await app.roles.is_admin(cast.admin.id)
    assert not await app.roles.is_admin(cast.customers[0].id)


async def test_the_page_records_visits_through_the_api(sandbox: Sandbox) -> None:
    cast = sandbox.cast
    assert cast is not None
    chinese = next(p for p in cast.customers if (p.language_code or "").startswith("zh"))
    anna = cast.customers[0]
    async with aiohttp.ClientSession(base_url=sandbox.page_url) as client:
        async with client.get("/") as response:
            page = await response.text()
        assert response.status == 200
        for pane in ('id="customer"', 'id="staff"', 'id="admin"', "Record a visit"):
            assert pane in page
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere
        async with client.get("/static/sandbox.js") as response:
            assert response.status == 200
        async with client.get("/sandbox/world") as response:
            world = await response.json()
        assert [c["first_name"] for c in world["customers"]] == [
            c.first_name for c in cast.customers
        ]
        assert world["admin"]["id"] == cast.admin.id and world["group"]["id"] == cast.group.id
        assert (world["survey_delay"], world["followup_delay"]) == ("2h", "30s")

        # "now": the survey comes at once, in the customer's language.
        async with client.post(
            "/sandbox/visits", json={"customer_id": chinese.id, "now": True}
        ) as response:
            recorded = await response.json()
        assert recorded["status"] == 201, recorded
        assert recorded["answer"]["location"] == "Downtown"
        survey = await sandbox.emulator.wait_for(
            lambda: [m for m in chinese.inbox(cast.bot) if m.buttons], timeout=20
        )
        assert "Downtown" in survey[0].text and "How was" not in survey[0].text

        # Without "now" the survey waits SURVEY_DELAY.
        async with client.post(
            "/sandbox/visits", json={"customer_id": anna.id, "location": "Airport"}
        ) as response:
            later = await response.json()
        assert later["status"] == 201 and later["answer"]["location"] == "Airport"
        due = datetime.fromisoformat(later["answer"]["survey"]["due_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=119) < due - datetime.now(UTC) <= timedelta(hours=2)
        await asyncio.sleep(1.5)
        assert len(anna.inbox(cast.bot)) == 1  # still only the greeting

        # Someone who is not a sandbox customer, or no JSON: a clear 400, nothing recorded.
        for body in ({"customer_id": cast.admin.id}, {"customer_id": "Anna"}, [1]):
            async with client.post("/sandbox/visits", json=body) as response:
                assert response.status == 400
                assert "error" in await response.json()


async def test_hearback_demo_plays_the_whole_loop_and_ends_with_stats(
    tmp_path: Path, database_url: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--database-url",
        database_url,
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    transcript = out.decode()
    assert process.returncode == 0, transcript + err.decode()
    assert "Traceback" not in err.decode()

    sections = re.findall(r"^── (.+?) ─+$", transcript, flags=re.MULTILINE)
    # Case numbers come from the database's sequence, which emptying tables does not reset.
    case = re.search(r"topic “#(\d+) · ", transcript)
    assert case, transcript
    number = case.group(1)
    assert sections == [
        "Anna (customer) · private chat with @hearback_sandbox_bot",
        "Downtown staff (staff forum) · General",
        f"Downtown staff (staff forum) · topic “#{number} · Anna · 2/5 · Downtown”",
        "Sam (admin) · private chat with @hearback_sandbox_bot",
    ]
    customer, general, topic, admin = re.split(r"^── .+ ─+$", transcript, flags=re.MULTILINE)[1:]
    for line in (
        "How was your visit to Downtown",  # today, or yesterday just after midnight
        "Anna       [taps “2”]",
        "What went wrong: Waited too long.",
        "Anna       Forty minutes for a coffee, and nobody said sorry.",
        "Anna       [taps “Yes, please”]",
        "Anna, I am so sorry about the wait. Your next coffee is on us.",
        "Was it put right?",
        "Anna       [taps “Yes, thank you”]",
    ):
        assert line in customer, line
    assert "Sam        /staff_here" in general and "This chat now receives cases." in general
    for line in (
        f"🔴 Case #{number} · critical · asked to be contacted",
        "Reasons: Waited too long",
        "Maria      [taps “Take”]",
        "State: taken · taken by Maria",
        "Rice Shop  Anna: Thank you, that is kind.",
        "Maria      [taps “Voucher”]",
        "offered: voucher",
        "The customer says it was put right: case closed.",
    ):
        assert line in topic, line
    # Nothing from the back room reached Anna's chat.
    assert "Case #" not in customer and "Maria" not in customer
    assert admin.index("Sam        /stats") < admin.index("[photo ")
    assert "Surveys sent: 1 · answered 1 (100%)" in admin
    assert transcript.rstrip().splitlines()[-1].startswith("The loop played through in")
