"""Supervised parts: a part that crashes is logged and restarted with backoff while the others go on, and
a stop that cancels them all is bounded in time (or cut short by a second stop signal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog

from mediasyncd.backoff import Backoff

RESTART = Backoff(base=1.0, cap=60.0)

log = structlog.get_logger("mediasyncd.supervision")

CrashHook = Callable[[Exception, float], None]  # (the exception, seconds until the restart)


async def restarting(run: Callable[[], Awaitable[None]], backoff: Backoff, on_crash: CrashHook) -> None:
    """Await `run()` until it returns; after an exception call `on_crash` (which logs it) and start it
    again after a backoff delay. A part that ran longer than the backoff's cap starts over at the first
    delay: it is not in a crash loop."""
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception as exc:
            if time.monotonic() - started >= backoff.cap:
                attempt = 0
            delay = backoff.delay(attempt)
            attempt += 1
            on_crash(exc, delay)
            await asyncio.sleep(delay)


class Parts:
    """The daemon's long-running parts (consumers, services, watchdog), each restarted after a crash."""

    def __init__(self, backoff: Callable[[], Backoff] = lambda: RESTART) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._backoff = backoff

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        def crashed(_exc: Exception, delay: float) -> None:
            log.exception("part crashed; restarting it", part=name, retry_in_s=round(delay, 1))

        task = asyncio.get_running_loop().create_task(restarting(run, self._backoff(), crashed), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def stop_within(tasks: Iterable[asyncio.Task[None]], grace: float, force: asyncio.Event) -> list[str]:
    """Cancel `tasks` and wait for them at most `grace` seconds, or until `force` is set. Returns the
    names of those still running then (sorted): they are left behind."""
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    forced = asyncio.ensure_future(force.wait())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace  # one bound for the whole stop
    try:
        while not forced.done() and any(not t.done() for t in tasks) and loop.time() < deadline:
            left = [t for t in tasks if not t.done()]
            await asyncio.wait(
                [*left, forced], timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
            )
    finally:
        forced.cancel()
    return sorted(t.get_name() for t in tasks if not t.done())
