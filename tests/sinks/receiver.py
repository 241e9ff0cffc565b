"""A real webhook receiver (aiohttp, on its own thread and loop, on a free loopback port) that verifies
every signature with the README's own example and can be told to fail, stall, answer 410 or 429, or
reject given event ids."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Any:
    """The `verify` function of the README's receiver example, as a user would paste it."""
    text = README.read_text()
    start = text.index("Verifying the signature")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    return namespace["verify"]


@dataclass
class Receiver:
    secret: str
    port: int = 0
    mode: str = "ok"  # ok | fail | stall | gone | throttle
    reject: set[int] = field(default_factory=set)
    retry_after: str = "1"
    delay: float = 0.0  # seconds before each answer (a slow receiver)
    ids: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verify = readme_verify()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not self.verify(self.secret, headers, body):
            self.bad_signatures += 1
            return self._answer(401)
        if self.mode == "fail":
            return self._answer(500)
        if self.mode == "stall":
            await asyncio.sleep(3600)
        if self.mode == "gone":
            return self._answer(410)
        if self.mode == "throttle":
            return self._answer(429, {"Retry-After": self.retry_after})
        if self.delay:
            await asyncio.sleep(self.delay)
        document = json.loads(body)
        events = document.get("events", [document])
        if any(e["id"] in self.reject for e in events):
            return self._answer(422)
        with self._lock:
            self.requests.append({"headers": headers, "body": document})
            self.ids.extend(int(e["id"]) for e in events)
        return self._answer(204)

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> web.Response:
        self.statuses.append(status)
        return web.Response(status=status, headers=headers)

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            if self.port == 0:
                self.port = runner.addresses[0][1]
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)

    def received(self) -> list[int]:
        """The event ids accepted so far (a copy: the receiver's thread appends to it)."""
        with self._lock:
            return list(self.ids)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Down: the port refuses connections (it can be started again on the same port)."""
        if self._loop is not None and self._thread is not None:
            loop = self._loop
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None
