"""The control API's first routes (SPEC §3.12): a pass now, a purge, and the jobs they start.

    POST /api/v1/remotes/{name}/sync          -> 202 {"job": {...}}
    POST /api/v1/purge {"remote", "dry_run"}  -> 202 {"job": {...}}   (the plan or what was done: result)
    GET  /api/v1/jobs/{id}                    -> 200 {"job": {...}}

Errors are `{"error": "...", "field": "..."}` with a 4xx status. On a loopback bind without a token,
every route refuses a Host that is not a loopback name (DNS rebinding), and state-changing routes refuse
a cross-site Origin and a body that is not JSON (CSRF from a browser).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from mediasyncd.jobs import Job

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PURGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "remote": (str, type(None)),
    "dry_run": bool,
    "include_deleted_locally": bool,
    "local_only": bool,
}


class Control(Protocol):
    """What the daemon lets the API do."""

    def remote_names(self) -> list[str]: ...

    def sync(self, name: str) -> Job: ...

    def purge(
        self, remote: str | None, *, dry_run: bool, include_deleted_locally: bool, local_only: bool
    ) -> Job: ...

    def job(self, job_id: str) -> Job | None: ...


CONTROL_KEY = web.AppKey("control", Control)


def add_routes(app: web.Application, control: Control) -> None:
    app[CONTROL_KEY] = control
    app.router.add_post("/api/v1/remotes/{name}/sync", sync_remote)
    app.router.add_post("/api/v1/purge", purge)
    app.router.add_get("/api/v1/jobs/{id}", get_job)


def error(status: int, message: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": message, "field": field}, status=status)


async def sync_remote(request: web.Request) -> web.Response:
    control = request.app[CONTROL_KEY]
    name = request.match_info["name"]
    if name not in control.remote_names():
        return error(404, f"no remote named {name!r}", "name")
    return web.json_response({"job": control.sync(name).snapshot()}, status=202)


async def purge(request: web.Request) -> web.Response:
    control = request.app[CONTROL_KEY]
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


async def get_job(request: web.Request) -> web.Response:
    job = request.app[CONTROL_KEY].job(request.match_info["id"])
    if job is None:
        return error(404, f"no job {request.match_info['id']!r}", "id")
    return web.json_response({"job": job.snapshot()})


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return error(415, "the body must be JSON (Content-Type: application/json)", None)
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError as exc:
        return error(400, f"the body is not valid JSON: {exc}", None)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object", None)
    return body


def loopback_guard() -> Middleware:
    """For a loopback bind without a token: loopback Host names only; for POSTs, no cross-site Origin
    and JSON bodies only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_loopback_name(request.host):
            return error(403, f"Host {request.host!r} is not a loopback name or address", "Host")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin is not None and not is_loopback_name(urlsplit(origin).netloc):
                return error(403, f"cross-site request from {origin!r} refused", "Origin")
            if request.content_type != "application/json":
                return error(415, "the body must be JSON (Content-Type: application/json)", None)
        return await handler(request)

    return middleware


def is_loopback_name(host: str) -> bool:
    """`host` (as in a Host header: name or address, maybe with a port) names this machine's loopback."""
    name = host.strip()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower().rstrip(".") in ("localhost", "localhost.localdomain") or name.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
