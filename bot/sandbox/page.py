"""The sandbox page: customer, staff and admin side by side, on SANDBOX_PORT.

One small aiohttp app in the sandbox's process serves three plain files (static/: no build step,
nothing from a CDN) and, on the same origin, the emulator's control API (`/_emulator/…`: send as
a person, tap a button, the live event stream, files), so the page plays every part through the
same API a test in another process would use. Two routes of its own:

- ``GET /sandbox/world``: who is who (the bot, customers, staff, admin, the staff forum);
- ``POST /sandbox/visits`` ``{customer_id, now?, location?}``: records a visit through the
  bot's real HTTP API (``now``: the visit was SURVEY_DELAY ago, so its survey is due at once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator import control

if TYPE_CHECKING:
    from bot.sandbox import Sandbox

STATIC = Path(__file__).with_name("static")
SANDBOX_KEY = web.AppKey("sandbox", object)


def build_page_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SANDBOX_KEY] = sandbox
    control.setup(app, sandbox.emulator)
    app.router.add_get("/", index)
    app.router.add_get("/sandbox/world", world)
    app.router.add_post("/sandbox/visits", record_visit)
    app.router.add_static("/static/", STATIC)
    return app


async def start_page(sandbox: Sandbox) -> tuple[web.AppRunner, str]:
    settings = sandbox.settings
    # A short shutdown: the only long requests are event streams, which end on shutdown.
    runner = web.AppRunner(build_page_app(sandbox), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.sandbox_port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(
            f"cannot listen on {settings.http_host}:{settings.sandbox_port} ({error.strerror}); "
            "set SANDBOX_PORT to a free port"
        ) from error
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]  # type: ignore[return-value]


async def world(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    cast, app = sandbox.cast, sandbox.app
    assert cast is not None and app is not None
    settings = app.live.current  # as admins may have changed it in the chat
    return web.json_response(
        {
            "bot": cast.bot.as_user(),
            "business": app.words.business,
            "customers": [person.as_user() for person in cast.customers],
            "staff": [person.as_user() for person in cast.staff],
            "admin": cast.admin.as_user(),
            "group": {"id": cast.group.id, "title": cast.group.title},
            "survey_delay": _duration(app.policy.delay.total_seconds()),
            "followup_delay": _duration(settings.followup_delay.total_seconds()),
            # Events up to here are history when the page opens, not news.
            "last_event": sandbox.emulator.events.last,
        },
        dumps=_dumps,
    )


async def record_visit(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    assert sandbox.cast is not None
    try:
        body: Any = await request.json()
    except ValueError:
        return web.json_response({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    try:
        customer = sandbox.cast.person(int(body.get("customer_id")))
    except (TypeError, ValueError):
        customer = None
    if customer is None or customer not in sandbox.cast.customers:
        return web.json_response({"error": "customer_id must be a sandbox customer"}, status=400)
    location = str(body.get("location") or "").strip() or None
    kwargs = {"location": location} if location else {}
    status, answer = await sandbox.record_visit(customer, now=bool(body.get("now")), **kwargs)
    return web.json_response({"status": status, "answer": answer}, dumps=_dumps)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
