"""PostgreSQL restarted in the middle of a run: the bot reconnects and carries on, losing nothing.

`hearback run` works as a real process against a PostgreSQL cluster the test made itself (the
suite's shared server must not be restarted under other tests). Surveys go out and customers
answer them — tap a score, then write a comment — while the server is stopped ("fast": every
session is cut, as an operator's restart or a failover does) and started again a few seconds
later. Taps and comments also arrive while it is down. Every survey must still be sent once,
every customer answered in full, every answer recorded once, and the process must never have
dropped an update on the floor. A second test restarts the server under an in-process bot and
checks that a setting changed by another worker still arrives (the 30 s refresh loop lives on).
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

import bot.app
from bot import texts
from bot.app import Application
from bot.clock import SystemClock
from bot.emulator import BotAccount, Emulator, SimUser
from bot.live_settings import LiveSettings
from bot.simulation import surveys_due_before_start
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Answer, AnswerStage, Customer, Survey, SurveyState
from tests.e2e.conftest import e2e_settings, running
from tests.e2e.pgcluster import PostgresCluster, postgres_binaries
from tests.e2e.test_process import HEARBACK, environment, free_port

CUSTOMERS = 40
RESTART_AFTER = 12  # surveys delivered before the server goes away
DOWN_FOR = 3.0  # seconds the server stays down (customers keep tapping and writing)
COMMENT = "Lovely, thank you"


@pytest.fixture
def cluster(backend: str):
    # Once per `make test`: in the PostgreSQL pass, where scripts/with-postgres installed it.
    if backend != "postgresql":
        pytest.skip("runs in the PostgreSQL pass (scripts/with-postgres)")
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("needs PostgreSQL's server programs on this machine (initdb, pg_ctl)")
    made = PostgresCluster(binaries)
    try:
        made.start()
        yield made
    finally:
        made.remove()


class Customers:
    """Each customer answers the survey when it comes (a 5), then writes a comment."""

    def __init__(self, people: list[SimUser], bot: BotAccount) -> None:
        self.people = people
        self.bot = bot
        self.tapped: set[int] = set()
        self.commented: set[int] = set()

    def finished(self) -> bool:
        return all(len(person.inbox(self.bot)) >= 3 for person in self.people)

    async def act(self) -> None:
        while not self.finished():
            for person in self.people:
                inbox = person.inbox(self.bot)
                if inbox and person.id not in self.tapped:
                    self.tapped.add(person.id)
                    await person.tap(self.bot, inbox[0], label="5")
                elif len(inbox) >= 2 and person.id not in self.commented:
                    self.commented.add(person.id)
                    await person.send(self.bot, COMMENT)
            await asyncio.sleep(0.05)


async def test_a_postgresql_restart_mid_run_loses_no_survey_update_or_answer(
    tmp_path: Path, cluster: PostgresCluster
) -> None:
    await asyncio.to_thread(migrate.upgrade, cluster.url)
    # The test's own reads: a new connection each time, so they too live through the restart.
    engine = create_engine(cluster.url, poolclass=NullPool)
    sessions = create_session_factory(engine)
    try:
        async with Emulator() as emulator:  # Telegram's limits on
            account = emulator.add_bot(username="hearback_pg_bot", first_name="Rice Shop")
            people = [emulator.add_user(first_name=f"Guest{n}") for n in range(CUSTOMERS)]
            await surveys_due_before_start(sessions, engine, account, people)
            log_path = tmp_path / "bot.log"
            # The log goes to a file: a pipe nobody reads while the test runs fills up with the
            # outage's warnings and then blocks the bot's event loop on a write.
            with log_path.open("wb") as log_file:
                process = await asyncio.create_subprocess_exec(
                    *HEARBACK,
                    "run",
                    cwd=tmp_path,
                    env=environment(
                        tmp_path,
                        BOT_TOKEN=account.token,
                        TELEGRAM_API_URL=emulator.url,
                        DATABASE_URL=cluster.url,
                        HTTP_PORT=str(free_port()),
                        BUSINESS_NAME="Rice Shop",
                        QUIET_HOURS="",
                        WORKER_POLL_INTERVAL="0.2",
                        WORKER_CONCURRENCY="4",
                        JOB_LEASE="5s",
                        JOB_RETRY_DELAY="1s",
                    ),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log_file,
                )
            crowd = Customers(people, account)
            acting = asyncio.create_task(crowd.act())
            try:
                await emulator.wait_for(
                    lambda: len(surveys_out(emulator, people)) >= RESTART_AFTER, timeout=60
                )
                # In a thread: the emulator (Telegram) keeps answering meanwhile.
                await asyncio.to_thread(cluster.stop, "fast")
                sent_before = len(surveys_out(emulator, people))
                updates_before = len(emulator.calls_to("getUpdates"))
                await asyncio.sleep(DOWN_FOR)
                await asyncio.to_thread(cluster.start)
                await emulator.wait_for(crowd.finished, timeout=90)
                await asyncio.wait_for(acting, 5)
                await emulator.wait_for(
                    lambda: all_answered(sessions), timeout=15, interval=0.2, message="answers"
                )
            finally:
                acting.cancel()
                status = await terminate(process)
                err = log_path.read_text()
                print(err[-8000:])  # shown when the test fails: what the bot logged
    finally:
        await engine.dispose()

    assert status == 0, err
    # The restart came in the middle: surveys were still to go, and polling went on meanwhile.
    assert sent_before < CUSTOMERS
    assert len(emulator.calls_to("getUpdates")) > updates_before
    # No update was dropped: aiogram logs every handler failure with this line.
    assert "Cause exception while process update" not in err, err[-4000:]
    # Each customer read exactly: the survey, the thanks, the thanks for the comment.
    for person in people:
        said = [m.text or "" for m in person.inbox(account)]
        assert len(said) == 3, (person.first_name, said)
        # The visit was three hours ago: "yesterday" in the first hours of a day.
        assert re.match(
            rf"How was your visit to Downtown (today|yesterday), {person.first_name}\?", said[0]
        )
        assert said[0].endswith("Your score: 5 out of 5. Thank you!")  # the tap was taken
        assert said[1].startswith(f"Thank you, {person.first_name}!")
        assert said[2] == texts.render(texts.THANKS_FOR_COMMENT, name=person.first_name)
    sends = Counter(c.params["chat_id"] for c in emulator.calls_to("sendMessage", ok=True))
    assert sends == Counter({person.id: 3 for person in people})  # nothing sent twice
    assert emulator.stats.too_many_requests == 0
    await check_database(cluster.url)


async def terminate(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("hearback did not stop within 30 s of SIGTERM") from None


def surveys_out(emulator: Emulator, people: list[SimUser]) -> set[int]:
    ids = {person.id for person in people}
    return {c.params["chat_id"] for c in emulator.calls_to("sendMessage", ok=True)} & ids


async def all_answered(sessions) -> bool:
    async with sessions() as session:
        done = await session.scalar(
            select(func.count()).select_from(Answer).where(Answer.stage == AnswerStage.DONE)
        )
    return done == CUSTOMERS


async def check_database(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with create_session_factory(engine)() as session:
            states = Counter(await session.scalars(select(Survey.state)))
            rows = (
                await session.execute(
                    select(
                        Customer.telegram_user_id, Answer.score, Answer.comment, Answer.stage
                    ).join(Answer, Answer.customer_id == Customer.id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert states == Counter({SurveyState.ANSWERED: CUSTOMERS})
    assert len(rows) == CUSTOMERS  # one answer each: nothing recorded twice
    assert len({row.telegram_user_id for row in rows}) == CUSTOMERS
    assert all(
        (row.score, row.comment, row.stage) == (5, COMMENT, AnswerStage.DONE) for row in rows
    )


async def test_the_settings_refresh_lives_through_a_restart(
    cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    telegram_bot: BotAccount,
) -> None:
    """Another worker's change reaches this one after the server came back: the refresh loop
    did not die with the connections it had."""
    await asyncio.to_thread(migrate.upgrade, cluster.url)
    monkeypatch.setattr(bot.app, "SETTINGS_REFRESH", 0.3)
    settings = e2e_settings(cluster.url)
    app = Application(settings, token=telegram_bot.token, api_url=emulator.url)
    engine = create_engine(cluster.url, poolclass=NullPool)
    try:
        async with running(app):
            await asyncio.sleep(0.5)  # a refresh or two on the first connections
            await asyncio.to_thread(cluster.stop, "fast")
            await asyncio.sleep(1.0)  # refreshes fail meanwhile
            await asyncio.to_thread(cluster.start)
            elsewhere = LiveSettings(create_session_factory(engine), SystemClock(), settings)
            await elsewhere.load()
            await elsewhere.set("business_name", "Noodle Bar", by=1, by_name="Another worker")
            await emulator.wait_for(lambda: app.words.business == "Noodle Bar", timeout=15)
    finally:
        await engine.dispose()
