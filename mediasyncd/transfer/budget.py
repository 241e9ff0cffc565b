"""What a transfer must wait for before it starts: bytes in flight per remote (`ByteBudget`) and room
on the library's disk (`SpaceGate`, shared by every remote that lands in the library)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from mediasyncd.progress import RemoteStatus

SPACE_CHECK_S = 5.0


class ByteBudget:
    """Bytes in flight per remote: a transfer waits until its size fits (one may always run alone). A file
    larger than half the budget counts as half, so two big files overlap: one's start-up and tail (the
    open, the last reads in flight) hide behind the other's data, and neither crawls beside many others."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, size: int) -> int:
        want = min(max(size, 1), max(self.limit // 2, 1))
        async with self._changed:
            await self._changed.wait_for(lambda: self.used == 0 or self.used + want <= self.limit)
            self.used += want
        return want

    async def release(self, taken: int) -> None:
        async with self._changed:
            self.used -= taken
            self._changed.notify_all()


class SpaceGate:
    """A transfer starts only while the library keeps `floor` bytes free beyond every byte already
    promised to transfers in flight (its own included). A full disk met while writing (ENOSPC) closes
    the gate for at least `check_every` seconds. Waiting is logged once per pause, not once per file,
    and the status of each remote with a waiting transfer says why."""

    def __init__(
        self, free_bytes: Callable[[], int], floor: int, *, check_every: float = SPACE_CHECK_S
    ) -> None:
        self.free_bytes = free_bytes  # blocking: runs in a thread
        self.floor = floor
        self.check_every = check_every
        self.promised = 0
        self.paused: str | None = None
        self._full_until = 0.0
        self._waiting: dict[str, int] = {}
        self._statuses: dict[str, RemoteStatus] = {}
        self._changed = asyncio.Event()
        self._log = structlog.get_logger("mediasyncd.space")

    async def reserve(self, size: int, status: RemoteStatus, *, wait: bool = True) -> bool:
        """Promise `size` bytes to a transfer; False (without waiting) when `wait` is off and no room."""
        loop = asyncio.get_running_loop()
        waiting = False
        try:
            while True:
                free, unknown = await self._free()
                if loop.time() >= self._full_until and free - self.promised - size >= self.floor:
                    self.promised += size
                    self._resume()
                    return True
                if unknown is not None:
                    self._pause(unknown)
                elif self.paused is None or not self.paused.startswith("library disk full"):
                    self._pause(
                        f"library disk low: {free} bytes free, {self.promised} promised to transfers in "
                        f"flight, {size} wanted, floor {self.floor}"
                    )
                if not wait:
                    return False
                if not waiting:
                    waiting = True
                    self._waiting[status.name] = self._waiting.get(status.name, 0) + 1
                    self._statuses[status.name] = status
                status.paused = self.paused
                self._changed.clear()
                try:
                    async with asyncio.timeout(self.check_every):  # unlike wait_for, never drops a cancel
                        await self._changed.wait()
                except TimeoutError:
                    pass
        finally:
            if waiting:
                self._waiting[status.name] -= 1
                if not self._waiting[status.name]:
                    del self._waiting[status.name]
                    self._statuses.pop(status.name, None)
                    status.paused = None

    async def _free(self) -> tuple[int, str | None]:
        """Free bytes, or 0 and why they are unknown (a NAS library gone stale: wait as for a full disk)."""
        try:
            return await asyncio.to_thread(self.free_bytes), None
        except OSError as exc:
            return 0, f"library disk low: free space unknown ({exc.strerror or exc})"

    def release(self, size: int) -> None:
        self.promised -= size
        self._changed.set()

    def full(self, error: str) -> None:
        """The disk filled while writing: nothing starts until it has room again."""
        self._full_until = asyncio.get_running_loop().time() + self.check_every
        self._pause(f"library disk full: {error}")

    def _pause(self, message: str) -> None:
        if self.paused is None:
            self._log.warning("transfers paused: library disk low", reason=message)
        self.paused = message
        for status in self._statuses.values():
            status.paused = message

    def _resume(self) -> None:
        if self.paused is not None:
            self._log.info("library has space again; transfers resume")
            self.paused = None
            for status in self._statuses.values():
                status.paused = None
