"""Start-up and shutdown: the bot, its dispatcher, the database and the HTTP server as one unit.

`Application` owns everything that must be opened and closed in order. It runs until its stop event
is set (SIGINT/SIGTERM in `run_until_signalled`), then stops taking updates, lets the ones in
flight finish (up to `SHUTDOWN_TIMEOUT`), and only then closes the HTTP server, the Telegram
session and the database. Updates fetched but not yet confirmed to Telegram are delivered again
after a restart, which is why update handling is idempotent.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from datetime import tzinfo
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.arrivals import LinkArrivals
from bot.cases import CasePolicy, CaseService
from bot.clock import Clock, SystemClock
from bot.conversation import ConversationPolicy, ConversationService
from bot.customers import CustomerService
from bot.dedupe import OncePerUpdate, SeenUpdates, seen_updates_from_settings
from bot.digest import WeeklyDigest
from bot.flood import FloodGuard
from bot.http import build_http_app, start_http_server
from bot.i18n import LocaleMiddleware, catalogues
from bot.links import DeepLink, Links, personal_link
from bot.live_settings import LiveSettings
from bot.menus import CommandMenus
from bot.metrics import Metrics
from bot.policy import SurveyPolicy
from bot.privacy import PrivacyService
from bot.ratelimit import RateLimiter
from bot.reconnect import DatabaseReconnect
from bot.replies import Replies
from bot.roles import Roles
from bot.scheduler import Scheduler, SchedulerConfig
from bot.sentiment import warm_up
from bot.settings import Settings
from bot.staffchats import Routing, StaffAccess, StaffChatService
from bot.stats import StatsService
from bot.stats_rollup import StatsRollup
from bot.surveys import SurveyService
from bot.test_surveys import TestSurveyService
from bot.text_editor import load_overrides
from bot.texts import Texts
from bot.training import AdaptiveClassifier, TrainingService
from bot.visits import VisitService
from bot.webhook import WebhookReceiver, WebhookRefused, default_secret
from handlers import build_router
from storage.db import create_engine, create_session_factory, serving_options
from storage.jobs import JobQueue
from storage.models import SurveyScale

log = logging.getLogger(__name__)

# How often each process re-reads the settings admins change in the chat (seconds).
SETTINGS_REFRESH = 30.0


class InFlightUpdates(BaseMiddleware):
    """Counts updates being handled, so shutdown can wait for them instead of cutting them off."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, grace: float) -> bool:
        """Wait until nothing is in flight; False if the timeout came first."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True


class OnePerChat(BaseMiddleware):
    """Handles each chat's updates in the order they arrived, and different chats in parallel.

    aiogram runs every update as its own task, so a customer who taps a score and types at once
    could be answered out of order. Tasks start in arrival order and asyncio locks are fair, so
    taking a per-chat lock first thing keeps the conversation in order.
    """

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat = data.get("event_chat")
        key = chat.id if chat is not None else getattr(data.get("event_from_user"), "id", None)
        if key is None:
            return await handler(event, data)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                return await handler(event, data)
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:  # forget idle chats, or the table grows with every customer
                del self._users[key]
                del self._locks[key]


def build_bot(token: str, api_url: str = "", *, limiter: RateLimiter | None = None) -> Bot:
    """The aiogram Bot, with every request it makes paced and retried by ``limiter`` (by default
    one with Telegram's limits and no paid broadcast; pass `RateLimiter.from_settings`)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else None
    bot = Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=None))
    return (limiter or RateLimiter()).install(bot)


