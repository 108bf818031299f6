"""Three workers, one of them SIGKILLed in the middle of sending 2,000 surveys and started again:
every survey is sent, at most three twice, and the bot as a whole stays within Telegram's limits.

Production's multi-worker set-up, each part real: three `hearback run --webhook` processes behind
a round-robin proxy (the webhook URL), sharing a PostgreSQL database (jobs are claimed with
FOR UPDATE SKIP LOCKED) and a redis-server (REDIS_URL: the send budget and the seen updates),
against the emulator with Telegram's limits on.

Why at most three duplicates. A survey goes out twice only if its worker died between Telegram
accepting it and the "sent" write; the job's lease then runs out and another worker takes the job
and sends again. A live worker renews its leases, so only the killed process's jobs are taken
over, and a worker holds at most WORKER_CONCURRENCY jobs (the scheduler claims no more than it
has free slots). WORKER_CONCURRENCY is therefore set to the number of workers, 3: the bound holds
by construction, not by luck. Three workers with three jobs each still keep nine sends queued at
the shared budget, plenty for 30/s.

The worst moment. The victim talks to Telegram through a pass-through proxy of its own, which
SIGKILLs it the instant the emulator has accepted one of its sendMessage calls and before the
answer is passed on: that survey is in the customer's chat and the database will never hear of
it from that process. It must come out sent twice — which shows the kill hit where it hurts —
and everything else once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.emulator import Emulator
from bot.simulation import surveys_due_before_start
from storage.models import Job, Survey, SurveyState
from tests.e2e.test_kill import deliveries
from tests.e2e.test_process import HEARBACK, environment
from tests.e2e.test_webhook_workers import round_robin
from tests.net import free_port
from tests.redis_server import redis_server

WORKERS = 3
CONCURRENCY = WORKERS  # WORKER_CONCURRENCY: jobs a worker holds at once, the duplicate bound
SURVEYS = 2000
KILL_AFTER = 500  # surveys accepted before the victim's next one kills it (~17 s in at 30/s)
LEASE_SECONDS = 3  # the killed process's jobs are taken over this long after it died
# After the kill: the rest of 2,000 at Telegram's 30/s (under a minute), with room for a loaded
# machine.
SENDING_LIMIT = 130.0


class Worker:
    """One `hearback run --webhook` process, its log in a file (a pipe nobody reads during the
    run would fill up and block the bot)."""

    def __init__(self, tmp_path: Path, name: str, variables: dict[str, str]) -> None:
        self.log = tmp_path / f"{name}.log"
        self.cwd = tmp_path
        self.variables = variables
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, **overrides: str) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *HEARBACK,
                "run",
                "--webhook",
                cwd=self.cwd,
                env=environment(self.cwd, **{**self.variables, **overrides}),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(f"{self.log.stem} did not stop within 30 s") from None
        return self.process.returncode


class KillOnAccept:
    """A pass-through proxy to the emulator for one worker. Once ``armed()`` says so, the first
    sendMessage the emulator accepts from it SIGKILLs the worker before the answer is relayed."""

    def __init__(self, upstream: str, armed) -> None:
        self.upstream = upstream
        self.armed = armed
        self.pid: int | None = None
        self.killed_chat: int | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._client = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        async with self._client.request(
            request.method,
            f"{self.upstream}{request.rel_url}",
            data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as answer:
            body = await answer.read()
            if (
                self.killed_chat is None
                and request.path.endswith("/sendMessage")
                and answer.status == 200
                and self.armed()
            ):
                assert self.pid is not None
                os.kill(self.pid, signal.SIGKILL)
                self.killed_chat = (await answer.json())["result"]["chat"]["id"]
            return web.Response(status=answer.status, body=body, content_type="application/json")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()


async def test_three_workers_one_killed_mid_send_lose_no_survey_and_stay_within_the_limits(
    tmp_path: Path, backend: str, database_url: str, engine, session_factory
) -> None:
    if backend != "postgresql":
        pytest.skip("runs in the PostgreSQL pass (scripts/with-postgres): SKIP LOCKED claims")
    async with redis_server(tmp_path) as redis_url, Emulator() as emulator:  # limits on
        account = emulator.add_bot(username="hearback_workers_bot", first_name="Rice Shop")
        people = [emulator.add_user(first_name=f"Guest{n}") for n in range(SURVEYS)]
        await surveys_due_before_start(session_factory, engine, account, people)

        ports = [free_port() for _ in range(WORKERS)]
        balancer, webhook_url = await round_robin(ports)
        killer = KillOnAccept(
            emulator.url, armed=lambda: sum(deliveries(emulator).values()) >= KILL_AFTER
        )
        via_killer = await killer.start()
        common = {
            "BOT_TOKEN": account.token,
            "TELEGRAM_API_URL": emulator.url,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WEBHOOK_URL": webhook_url,
            "WEBHOOK_SECRET": "three-workers",
            "BUSINESS_NAME": "Rice Shop",
            "QUIET_HOURS": "",
            "LOG_LEVEL": "WARNING",
            "JOB_LEASE": f"{LEASE_SECONDS}s",
            "WORKER_POLL_INTERVAL": "0.2",
            "WORKER_CONCURRENCY": str(CONCURRENCY),
        }
        workers = [
            Worker(tmp_path, f"worker{n}", {**common, "HTTP_PORT": str(port)})
            for n, port in enumerate(ports)
        ]
        victim = workers[0]
        try:
            await victim.start(TELEGRAM_API_URL=via_killer)
            assert victim.process is not None
            killer.pid = victim.process.pid
            for worker in workers[1:]:
                await worker.start()

            await emulator.wait_for(lambda: victim.process.returncode is not None, timeout=120)
            assert victim.process.returncode == -signal.SIGKILL
            delivered_at_kill = len(deliveries(emulator))
            await victim.start()  # straight to Telegram this time

            await emulator.wait_for(
                lambda: len(deliveries(emulator)) == SURVEYS, timeout=SENDING_LIMIT
            )
            # The restarted worker is back (it set the webhook again) …
            await emulator.wait_for(
                lambda: len(emulator.calls_to("setWebhook", ok=True)) > WORKERS, timeout=60
            )
            # …and recorded: the "sent" write follows Telegram's answer.
            await emulator.wait_for(lambda: all_recorded(session_factory), timeout=15)
        finally:
            statuses = await asyncio.gather(
                *(worker.stop() for worker in workers if worker.process is not None)
            )
            await killer.close()
            await balancer.cleanup()
        logs = {worker.log.stem: worker.log.read_text() for worker in workers}

    assert statuses == [0] * WORKERS, logs
    for name, log in logs.items():
        assert "Traceback" not in log, f"{name}:\n{log[-4000:]}"
    assert KILL_AFTER <= delivered_at_kill < SURVEYS  # killed in the middle of sending
    counts = deliveries(emulator)
    assert set(counts) == {person.id for person in people}  # nothing lost
    # The kill hit between Telegram's OK and the "sent" write: that survey went out twice.
    assert counts[killer.killed_chat] == 2
    async with session_factory() as session:
        taken_over = await session.scalar(select(func.count()).where(Job.attempts > 1))
    duplicates = sum(count - 1 for count in counts.values())
    assert 1 <= duplicates <= taken_over <= CONCURRENCY, (duplicates, taken_over)
    # The three workers' sends together never went over Telegram's limits.
    assert emulator.stats.too_many_requests == 0


async def all_recorded(session_factory) -> bool:
    async with session_factory() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Survey).where(Survey.state == SurveyState.SENT)
        )
    return sent == SURVEYS
