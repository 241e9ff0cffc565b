"""The API's one error shape: `{"error": "...", "field": "..."}` with a 4xx status (SPEC §3.12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from mediasyncd.errors import MediasyncError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("mediasyncd.api")


def error(status: int, message: str, field: str | None = None) -> web.Response:
    return web.json_response({"error": message, "field": field}, status=status)


def json_errors() -> Middleware:
    """Every failure answers in the error shape: aiohttp's own 404/405 and the like with their status,
    what the daemon refuses (MediasyncError) as 409, a bug as 500 — never a traceback."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            answer = error(exc.status, exc.reason, None)
            if "Allow" in exc.headers:  # a 405 names the methods the route takes (RFC 9110)
                answer.headers["Allow"] = exc.headers["Allow"]
            return answer
        except MediasyncError as exc:
            return error(409, str(exc), None)
        except Exception:
            log.exception("API request failed", path=request.path, method=request.method)
            return error(500, "internal error (see the daemon's log)", None)

    return middleware
