"""SIGKILL in the middle of a run loses nothing: `hearback run` is killed while surveys go out, is
started again, and every survey is sent.

A survey can be sent twice only if the process died between Telegram accepting it and the "sent"
write: at most one survey per worker (job in flight) of the killed process. The test kills at
the worst moment — just after Telegram accepted a message — with a few workers, so the bound is
met, not avoided by luck."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bot.emulator import Emulator
from bot.simulation import surveys_due_before_start
from storage.models import Job, Survey, SurveyState
from tests.e2e.test_process import spawn, stop
from tests.net import free_port

SURVEYS = 200
KILL_AFTER = 60  # surveys delivered before the kill
LEASE_SECONDS = 3  # the killed process's jobs are claimed again this long after it died
WORKERS = 4  # jobs in flight at once (WORKER_CONCURRENCY): enough to keep 30/s on loopback


def deliveries(emulator: Emulator) -> Counter[int]:
    return Counter(c.params["chat_id"] for c in emulator.calls_to("sendMessage", ok=True))


async def test_a_killed_process_loses_no_survey_and_sends_at_most_one_twice_per_worker(
    tmp_path: Path, database_url: str, engine, session_factory
) -> None:
    async with Emulator() as emulator:  # Telegram's limits on
        account = emulator.add_bot(username="hearback_kill_bot", first_name="Rice Shop")
        people = [emulator.add_user(first_name=f"Guest{n}") for n in range(SURVEYS)]
        await surveys_due_before_start(session_factory, engine, account, people)
        environment = {
            "BOT_TOKEN": account.token,
            "TELEGRAM_API_URL": emulator.url,
            "DATABASE_URL": database_url,
            "BUSINESS_NAME": "Rice Shop",
            "QUIET_HOURS": "",
            "JOB_LEASE": f"{LEASE_SECONDS}s",
            "WORKER_POLL_INTERVAL": "0.2",
            "WORKER_CONCURRENCY": str(WORKERS),
        }

        first = await spawn(tmp_path, HTTP_PORT=str(free_port()), **environment)
        try:
            await emulator.wait_for(
                lambda: sum(deliveries(emulator).values()) >= KILL_AFTER, timeout=30
            )
        finally:
            first.kill()  # SIGKILL: no shutdown, no cleanup, jobs left mid-flight
            await first.communicate()
        assert first.returncode == -signal.SIGKILL
        delivered_before = len(deliveries(emulator))
        assert delivered_before < SURVEYS

        second = await spawn(tmp_path, HTTP_PORT=str(free_port()), **environment)
        try:
            await emulator.wait_for(lambda: len(deliveries(emulator)) == SURVEYS, timeout=45)
            # …and recorded: the "sent" write follows Telegram's answer.
            await emulator.wait_for(lambda: all_recorded(session_factory), timeout=10)
        finally:
            status, _, err = await stop(second, signal.SIGTERM)

    assert status == 0, err
    assert "Traceback" not in err
    counts = deliveries(emulator)
    assert set(counts) == {person.id for person in people}  # nothing lost
    assert emulator.stats.too_many_requests == 0
    # The jobs the killed process held were taken over once their lease ran out; only those
    # can have sent a survey twice.
    async with session_factory() as session:
        taken_over = await session.scalar(select(func.count()).where(Job.attempts > 1))
    duplicates = sum(count - 1 for count in counts.values())
    assert 0 < taken_over <= WORKERS
    assert duplicates <= taken_over, f"{duplicates} sent twice, {taken_over} jobs taken over"


async def all_recorded(session_factory) -> bool:
    async with session_factory() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Survey).where(Survey.state == SurveyState.SENT)
        )
    return sent == SURVEYS
