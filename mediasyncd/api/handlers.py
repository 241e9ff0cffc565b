"""The control API's handlers (SPEC §3.12). Each reads its input, asks the daemon's `Control`, and answers
JSON; what a route is, its parameters and answers live in `routes.py` (which the OpenAPI document is
made from)."""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from mediasyncd.api.errors import error
from mediasyncd.api.guard import COOKIE, SESSIONS_KEY, tokens_equal
from mediasyncd.config_workflow import STAGE_NAMES
from mediasyncd.jobs import Job
from mediasyncd.state.catalog import FileQuery, parse_cursor

PURGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "remote": (str, type(None)),
    "dry_run": bool,
    "include_deleted_locally": bool,
    "local_only": bool,
}
WORKFLOW_FIELDS: dict[str, type | tuple[type, ...]] = {
    "from": (str, type(None)),
    "to": (str, type(None)),
    "dry_run": bool,
    "paths": list,
}
EVENTS_LIMIT = 1000
MAX_ID = 2**63 - 1  # SQLite's integers
UNTRUSTED = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
    "X-Content-Type-Options": "nosniff",
}
FILES_LIMIT = 50
FILES_MAX = 500
LONG_POLL_MAX = 60.0
WS_STATUS_EVERY = 0.25  # seconds between status messages on /api/v1/ws


class Control(Protocol):
    """What the daemon lets the API do."""

    def remote_names(self) -> list[str]: ...

    def remotes(self) -> list[dict[str, Any]]: ...

    def sync(self, name: str) -> Job: ...

    def purge(
        self, remote: str | None, *, dry_run: bool, include_deleted_locally: bool, local_only: bool
    ) -> Job: ...

    def workflow(self, *, first: str | None, last: str | None, dry_run: bool, paths: list[str]) -> Job: ...

    def job(self, job_id: str) -> Job | None: ...

    def jobs_list(self) -> list[Job]: ...

    def cancel(self, job_id: str) -> Job | None: ...

    def hold(self, name: str | None, held: bool) -> dict[str, Any]: ...

    async def events(self, since: int, types: list[str], wait: float, limit: int) -> list[dict[str, Any]]: ...

    def event_types(self) -> list[str]: ...

    async def last_event_id(self) -> int: ...

    def serialized(self) -> str: ...

    async def files(self, query: FileQuery) -> tuple[list[dict[str, Any]], str | None]: ...

    async def file(self, file_id: int) -> dict[str, Any] | None: ...

    def library(self) -> Path: ...

    async def thumbnail(self, file_id: int) -> str | None: ...


CONTROL_KEY = web.AppKey("control", Control)
SOCKETS_KEY = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])  # closed when the daemon stops
TOKEN_KEY = web.AppKey("token", str)


def _control(request: web.Request) -> Control:
    return request.app[CONTROL_KEY]


def _remote_name(request: web.Request) -> str | web.Response:
    name = request.match_info["name"]
    if name not in _control(request).remote_names():
        return error(404, f"no remote named {name!r}", "name")
    return name


async def list_remotes(request: web.Request) -> web.Response:
    return web.json_response({"remotes": _control(request).remotes()})


async def get_remote(request: web.Request) -> web.Response:
    name = _remote_name(request)
    if isinstance(name, web.Response):
        return name
    [remote] = [r for r in _control(request).remotes() if r["name"] == name]
    return web.json_response({"remote": remote})


async def sync_remote(request: web.Request) -> web.Response:
    name = await _posted_to_remote(request)
    if isinstance(name, web.Response):
        return name
    return web.json_response({"job": _control(request).sync(name).snapshot()}, status=202)


async def pause_remote(request: web.Request) -> web.Response:
    return await _hold(request, held=True, remote=True)


async def resume_remote(request: web.Request) -> web.Response:
    return await _hold(request, held=False, remote=True)


async def pause_purge(request: web.Request) -> web.Response:
    return await _hold(request, held=True, remote=False)


async def resume_purge(request: web.Request) -> web.Response:
    return await _hold(request, held=False, remote=False)


async def _hold(request: web.Request, *, held: bool, remote: bool) -> web.Response:
    """Pause or resume the remote the path names (`remote`), or the purge schedule."""
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    name = _remote_name(request) if remote else None
    if isinstance(name, web.Response):
        return name
    return web.json_response(_control(request).hold(name, held))


async def _posted_to_remote(request: web.Request) -> str | web.Response:
    """The remote a POST names in its path, once its body (if any) is a JSON object; or the error."""
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _remote_name(request)


async def purge(request: web.Request) -> web.Response:
    control = _control(request)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    for key, value in body.items():
        kinds = PURGE_FIELDS.get(key)
        if kinds is None:
            return error(400, f"unknown field {key!r}; known: {', '.join(PURGE_FIELDS)}", key)
        if not isinstance(value, kinds):
            return error(400, f"{key} has the wrong type ({type(value).__name__})", key)
    remote = body.get("remote")
    if remote is not None and remote not in control.remote_names():
        return error(404, f"no remote named {remote!r}", "remote")
    job = control.purge(
        remote,
        dry_run=body.get("dry_run", True),
        include_deleted_locally=body.get("include_deleted_locally", False),
        local_only=body.get("local_only", False),
    )
    return web.json_response({"job": job.snapshot()}, status=202)


