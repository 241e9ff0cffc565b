"""What every request must pass before a handler sees it (SPEC §3.12 "Auth").

On a loopback bind every route refuses a Host that is not a loopback name or address (DNS rebinding),
with or without a token. State-changing routes (anything but GET/HEAD/OPTIONS) take only JSON bodies and
refuse a cross-site Origin (CSRF from a browser). With a token, every route but /healthz and the
dashboard's page and assets (which hold no data) needs it, as `Authorization: Bearer` or the session
cookie `POST /api/v1/login` sets; tokens compare in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from mediasyncd.api.dashboard import is_dashboard_path
from mediasyncd.api.errors import error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COOKIE = "mediasyncd_session"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # other methods meet the router's 405
OPEN_PATHS = frozenset({"/healthz", "/api/v1/login"})  # reachable without a token (login checks one itself)


def guard(token: str | None, *, loopback_bind: bool, metrics_public: bool = False) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if loopback_bind and not is_loopback_name(request.host):
            return error(403, f"Host {request.host!r} is not a loopback name or address", "Host")
        if request.method in STATE_CHANGING:
            origin = request.headers.get("Origin")
            if origin is not None and not same_site(urlsplit(origin).netloc, request.host, loopback_bind):
                return error(403, f"cross-site request from {origin!r} refused", "Origin")
            if request.body_exists and request.content_type != "application/json":  # no body: {}
                return error(415, "the body must be JSON (Content-Type: application/json)", "Content-Type")
        public = (
            request.path in OPEN_PATHS
            or is_dashboard_path(request.path)
            or (metrics_public and request.path == "/metrics")
        )
        if token is not None and not public and not token_matches(request, token):
            return error(401, "missing or wrong token (Authorization: Bearer <token>)", "Authorization")
        return await handler(request)

    return middleware


def same_site(origin_host: str, host: str, loopback_bind: bool) -> bool:
    """A browser's Origin is this server's own (on a loopback bind: any loopback name)."""
    return origin_host == host or (loopback_bind and is_loopback_name(origin_host))


def token_matches(request: web.Request, token: str) -> bool:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    given = given or request.cookies.get(COOKIE, "") or request.query.get("token", "")
    return tokens_equal(given, token)


def tokens_equal(given: str, token: str) -> bool:
    """In constant time, so that the answer's timing tells nothing about the token."""
    return hmac.compare_digest(given.encode(), token.encode())


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
