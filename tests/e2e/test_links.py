"""Deep links and QR codes end to end: the real bot polling the emulator, real HTTP in between,
and the `hearback link` command writing a QR code that the bot then understands."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import segno
from sqlalchemy import func, select

from bot import texts
from bot.app import Application
from bot.cli import main
from bot.clock import FakeClock
from bot.emulator import Emulator
from bot.links import Links, location_link, personal_link
from bot.settings import Settings
from bot.visits import CustomerIn, VisitIn, send_job_key
from storage.models import Customer, Job, JobState, Survey, Visit, VisitSource
from tests.e2e.conftest import BUSINESS, running

HALF_PAST_NOON = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)
NOTE = texts.render(texts.LINK_NOT_USABLE, business=BUSINESS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(HALF_PAST_NOON)


@pytest.fixture
async def app(make_app, clock: FakeClock) -> AsyncIterator[Application]:
    async with running(make_app(clock=clock)) as started:
        yield started


def links_of(app: Application) -> Links:
    return Links.from_settings(app.session_factory, app.settings, app.clock)


def texts_of(user, bot) -> list[str]:
    return [message.text for message in user.inbox(bot)]


def bot_errors(emulator: Emulator) -> list[str]:
    return [f"{c.method} -> {c.status}" for c in emulator.calls if c.status != 200]


async def start_and_wait(emulator: Emulator, user, bot, payload: str, replies: int = 1) -> None:
    await user.send(bot, f"/start {payload}")
    await emulator.wait_for(lambda: len(user.inbox(bot)) >= replies, timeout=10)


async def count(app: Application, model) -> int:
    async with app.session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model))


# ------------------------------------------------------------------------- location links


async def test_scanning_a_qr_code_records_a_visit_and_tells_when_by_name(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    link = await location_link(links_of(app), telegram_bot.username, "Downtown", staff="Li")
    anna = emulator.add_user(first_name="Anna")
    await start_and_wait(emulator, anna, telegram_bot, link.payload)

    assert texts_of(anna, telegram_bot) == [
        "Thank you, Anna! I will ask you about your visit to Downtown at about 14:30."
    ]
    assert bot_errors(emulator) == []
    async with app.session_factory() as session:
        visit = await session.scalar(select(Visit))
        customer = await session.get(Customer, visit.customer_id)
    assert (visit.source, visit.location, visit.staff) == (VisitSource.LINK, "Downtown", "Li")
    assert customer.telegram_user_id == anna.id

    # Scanning again is another visit: recorded, and the cooldown told in kind words.
    await start_and_wait(emulator, anna, telegram_bot, link.payload, replies=2)
    assert texts_of(anna, telegram_bot)[1] == texts.render(
        texts.VISIT_NOTED_ASKED_RECENTLY, name="Anna", location="Downtown"
    )
    assert await count(app, Visit) == 2


async def test_the_time_is_told_in_the_business_time_zone(
    settings: Settings, emulator: Emulator, telegram_bot, clock: FakeClock
) -> None:
    berlin = settings.model_copy(update={"timezone": "Europe/Berlin"})
    app = Application(berlin, token=telegram_bot.token, api_url=emulator.url, clock=clock)
    async with running(app):
        link = await location_link(links_of(app), telegram_bot.username, "Кафе «Центр»")
        ivan = emulator.add_user(first_name="Иван", language_code="ru")
        await start_and_wait(emulator, ivan, telegram_bot, link.payload)
    # 12:30 UTC is 13:30 in Berlin; the survey comes two hours later.
    assert texts_of(ivan, telegram_bot) == [
        "Thank you, Иван! I will ask you about your visit to Кафе «Центр» at about 15:30."
    ]


async def test_a_redelivered_start_is_answered_once(
    app: Application, emulator: Emulator, telegram_bot
) -> None:
    link = await location_link(links_of(app), telegram_bot.username, "Downtown")
    emulator.faults.duplicate_updates(1)
    omar = emulator.add_user(first_name="Omar")
    await start_and_wait(emulator, omar, telegram_bot, link.payload)
    await emulator.wait_for(lambda: app.once.stats.duplicates == 1, timeout=10)

    [reply] = texts_of(omar, telegram_bot)
    assert "at about 14:30" in reply
    assert await count(app, Visit) == 1


class Forgetful:
    """A dedupe store that remembers nothing, as after a restart between two deliveries."""

    async def claim(self, update_id: int) -> bool:
        return True

    async def release(self, update_id: int) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_a_start_redelivered_after_a_restart_records_one_visit(
    make_app, clock: FakeClock, emulator: Emulator, telegram_bot
) -> None:
    async with running(make_app(clock=clock, seen_updates=Forgetful())) as app:
        link = await location_link(links_of(app), telegram_bot.username, "Downtown")
        emulator.faults.duplicate_updates(1)
        omar = emulator.add_user(first_name="Omar")
        await start_and_wait(emulator, omar, telegram_bot, link.payload, replies=2)

        first, again = texts_of(omar, telegram_bot)
        assert first == again  # the same answer, about the same visit
        assert "at about 14:30" in first
        assert await count(app, Visit) == 1


@pytest.mark.parametrize("tamper", ["last character", "kind byte", "garbage"])
async def test_a_forged_link_gets_the_plain_greeting_and_a_polite_note(
    app: Application, emulator: Emulator, telegram_bot, tamper: str
) -> None:
    genuine = (await location_link(links_of(app), telegram_bot.username, "Downtown")).payload
    forged = {
        "last character": genuine[:-1] + ("B" if genuine[-1] != "B" else "C"),
        "kind byte": "Ag" + genuine[2:],  # the first byte says "personal link" now
        "garbage": "not-a-link_" + "x" * 53,
    }[tamper]
    sara = emulator.add_user(first_name="Sara")
    await start_and_wait(emulator, sara, telegram_bot, forged)

    [reply] = texts_of(sara, telegram_bot)
    assert reply.startswith("Hello, Sara! Thank you for starting me.")
    assert reply.endswith(NOTE)
    assert "Downtown" not in reply
    assert await count(app, Visit) == 0
    assert await count(app, Customer) == 1
    assert bot_errors(emulator) == []


# ------------------------------------------------------------------------- personal links


async def test_a_personal_link_binds_its_customer_and_nobody_else(
    app: Application, emulator: Emulator, telegram_bot, clock: FakeClock
) -> None:
    # The business knows Anna only by its ref; her survey has waited since 09:30.
    await app.visits.record(
        VisitIn(
            visit_id="crm-visit-1",
            customer=CustomerIn(ref="c-42", name="Anna Smith"),
            occurred_at=clock.now() - timedelta(hours=5),
            source=VisitSource.API,
            location="Harbour",
        )
    )
    link = await personal_link(links_of(app), telegram_bot.username, "c-42")
    anna = emulator.add_user(first_name="Anna")
    await start_and_wait(emulator, anna, telegram_bot, link.payload)

    [welcome] = texts_of(anna, telegram_bot)
    assert welcome == texts.render(texts.PERSONAL_LINKED, name="Anna", business=BUSINESS)
    async with app.session_factory() as session:
        customer = await session.scalar(select(Customer).where(Customer.external_ref == "c-42"))
        survey_id = await session.scalar(select(Survey.id))
        job = await session.scalar(select(Job).where(Job.dedupe_key == send_job_key(survey_id)))
    assert customer.telegram_user_id == anna.id
    assert customer.started_at == clock.now()
    assert job.state is JobState.PENDING
    assert job.available_at <= clock.now()  # sendable now

    # Someone else with the same link (forwarded, or copied off her screen) learns nothing.
    bob = emulator.add_user(first_name="Bob")
    await start_and_wait(emulator, bob, telegram_bot, link.payload)
    [refusal] = texts_of(bob, telegram_bot)
    assert refusal == "\n\n".join(
        [texts.render(texts.GREETING, name="Bob", business=BUSINESS), NOTE]
    )
    for secret in ("Anna", "Smith", "c-42", "Harbour"):
        assert secret not in refusal
    async with app.session_factory() as session:
        owner = await session.scalar(select(Customer).where(Customer.external_ref == "c-42"))
    assert owner.telegram_user_id == anna.id
    assert await count(app, Customer) == 2
    assert bot_errors(emulator) == []


# ------------------------------------------------------------------------------- the CLI


def read_png(path: Path) -> list[list[int]]:
    """Decode a 1-bit greyscale PNG, checking every chunk's CRC: rows of 0 (black) / 1 (white)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        position += 12 + length
    assert b"IEND" in chunks
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (1, 0, 0), "expected a 1-bit greyscale PNG"
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = (width + 7) // 8
    assert len(raw) == height * (stride + 1)
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left, up = line[x - 1] if x else 0, previous[x]
            corner = previous[x - 1] if x else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                nearest = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )[2]
                line[x] = (line[x] + nearest) & 0xFF
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        previous = line
    return rows