async def workflow_run(request: web.Request) -> web.Response:
    control = _control(request)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    for key, value in body.items():
        kinds = WORKFLOW_FIELDS.get(key)
        if kinds is None:
            return error(400, f"unknown field {key!r}; known: {', '.join(WORKFLOW_FIELDS)}", key)
        if not isinstance(value, kinds):
            return error(400, f"{key} has the wrong type ({type(value).__name__})", key)
    for key in ("from", "to"):
        if body.get(key) is not None and body[key] not in STAGE_NAMES:
            return error(400, f"{key}: no stage {body[key]!r} ({', '.join(STAGE_NAMES)})", key)
    paths = body.get("paths", [])
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        return error(400, "paths must be absolute library paths", "paths")
    job = control.workflow(
        first=body.get("from"), last=body.get("to"), dry_run=body.get("dry_run", False), paths=paths
    )
    return web.json_response({"job": job.snapshot()}, status=202)


async def list_jobs(request: web.Request) -> web.Response:
    return web.json_response({"jobs": [j.snapshot() for j in reversed(_control(request).jobs_list())]})


async def get_job(request: web.Request) -> web.Response:
    job = _control(request).job(request.match_info["id"])
    if job is None:
        return error(404, f"no job {request.match_info['id']!r}", "id")
    return web.json_response({"job": job.snapshot()})


