"""What every request must pass before a handler sees it (SPEC §3.12 "Auth").

- On a loopback bind every route refuses a Host that is not a loopback name or address (DNS rebinding),
  with or without a token.
- A request that carries an Origin (a browser's fetch, form or WebSocket) is refused unless the Origin
  is this server itself, scheme aside: same host and port as the Host header. A page on another port of
  this machine (ComfyUI, Jupyter, a dev server) is another site, and `null` is nobody.
- State-changing requests (POST, PUT, PATCH, DELETE) must say `Content-Type: application/json`, with a
  body or without: a browser cannot send that cross-site without a CORS preflight, which is never granted.
- With a token, every route but /healthz, /api/v1/login and the dashboard's page and assets (which hold
  no data) needs it: `Authorization: Bearer <token>`, or the session cookie `POST /api/v1/login` sets —
  a random session id kept in memory, never the token itself. Tokens compare in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
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
MAX_SESSIONS = 1000  # the oldest session ends when a login would make more


class Sessions:
    """Browser sessions (`POST /api/v1/login`): random ids in memory; a restart logs everyone out."""

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}  # insertion order: the oldest first

    def start(self) -> str:
        session = secrets.token_urlsafe(32)
        self._ids[session] = None
        while len(self._ids) > MAX_SESSIONS:
            del self._ids[next(iter(self._ids))]
        return session

    def end(self, session: str) -> None:
        self._ids.pop(session, None)

    def valid(self, session: str) -> bool:
        return any(tokens_equal(session, known) for known in self._ids) if session else False


SESSIONS_KEY = web.AppKey("sessions", Sessions)


def guard(token: str | None, *, loopback_bind: bool, metrics_public: bool = False) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if loopback_bind and not is_loopback_name(request.host):
            return error(403, f"Host {request.host!r} is not a loopback name or address", "Host")
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, request.host):
            return error(403, f"cross-site request from {origin!r} refused", "Origin")
        routed = request.match_info.http_exception is None  # else the router's own 404/405 answers
        if routed and request.method in STATE_CHANGING and request.content_type != "application/json":
            return error(415, "the request must be JSON (Content-Type: application/json)", "Content-Type")
        public = (
            request.path in OPEN_PATHS
            or is_dashboard_path(request.path)
            or (metrics_public and request.path == "/metrics")
        )
        if token is not None and not public and not authorized(request, token):
            return error(401, "missing or wrong token (Authorization: Bearer <token>)", "Authorization")
        return await handler(request)

    return middleware


def same_origin(origin: str, host: str) -> bool:
    """A browser's Origin names this server: the same host and port the request was sent to."""
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc == host.lower()


def authorized(request: web.Request, token: str) -> bool:
    """The bearer token, else a live session cookie."""
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return tokens_equal(given.strip(), token)
    sessions = request.app.get(SESSIONS_KEY)
    return sessions is not None and sessions.valid(request.cookies.get(COOKIE, ""))


def tokens_equal(given: str, token: str) -> bool:
    """In constant time, so that the answer's timing tells nothing about the token. Any text compares,
    even one that is not valid UTF-8 (a header can carry such bytes)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
    )


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
