"""The dashboard (`GET /`, SPEC §3.12): a dependency-free page shipped as package data
(`mediasyncd/web`: HTML, CSS and JavaScript modules, no build step). It talks only to the control API
and `/api/v1/ws`; the page and its assets hold no data, so they load without the token (the page then
asks for it when the API answers 401). Every answer carries a strict Content-Security-Policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

ASSETS = "/ui/"  # the page's own files: /ui/app.js, /ui/style.css, ...
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated with the ETag: an upgrade's new page shows at once
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


ASSETS_KEY = web.AppKey("dashboard_assets", dict[str, Asset])


def load_assets() -> dict[str, Asset]:
    """Every file of the page by name, read once from the installed package."""
    found: dict[str, Asset] = {}
    for item in resources.files("mediasyncd").joinpath("web").iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in TYPES:
            body = item.read_bytes()
            found[item.name] = Asset(body, TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:16]}"')
    return found


def add_dashboard(app: web.Application) -> None:
    app[ASSETS_KEY] = load_assets()
    app.router.add_get("/", index)
    app.router.add_get(ASSETS + "{name}", asset)


def is_dashboard_path(path: str) -> bool:
    """The page and its assets: open without the token (they hold no data)."""
    return path == "/" or path.startswith(ASSETS)


async def index(request: web.Request) -> web.Response:
    return _answer(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    return _answer(request, request.match_info["name"])


def _answer(request: web.Request, name: str) -> web.Response:
    found = request.app[ASSETS_KEY].get(name)
    if found is None:
        raise web.HTTPNotFound()
    headers = HEADERS | {"ETag": found.etag}
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.body, content_type=found.content_type, charset="utf-8", headers=headers)
