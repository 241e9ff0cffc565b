"""The status server: `make_app(view)` -> aiohttp Application with /status, /healthz, /ws and, given a
`Control`, the control API (`api`).

It only reads the StatusView; it owns no state. Binding to a non-loopback address requires a token
(checked by config validation), sent as `Authorization: Bearer <token>` or `?token=`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Middleware

from mediasyncd.api import Control, add_routes, loopback_guard
from mediasyncd.progress import StatusView

WS_INTERVAL = 0.25  # seconds between WebSocket pushes (at most 4 per second)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VIEW_KEY = web.AppKey("view", StatusView)


def make_app(view: StatusView, token: str | None = None, control: Control | None = None) -> web.Application:
    """Without a token (a loopback bind, as config validation ensures), requests are held to loopback
    names and same-site JSON; with one, every route but /healthz needs it."""
    app = web.Application(middlewares=[_auth(token)] if token else [loopback_guard()])
    app[VIEW_KEY] = view
    app.router.add_get("/status", status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket)
    if control is not None:
        add_routes(app, control)
    return app


def _auth(token: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        return await handler(request)

    return middleware


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[VIEW_KEY].snapshot(), dumps=_dumps)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    view = request.app[VIEW_KEY]
    reader = asyncio.ensure_future(ws.receive())
    try:
        while not ws.closed:
            await ws.send_str(_dumps(view.snapshot()))
            done, _ = await asyncio.wait({reader}, timeout=WS_INTERVAL)
            if done:
                msg = reader.result()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                reader = asyncio.ensure_future(ws.receive())
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        reader.cancel()
    return ws


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
