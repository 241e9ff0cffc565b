"""The status server: `make_app(view)` -> aiohttp Application with /status, /healthz, /ws and, given a
`Control`, the control API (`api`) and the dashboard at `/` that uses it.

It only reads the StatusView; it owns no state. Binding to a non-loopback address requires a token
(checked by config validation), sent as `Authorization: Bearer <token>` or the session cookie (api.guard).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from mediasyncd.api import CONTROL_KEY, TOKEN_KEY, Control, add_dashboard, add_routes, guard
from mediasyncd.api.errors import json_errors
from mediasyncd.api.guard import SESSIONS_KEY, Sessions
from mediasyncd.api.handlers import SOCKETS_KEY, close_sockets, track
from mediasyncd.progress import StatusView

SHUTDOWN_S = 1.0
WS_INTERVAL = 0.25  # seconds between WebSocket pushes (at most 4 per second)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VIEW_KEY = web.AppKey("view", StatusView)


def make_app(
    view: StatusView,
    token: str | None = None,
    control: Control | None = None,
    *,
    loopback_bind: bool = True,
    metrics: Handler | None = None,
    metrics_public: bool = False,
) -> web.Application:
    """Every request passes the guard (api.guard): loopback Host names on a loopback bind, same-site JSON
    for state changes, and the token (when set) everywhere but /healthz."""
    app = web.Application(
        middlewares=[json_errors(), guard(token, loopback_bind=loopback_bind, metrics_public=metrics_public)]
    )
    app[VIEW_KEY] = view
    app[SOCKETS_KEY] = weakref.WeakSet()
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/status", status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws", websocket)
    if metrics is not None:
        app.router.add_get("/metrics", metrics)
    if control is not None:
        app[CONTROL_KEY] = control
        if token is not None:
            app[TOKEN_KEY] = token
            app[SESSIONS_KEY] = Sessions()
        add_routes(app)
        add_dashboard(app)
    return app


async def status(request: web.Request) -> web.Response:
    return web.Response(text=request.app[VIEW_KEY].serialized(), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    track(request, ws)
    view = request.app[VIEW_KEY]
    reader = asyncio.ensure_future(ws.receive())
    try:
        while not ws.closed:
            await ws.send_str(view.serialized())
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


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    # A client that goes away cancels its handler (a long poll holds nothing); at a stop, requests
    # still running get SHUTDOWN_S before they are cancelled (a long poll could otherwise hold it a minute).
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=SHUTDOWN_S
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
