"""`GET /metrics`: what the bot is doing, in Prometheus' text format.

Counters are the ones the working code keeps as it goes — the update middleware
(`bot.dedupe.UpdateStats`), the webhook receiver (`bot.webhook.WebhookStats`), the rate limiter
every Telegram call passes (`bot.ratelimit.LimiterStats`) and the job scheduler
(`bot.scheduler.SchedulerStats`) — read at scrape time, never a second bookkeeping that could
drift from them. Counters are per process: Prometheus sums workers and handles restarts.

Gauges about the database (the job queue's depth and lag, open and overdue cases) are read at
scrape time with two small queries on indexed columns. If the database does not answer, the
counters are still served and ``hearback_database_up`` is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from bot.clock import Clock
from bot.ratelimit import RedisBudget
from storage.metrics_repository import OpenCases, open_cases

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.dedupe import UpdateStats
    from bot.ratelimit import Budget, LimiterStats
    from bot.scheduler import Scheduler
    from bot.webhook import WebhookStats
    from storage.jobs import JobQueue, QueueDepth

__all__ = ["METRICS_PATH", "Metrics"]

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# The classic text format, which every Prometheus version reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Collected:
    """Families gathered for one scrape, in the shape `generate_latest` reads."""

    families: list[Metric]

    def collect(self) -> Iterable[Metric]:
        return self.families


class Metrics:
    def __init__(
        self,
        *,
        updates: UpdateStats,
        limiter: LimiterStats,
        scheduler: Scheduler,
        in_flight: Callable[[], int],
        jobs: JobQueue,
        engine: AsyncEngine,
        clock: Clock,
        webhook: WebhookStats | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.updates = updates
        self.limiter = limiter
        self.scheduler = scheduler
        self.in_flight = in_flight
        self.jobs = jobs
        self.engine = engine
        self.clock = clock
        self.webhook = webhook
        self.budget = budget
        # CPU, memory and open files of this process (Linux only; empty elsewhere).
        self._process = ProcessCollector(registry=None)

    def install(self, app: web.Application) -> None:
        app.router.add_get(METRICS_PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await self.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def render(self) -> bytes:
        families = [*self._counters(), *await self._database(), *self._process.collect()]
        return generate_latest(_Collected(families))  # type: ignore[arg-type]

    def _counters(self) -> list[Metric]:
        updates = CounterMetricFamily(
            "hearback_updates",
            "Telegram updates received, by what became of them",
            labels=["result"],
        )
        updates.add_metric(["handled"], self.updates.handled)
        updates.add_metric(["duplicate"], self.updates.duplicates)
        updates.add_metric(["failed"], self.updates.failed)
        duration = SummaryMetricFamily(
            "hearback_update_seconds",
            "Time from taking an update to having handled it, waiting behind the same chat's "
            "earlier updates included",
            count_value=self.updates.handled + self.updates.failed,
            sum_value=self.updates.seconds,
        )
        store_errors = CounterMetricFamily(
            "hearback_dedupe_store_errors",
            "Updates handled without the repeat check because its store (REDIS_URL) failed",
            value=self.updates.store_errors,
        )
        in_flight = GaugeMetricFamily(
            "hearback_updates_in_flight", "Updates being handled right now", self.in_flight()
        )
        webhook = CounterMetricFamily(
            "hearback_webhook_requests",
            "Webhook posts, by answer (unauthorized: wrong or missing secret)",
            labels=["result"],
        )
        stats = self.webhook
        if stats is not None:
            webhook.add_metric(["accepted"], stats.accepted)
            webhook.add_metric(["unauthorized"], stats.unauthorized)
            webhook.add_metric(["bad_request"], stats.bad_request)
            webhook.add_metric(["unavailable"], stats.unavailable)
        sends = CounterMetricFamily(
            "hearback_telegram_sends",
            "Messages the bot sent to Telegram, by result (refused: 4xx such as a blocked bot; "
            "gave_up: still failing after the last retry)",
            labels=["result"],
        )
        sends.add_metric(["ok"], self.limiter.sent)
        sends.add_metric(["refused"], self.limiter.refused)
        sends.add_metric(["gave_up"], self.limiter.gave_up)
        too_many = CounterMetricFamily(
            "hearback_telegram_429",
            "429 Too Many Requests answers from Telegram (each paused sending and was retried)",
            value=self.limiter.too_many_requests,
        )
        retried = CounterMetricFamily(
            "hearback_telegram_retries",
            "Telegram calls retried after a 5xx answer, a network error or a timeout",
            value=self.limiter.retried,
        )
        job_stats = self.scheduler.stats
        jobs = CounterMetricFamily(
            "hearback_jobs", "Timed jobs this process ran, by outcome", labels=["result"]
        )
        jobs.add_metric(["completed"], job_stats.completed)
        jobs.add_metric(["retried"], job_stats.retried)
        jobs.add_metric(["failed"], job_stats.failed)
        jobs.add_metric(["released"], job_stats.released)
        jobs.add_metric(["lost_lease"], job_stats.lost_leases)
        by_kind = CounterMetricFamily(
            "hearback_jobs_completed_by_kind",
            "Timed jobs this process completed, by kind",
            labels=["kind"],
        )
        for kind, count in sorted(job_stats.by_kind.items()):
            by_kind.add_metric([kind], count)
        running_here = GaugeMetricFamily(
            "hearback_jobs_running_here",
            "Timed jobs running in this process right now",
            self.scheduler.in_flight,
        )
        families = [
            updates,
            duration,
            store_errors,
            in_flight,
            webhook,
            sends,
            too_many,
            retried,
            jobs,
            by_kind,
            running_here,
        ]
        if isinstance(self.budget, RedisBudget):
            # 0 means this worker lost Redis and sends at its 1/N share: slower, so alert on it.
            shared = GaugeMetricFamily(
                "hearback_send_budget_shared",
                "1 while sends draw on the budget shared in Redis (REDIS_URL), 0 while this "
                "worker cannot reach it and sends at its own share of the limits",
                0 if self.budget.fallback is not None else 1,
            )
            families.append(shared)
        return families

    async def _database(self) -> list[Metric]:
        now = self.clock.now()
        up = GaugeMetricFamily("hearback_database_up", "1 if the database answered this scrape")
        try:
            depth = await self.jobs.depth(now)
            cases = await open_cases(self.engine, now)
        except Exception as error:  # the counters are still worth serving
            log.warning("/metrics: the database did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_queue(depth), *_cases(cases)]


def _queue(depth: QueueDepth) -> list[Metric]:
    jobs = GaugeMetricFamily(
        "hearback_job_queue",
        "Jobs in the queue by state (due: waiting for a worker; expired_lease: its worker died)",
        labels=["state"],
    )
    jobs.add_metric(["due"], depth.due)
    jobs.add_metric(["scheduled"], depth.scheduled)
    jobs.add_metric(["running"], depth.running)
    jobs.add_metric(["expired_lease"], depth.expired_leases)
    jobs.add_metric(["failed"], depth.failed)
    lag = GaugeMetricFamily(
        "hearback_job_queue_lag_seconds",
        "How long the oldest due job has waited past its due time (0 when none waits)",
        depth.lag.total_seconds(),
    )
    return [jobs, lag]


def _cases(cases: OpenCases) -> list[Metric]:
    return [
        GaugeMetricFamily("hearback_cases_open", "Cases staff still have to act on", cases.open),
        GaugeMetricFamily(
            "hearback_cases_overdue",
            "Open cases past their first-response or resolution deadline",
            cases.overdue,
        ),
    ]