class Application:
    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None = None,
        api_url: str | None = None,
        clock: Clock | None = None,
        extra_routers: Iterable[Router] = (),
        limiter: RateLimiter | None = None,
        webhook: bool = False,
        seen_updates: SeenUpdates | None = None,
    ) -> None:
        token = token or (settings.bot_token.get_secret_value() if settings.bot_token else None)
        if not token:
            raise ValueError("Application needs a bot token (the sandbox passes the emulator's)")
        if webhook and not settings.webhook_url:
            raise ValueError("webhook mode needs WEBHOOK_URL")
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine: AsyncEngine = create_engine(
            settings.database_url, **serving_options(settings.database_url)
        )
        self.session_factory: async_sessionmaker = create_session_factory(self.engine)
        # With REDIS_URL every worker of the bot draws on one send budget (bot.ratelimit).
        self.limiter = limiter or RateLimiter.from_settings(settings, token)
        self.bot = build_bot(
            token,
            settings.telegram_api_url if api_url is None else api_url,
            limiter=self.limiter,
        )
        self.jobs = JobQueue(self.engine, clock=self.clock)
        # Settings admins change in the chat win over the environment: `_apply` hands each
        # change to the services below.
        self.live = LiveSettings(self.session_factory, self.clock, settings)
        self.policy = SurveyPolicy.from_settings(settings)
        self.words = Texts(settings.business_name, default_locale=settings.default_language)
        self.visits = VisitService(
            self.session_factory,
            self.jobs,
            self.policy,
            self.clock,
            SurveyScale(settings.survey_scale),
        )
        # Timed jobs (survey sends, reminders, expiries) run here, sending through self.bot.
        self.scheduler = Scheduler(self.jobs, self.clock, SchedulerConfig.from_settings(settings))
        self.surveys = SurveyService(
            self.session_factory,
            self.jobs,
            self.policy,
            self.clock,
            self.bot,
            words=self.words,
        )
        self.surveys.register(self.scheduler)
        self.links = Links.from_settings(self.session_factory, settings, self.clock)
        self.in_flight = InFlightUpdates()
        self.customers = CustomerService(self.session_factory, self.clock, self.jobs)
        # The learned models where they beat the baseline, TextBlob otherwise (bot.training).
        self.classifier = AdaptiveClassifier()
        self.training = TrainingService(
            self.session_factory,
            self.jobs,
            self.clock,
            self.classifier,
            zone=settings.zone,
            retrain_every=settings.retrain_every,
        )
        self.training.register(self.scheduler)
        self.conversation = ConversationService(
            self.session_factory,
            self.clock,
            self.classifier,
            ConversationPolicy.from_settings(settings),
            learning=self.training,
        )
        # Staff chats: where cases go (routing) and who may act on them there.
        self.roles = Roles(self.session_factory, settings.admin_ids, self.clock)
        self.staff_chats = StaffChatService(self.session_factory, self.clock, self.bot)
        self.routing = Routing()
        self.staff_access = StaffAccess(self.bot, self.roles)
        self.cases = CaseService(
            self.session_factory,
            self.jobs,
            self.clock,
            self.bot,
            self.words,
            routing=self.routing,
            access=self.staff_access,
            admins=self.roles,
            policy=CasePolicy.from_settings(settings),
            zone_for=self.zone_for,
        )
        self.cases.register(self.scheduler)
        self.conversation.cases = self.cases
        # /stats and the weekly digest to staff chats (WEEKLY_DIGEST).
        self.stats = StatsService(self.session_factory, self.clock, self.policy.time_zone)
        self.digest = WeeklyDigest(
            self.jobs,
            self.clock,
            self.bot,
            self.stats,
            self.staff_chats,
            slot=settings.weekly_digest,
            zone=lambda: self.policy.time_zone,
        )
        self.digest.register(self.scheduler)
        # /stats's daily roll-up, recounted every STATS_ROLLUP_EVERY (bot.stats_rollup).
        self.rollup = StatsRollup(
            self.session_factory,
            self.clock,
            zone=lambda: self.policy.time_zone,
            every=settings.stats_rollup_every,
            jobs=self.jobs,
        )
        self.rollup.register(self.scheduler)
        self.cases.learning = self.training
        self.menus = CommandMenus(
            self.bot, self.roles, self.staff_chats, reachable=self.customers.started_among
        )
        self.test_surveys = TestSurveyService(
            self.session_factory,
            self.jobs,
            self.surveys,
            self.visits,
            self.clock,
            self.bot,
            self.words,
        )
        self.arrivals = LinkArrivals(
            self.session_factory, self.links, self.visits, self.jobs, self.policy, self.clock
        )
        self.dispatcher = Dispatcher(
            # No handler keeps FSM state: its middleware would only cost every update a lookup.
            disable_fsm=True,
            settings=settings,
            clock=self.clock,
            words=self.words,
            replies=Replies(self.words, self.zone_for),
            conversation=self.conversation,
            privacy=PrivacyService(self.session_factory, self.clock),
            customers=self.customers,
            arrivals=self.arrivals,
            sessions=self.session_factory,
            live=self.live,
            links=self.links,
            visits=self.visits,
            surveys=self.surveys,
            menus=self.menus,
            test_surveys=self.test_surveys,
            roles=self.roles,
            staff_chats=self.staff_chats,
            staff_access=self.staff_access,
            cases=self.cases,
            stats=self.stats,
        )
        self.dispatcher.update.outer_middleware(self.in_flight)
        # Before OnePerChat: a second delivery is dropped without queueing behind the first.
        self.once = OncePerUpdate(seen_updates or seen_updates_from_settings(settings, token))
        self.dispatcher.update.outer_middleware(self.once)
        self.dispatcher.update.outer_middleware(OnePerChat())
        # An update whose handler lost the database is handled again once it is back.
        self.dispatcher.update.outer_middleware(DatabaseReconnect())
        # After OnePerChat: the customer's language is read in turn with their other updates.
        self.locales = LocaleMiddleware(
            catalogues(), self.customers.language_of, default=settings.default_language
        )
        self.dispatcher.update.outer_middleware(self.locales)
        self.live.subscribe(self._apply)
        self.dispatcher.message.outer_middleware(FloodGuard())
        # Extra routers go first so they can take updates the catch-all handlers would swallow.
        self.dispatcher.include_routers(*extra_routers, build_router())
        # Webhook mode (`run --webhook`): Telegram posts updates to the HTTP server below.
        self.webhook: WebhookReceiver | None = None
        if webhook:
            secret = settings.webhook_secret.get_secret_value() or default_secret(token)
            self.webhook = WebhookReceiver(self.dispatcher, self.bot, secret)
        self.metrics = Metrics(
            updates=self.once.stats,
            limiter=self.limiter.stats,
            scheduler=self.scheduler,
            in_flight=lambda: self.in_flight.count,
            jobs=self.jobs,
            engine=self.engine,
            clock=self.clock,
            webhook=self.webhook.stats if self.webhook is not None else None,
            budget=self.limiter.budget,
        )
        self.stop_requested = asyncio.Event()
        self.started = asyncio.Event()
        self.http_url = ""  # known once running: HTTP_PORT may be 0, "pick a free port"

    async def run(self) -> None:
        """Serve until `stop()` (or a failure of polling), then shut down in order."""
        # Settings and texts admins changed in the chat, before the first update or API call
        # could be handled on the environment's values.
        await self.live.load()
        await load_overrides(self.session_factory, self.words)
        # The learned models in use, before the first comment is read (none: nothing imported).
        await self.training.load()
        http_app = build_http_app(
            self.settings,
            self.engine,
            visits=self.visits,
            clock=self.clock,
            personal_link=self.personal_link,
        )
        self.metrics.install(http_app)
        if self.webhook is not None:
            self.webhook.install(http_app, self.settings.webhook_path)
        http = await start_http_server(http_app, self.settings.http_host, self.settings.http_port)
        if self.webhook is not None:
            # "polling" either way: the task that feeds updates, and whose failure stops the bot.
            polling = asyncio.create_task(self._take_webhook_posts(), name="webhook")
        else:
            polling = asyncio.create_task(self._poll(), name="polling")
        stop = asyncio.create_task(self.stop_requested.wait(), name="stop-requested")
        host, port = http.addresses[0][:2]
        self.http_url = f"http://{host}:{port}"
        refresh: asyncio.Task[None] | None = None
        try:
            me = await self.bot.me()
            # Each audience's command menu; Telegram refusing one (an admin who never wrote to
            # the bot) is logged and leaves the rest.
            await self.menus.publish_all()
            await self.conversation.ensure_reasons()
            await self.digest.start()
            # TextBlob and the language model load in ~0.4 s: before the first comment, not in it.
            await asyncio.to_thread(warm_up)
            log.info("Bot @%s is running; HTTP server on %s", me.username, self.http_url)
            # What is alive now (aiogram's models, the app) lives as long as the process: keep
            # it out of the collector's full passes, which otherwise stall the event loop ~250 ms
            # each time — and the steady 30/s of survey sends with it.
            gc.freeze()
            await self.training.schedule_nightly()
            await self.rollup.start()
            self.scheduler.start()
            refresh = asyncio.create_task(self._refresh_settings(), name="refresh-settings")
            self.started.set()
            await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if refresh is not None:
                refresh.cancel()
            self.scheduler.request_stop()  # no new jobs; those in flight finish below
            if self.webhook is not None:
                # Posts from now on get 503 and come again; those accepted are finished first.
                self.webhook.close()
                polling.cancel()
                await self.webhook.drain(self.settings.shutdown_timeout)
            elif not polling.done():
                try:
                    await self.dispatcher.stop_polling()
                except RuntimeError:  # stopped before polling had begun: nothing to wind down
                    polling.cancel()
            with suppress(asyncio.CancelledError):
                await polling
            if not await self.in_flight.drain(self.settings.shutdown_timeout):
                log.warning(
                    "%d update(s) still in flight after %.0fs; Telegram will deliver them again",
                    self.in_flight.count,
                    self.settings.shutdown_timeout,
                )
            # Before the bot session closes: jobs in flight finish or go back to the queue.
            await self.scheduler.shutdown(self.settings.shutdown_timeout)
            await http.cleanup()
            await self.once.seen.close()
            await self.limiter.close()
            await self.bot.session.close()
            await self.engine.dispose()
            log.info("Stopped cleanly")
        if self.webhook is None or not polling.cancelled():
            polling.result()  # a polling failure (e.g. a wrong token) surfaces here

    async def _poll(self) -> None:
        """Poll Telegram for updates. A webhook left by webhook mode is removed first (its
        pending updates stay): while one is set Telegram refuses every poll, and the bot would
        look healthy while hearing nothing."""
        try:
            if (await self.bot.get_webhook_info()).url:
                log.info("Removing the webhook that webhook mode set: polling from now on")
                await self.bot.delete_webhook()
        except TelegramAPIError as error:  # network errors too: polling retries by itself
            log.warning("Could not check for a webhook (%s); polling anyway", type(error).__name__)
        await self.dispatcher.start_polling(
            self.bot, handle_signals=False, close_bot_session=False, polling_timeout=10
        )

    async def _take_webhook_posts(self) -> None:
        """Ask Telegram to post updates to WEBHOOK_URL, then serve them until cancelled. Updates
        that waited while no process took them are posted as soon as the webhook is set."""
        assert self.webhook is not None
        try:
            await self.bot.set_webhook(
                self.settings.webhook_url,
                secret_token=self.webhook.secret,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        except TelegramAPIError as error:
            raise WebhookRefused(
                f"Telegram refused WEBHOOK_URL {self.settings.webhook_url}: {error.message}"
            ) from None
        log.info("Webhook set; Telegram posts updates to the HTTP server")
        await asyncio.Event().wait()  # the HTTP server does the rest

    async def _refresh_settings(self) -> None:
        """Pick up settings and texts another process changed (several workers share one
        database)."""
        while True:
            await asyncio.sleep(SETTINGS_REFRESH)
            try:
                if await self.live.load():
                    log.info("Settings changed elsewhere; now in force here too")
                await load_overrides(self.session_factory, self.words, warn=False)
                if await self.training.load():
                    log.info("A newer learned model was switched on elsewhere; now in use here")
            except Exception:  # a database hiccup: the next round tries again
                log.warning("Could not re-read the settings", exc_info=True)

    def zone_for(self, name: str | None) -> tzinfo:
        """A customer's time zone by name, TIMEZONE as it is now when unknown."""
        return self.policy.zone_for(name)

    def _apply(self, settings: Settings) -> None:
        """Hand settings changed in the chat to every service that reads them. Work already
        scheduled keeps the times it was given; what is decided from now on uses the new ones."""
        self.policy = SurveyPolicy.from_settings(settings)
        self.visits.policy = self.surveys.policy = self.arrivals.policy = self.policy
        self.visits.scale = SurveyScale(settings.survey_scale)
        self.conversation.policy = ConversationPolicy.from_settings(settings)
        self.cases.policy = CasePolicy.from_settings(settings)
        self.stats.zone = self.policy.time_zone
        self.rollup.apply(settings.stats_rollup_every)
        self.digest.apply(settings.weekly_digest)
        self.training.zone = settings.zone
        self.words.business = settings.business_name
        self.words.default_locale = self.locales.default = settings.default_language

    async def personal_link(self, ref: str) -> DeepLink:
        """The deep link that makes whoever presses Start the customer with this ref."""
        me = await self.bot.me()  # aiogram caches it after the first call
        return await personal_link(self.links, me.username or "", ref)

    def stop(self) -> None:
        self.stop_requested.set()


async def run_until_signalled(app: Application) -> None:
    """Run the application; SIGINT or SIGTERM asks it to stop gracefully."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, app, sig)
    try:
        await app.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _on_signal(app: Application, sig: signal.Signals) -> None:
    log.info("%s received: finishing the updates in flight, then stopping", sig.name)
    app.stop()
