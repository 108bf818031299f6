"""The bot's own HTTP server: health checks now; the visits API and the sandbox page build on it."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api import PersonalLinkMaker, install_api
from bot.clock import Clock, SystemClock
from bot.settings import Settings
from bot.visits import VisitService

log = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)


async def healthz(request: web.Request) -> web.Response:
    """For load balancers: 200 while the database answers, 503 when it does not."""
    try:
        async with request.app[ENGINE_KEY].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy"; the details go to the log only
        log.exception("Health check: the database did not answer")
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def build_http_app(
    settings: Settings,
    engine: AsyncEngine,
    *,
    visits: VisitService | None = None,
    clock: Clock | None = None,
    personal_link: PersonalLinkMaker | None = None,
) -> web.Application:
    """The bot's HTTP app: /healthz always; the visits API (bot/api.py) when given `visits`
    (the Application always gives it; health-only servers need not build a VisitService)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS_KEY] = settings
    app[ENGINE_KEY] = engine
    app.router.add_get("/healthz", healthz)
    if visits is not None:
        install_api(app, settings, visits, clock or SystemClock(), personal_link)
    return app


async def start_http_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(
            f"cannot listen on {host}:{port} ({error.strerror}); set HTTP_PORT to a free port"
        ) from error
    return runner