def assert_qr_code_of(path: Path, url: str) -> None:
    """The PNG shows exactly the QR code of `url`: every module sampled at its centre."""
    pixels = read_png(path)
    modules = list(segno.make(url, error="m", micro=False).matrix_iter(scale=1, border=4))
    size = len(pixels) // len(modules)
    assert size >= 4 and len(pixels) == size * len(modules) == len(pixels[0])
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            assert pixels[y * size + size // 2][x * size + size // 2] == (0 if dark else 1)


@pytest.fixture
def cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Path:
    """The command as a shop owner runs it: only DATABASE_URL set, in an empty directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def hearback(*argv: str) -> int:
    # In a thread: the command runs its own event loop, as it does from a shell.
    return await asyncio.to_thread(main, list(argv))


async def test_the_cli_prints_a_link_the_bot_understands_and_writes_its_qr_code(
    app: Application,
    emulator: Emulator,
    telegram_bot,
    cli_environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = cli_environment / "qr" / "counter.png"
    location = "Sushi bar on the second floor, by the big window — Downtown branch"
    assert (
        await hearback(
            "link",
            "--location",
            location,
            "--service",
            "Lunch",
            "--out",
            str(out),
            "--bot-username",
            telegram_bot.username,
        )
        == 0
    )
    url = capsys.readouterr().out.strip()
    match = re.fullmatch(rf"https://t\.me/{telegram_bot.username}\?start=([A-Za-z0-9_-]+)", url)
    assert match and len(match[1]) <= 64
    assert out.stat().st_size > 0
    assert_qr_code_of(out, url)

    anna = emulator.add_user(first_name="Anna")
    await start_and_wait(emulator, anna, telegram_bot, match[1])
    assert texts_of(anna, telegram_bot) == [
        f"Thank you, Anna! I will ask you about your visit to {location} at about 14:30."
    ]
    async with app.session_factory() as session:
        assert await session.scalar(select(Visit.service)) == "Lunch"


async def test_the_cli_asks_telegram_for_the_username_or_uses_the_sandbox_bot(
    emulator: Emulator,
    telegram_bot,
    cli_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await hearback("link", "--customer", "c-42") == 0
    sandbox = capsys.readouterr().out.strip()
    assert sandbox.startswith("https://t.me/hearback_sandbox_bot?start=")
    payload = sandbox.rpartition("=")[2]
    assert (cli_environment / f"hearback-link-{payload}.png").stat().st_size > 0

    monkeypatch.setenv("BOT_TOKEN", telegram_bot.token)
    monkeypatch.setenv("TELEGRAM_API_URL", emulator.url)
    assert await hearback("link", "--customer", "c-42", "--out", "c42.png") == 0
    # The same customer, the same payload: only the bot's name came from getMe this time.
    assert (
        capsys.readouterr().out.strip() == f"https://t.me/{telegram_bot.username}?start={payload}"
    )
    assert [call.method for call in emulator.calls] == ["getMe"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--customer", "c-1", "--staff", "Li"], "staff and service belong to location links"),
        (["--location", "x" * 129], "at most 128 characters"),
        (["--location", " "], "location must not be empty"),
        (["--location", "Downtown", "--bot-username", "no spaces"], "not a Telegram bot username"),
    ],
)
async def test_the_cli_says_what_is_wrong_without_a_traceback(
    cli_environment: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert await hearback("link", *argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert not await asyncio.to_thread(lambda: list(cli_environment.glob("*.png")))