async def cancel_job(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    job = _control(request).cancel(request.match_info["id"])
    if job is None:
        return error(404, f"no job {request.match_info['id']!r}", "id")
    if job.task is not None and not job.finished:
        await asyncio.wait({job.task}, timeout=5)  # a purge stops between batches
    return web.json_response({"job": job.snapshot()})


async def events(request: web.Request) -> web.Response:
    """Long poll on the event log: the events after `since` (exclusive), or wait up to `timeout` seconds
    for one; a client that reconnects with the last id it saw misses nothing."""
    control = _control(request)
    since = _int_param(request, "since", 0, minimum=0, maximum=MAX_ID)
    if isinstance(since, web.Response):
        return since
    wait = _float_param(request, "timeout", 30.0, minimum=0.0, maximum=LONG_POLL_MAX)
    if isinstance(wait, web.Response):
        return wait
    limit = _int_param(request, "limit", EVENTS_LIMIT, minimum=1, maximum=EVENTS_LIMIT)
    if isinstance(limit, web.Response):
        return limit
    types = [t for part in request.query.getall("types", []) for t in part.split(",") if t]
    unknown = sorted(set(types) - set(control.event_types()))
    if unknown:
        known = ", ".join(control.event_types())
        return error(400, f"unknown event type(s) {', '.join(unknown)}; known: {known}", "types")
    found = await control.events(since, types, wait, limit)
    last = found[-1]["id"] if found else since
    return web.json_response({"events": found, "last_id": last})


async def list_files(request: web.Request) -> web.Response:
    """The library's files, newest first, filtered (q searches prompts, models, paths like `mediasyncd
    search`); `next_cursor` asks for the next page."""
    limit = _int_param(request, "limit", FILES_LIMIT, minimum=1, maximum=FILES_MAX)
    if isinstance(limit, web.Response):
        return limit
    since = _since_param(request)
    if isinstance(since, web.Response):
        return since
    cursor = None
    if "cursor" in request.query:
        try:
            cursor = parse_cursor(request.query["cursor"])
        except ValueError:
            return error(400, "cursor is not one this API gave", "cursor")
    q = request.query.get
    if "\x00" in (q("q") or ""):
        return error(400, "q must not hold a NUL character", "q")
    query = FileQuery(q("q"), q("remote"), q("generator"), q("model"), since, limit, cursor)
    files, next_cursor = await _control(request).files(query)
    return web.json_response({"files": files, "next_cursor": next_cursor})


async def get_file(request: web.Request) -> web.Response:
    found = await _file(request)
    return found if isinstance(found, web.Response) else web.json_response({"file": found})


async def file_content(request: web.Request) -> web.StreamResponse:
    """The library file itself (HTTP ranges work): only a file the state DB knows, inside the library."""
    found = await _file(request)
    if isinstance(found, web.Response):
        return found
    return await _library_file(request, found["library_path"])


async def file_thumbnail(request: web.Request) -> web.StreamResponse:
    found = await _file(request)
    if isinstance(found, web.Response):
        return found
    if not found["thumbnail"]:
        return error(404, "this file has no thumbnail (yet)", "id")
    thumb = await _control(request).thumbnail(found["id"])
    if thumb is None:
        return error(404, "this file has no thumbnail (yet)", "id")
    return await _library_file(request, thumb)


async def _library_file(request: web.Request, rel: str) -> web.StreamResponse:
    """A file of the library as the answer, checked off the event loop (a stale NAS mount blocks). It
    comes from a remote, so the browser may not run it: a sandboxing CSP, no type sniffing, and anything
    but an image or a video is a download."""
    library = _control(request).library()
    path = await asyncio.to_thread(_inside, library, rel)
    if path is None:
        return error(404, "the file is not in the library (any more)", "id")
    response = web.FileResponse(path, headers=UNTRUSTED)
    kind = mimetypes.guess_type(path.name)[0] or ""
    if not kind.startswith(("image/", "video/")) or kind == "image/svg+xml":
        response.headers["Content-Disposition"] = "attachment"
    return response


def _inside(library: Path, rel: str) -> Path | None:
    root = library.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


async def _file(request: web.Request) -> dict[str, Any] | web.Response:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        return error(400, f"id must be a whole number up to {MAX_ID}, got {raw!r}", "id")
    found = await _control(request).file(int(raw))
    if found is None:
        return error(404, f"no file {raw} in the library", "id")
    return found


def _since_param(request: web.Request) -> float | web.Response | None:
    """Epoch seconds (an ISO 8601 time is taken too); empty is no filter."""
    raw = request.query.get("since")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            value = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # no offset: UTC
        except ValueError:
            return error(400, f"since must be a time (epoch seconds or ISO 8601), got {raw!r}", "since")
    if not math.isfinite(value) or value < 0:
        return error(400, f"since must be a time after 1970, got {raw!r}", "since")
    return value


async def ws(request: web.Request) -> web.WebSocketResponse:
    """Typed messages: `{"type": "status", "data": <the /status JSON>}` up to 4 times a second, and
    `{"type": "event", "data": <an event>}` for each event after `since` (from the log, so a client that
    reconnects with the last id it saw misses nothing)."""
    control = _control(request)
    since = _int_param(request, "since", -1, minimum=-1)
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    track(request, socket)
    if isinstance(since, web.Response):
        await socket.close(message=b"since must be a whole number")
        return socket
    last = since if since >= 0 else await control.last_event_id()

    async def statuses() -> None:
        while True:
            await socket.send_str(f'{{"type":"status","data":{control.serialized()}}}')
            await asyncio.sleep(WS_STATUS_EVERY)

    async def events_after() -> None:
        nonlocal last
        while True:
            for event in await control.events(last, [], LONG_POLL_MAX, EVENTS_LIMIT):
                await socket.send_json({"type": "event", "data": event})
                last = event["id"]

    async def until_closed() -> None:
        async for _ in socket:  # the client sends nothing we act on; its close ends the stream
            pass

    tasks = [asyncio.ensure_future(c) for c in (statuses(), events_after(), until_closed())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await socket.close()
    return socket


def track(request: web.Request, socket: web.WebSocketResponse) -> None:
    """Note a WebSocket, to close it with "going away" when the daemon stops (not leave it hanging)."""
    sockets = request.app.get(SOCKETS_KEY)
    if sockets is not None:
        sockets.add(socket)


async def close_sockets(app: web.Application) -> None:
    for socket in list(app.get(SOCKETS_KEY, ())):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"the daemon is stopping")


async def login(request: web.Request) -> web.Response:
    """Trade the token for an HttpOnly, SameSite=Strict session cookie (the dashboard's images and
    WebSockets carry it)."""
    token = request.app.get(TOKEN_KEY)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    given = body.get("token")
    if not isinstance(given, str):
        return error(400, "token must be a string", "token")
    if token is None:
        return error(409, "this daemon has no status_token; there is nothing to log in to", "token")
    if not tokens_equal(given, token):
        return error(401, "wrong token", "token")
    response = web.json_response({"ok": True})
    session = request.app[SESSIONS_KEY].start()
    response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    """End this browser's session (its cookie no longer works, here or anywhere it leaked to)."""
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    sessions = request.app.get(SESSIONS_KEY)
    if sessions is not None:
        sessions.end(request.cookies.get(COOKIE, ""))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def openapi(request: web.Request) -> web.Response:
    from mediasyncd.api.routes import document

    return web.json_response(document())


def _int_param(
    request: web.Request, name: str, default: int, *, minimum: int, maximum: int | None = None
) -> int | web.Response:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if raw.isascii() else int("?")
    except ValueError:
        return error(400, f"{name} must be a whole number, got {raw!r}", name)
    if value < minimum or (maximum is not None and value > maximum):
        return error(400, f"{name} must be between {minimum} and {maximum or 'any'}, got {value}", name)
    return value


def _float_param(
    request: web.Request, name: str, default: float, *, minimum: float, maximum: float
) -> float | web.Response:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        return error(400, f"{name} must be a number of seconds, got {raw!r}", name)
    if not minimum <= value <= maximum:
        return error(400, f"{name} must be between {minimum:g} and {maximum:g}, got {raw}", name)
    return value


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object; no body at all is `{}` (`curl -X POST` with no data)."""
    if not request.body_exists:
        return {}
    if request.content_type != "application/json":
        return error(415, "the body must be JSON (Content-Type: application/json)", "Content-Type")
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError as exc:
        return error(400, f"the body is not valid JSON: {exc}", None)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", None)
    return body
