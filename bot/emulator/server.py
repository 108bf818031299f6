"""The HTTP side: Bot API routes, request decoding and file downloads.

Routes:

- ``GET|POST /bot<token>/<method>`` — a Bot API call. Parameters come from the query string
  and from the body: JSON (``application/json``), ``application/x-www-form-urlencoded`` or
  ``multipart/form-data``. In multipart bodies, parts with a filename are uploads: they can be
  referred to as ``attach://<part name>`` or be the parameter themselves.
- ``GET /file/bot<token>/<file_path>`` — the bytes of a file whose path getFile returned.
- ``/_emulator/...`` — the control API (control.py).

Everything else — authorisation, faults, validation, flood limits, the method itself and the
recording of the call — happens in :meth:`Emulator.handle`, so calls made through a webhook
response take exactly the same path.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.multipart import BodyPartReader

from bot.emulator import control
from bot.emulator.errors import ApiError, bad_request, unauthorized
from bot.emulator.spec import Upload

if TYPE_CHECKING:
    from bot.emulator.emulator import Emulator

#: Telegram accepts uploads up to 50 MB through the public Bot API.
MAX_BODY = 52 * 1024 * 1024
EMULATOR_KEY = web.AppKey("emulator", object)


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[EMULATOR_KEY] = emulator
    app.router.add_route("GET", "/bot{token}/{method}", _api)
    app.router.add_route("POST", "/bot{token}/{method}", _api)
    app.router.add_get("/file/bot{token}/{path:.+}", _file)
    control.setup(app, emulator)
    return app


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status=status,
        content_type="application/json",
    )


async def _api(request: web.Request) -> web.Response:
    emulator: Emulator = request.app[EMULATOR_KEY]  # type: ignore[assignment]
    token = request.match_info["token"]
    name = request.match_info["method"]
    try:
        params, uploads = await read_params(request)
    except ApiError as exc:
        return json_response(exc.payload(), exc.status)
    status, body = await emulator.handle(token, name, params, uploads)
    return json_response(body, status)


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """The parameters of a Bot API request, whatever encoding it used, and its uploads."""
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.body_exists:
        return params, uploads
    content_type = request.content_type
    if content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise bad_request("can't parse JSON encoded request body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON encoded request body must be an Object")
            params.update(body)
    elif content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                upload = Upload(
                    filename=part.filename,
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    data=bytes(await part.read()),
                )
                uploads[part.name] = upload
                params[part.name] = upload
            else:
                params[part.name] = await part.text()
    else:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params, uploads


async def _file(request: web.Request) -> web.StreamResponse:
    emulator: Emulator = request.app[EMULATOR_KEY]  # type: ignore[assignment]
    if request.match_info["token"] not in emulator.world.bots_by_token:
        error = unauthorized()
        return json_response(error.payload(), error.status)
    path = request.match_info["path"]
    for record in emulator.world.files.values():
        if record.file_path == path:
            return web.Response(
                body=record.data, content_type=record.mime_type or "application/octet-stream"
            )
    return json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
