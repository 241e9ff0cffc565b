"""A long-running command (the remote agent) behind an exec transport's shell command (`docker exec -i
<container> sh`, `kubectl exec -i … -- sh`): a fresh shell that runs the command line (the agent's own
starts with `exec`), which shares that process's stdin — closing our end is its EOF, as closing an SSH
channel is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from mediasyncd.errors import RemoteError
from mediasyncd.sources.exec.process import Process, finish, spawn

READ_CHUNK = 1 << 16


class ExecSpawned:
    def __init__(self, process: Process) -> None:
        self._process = process
        self._ending: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, argv: Sequence[str], command: str) -> ExecSpawned:
        process = await spawn(argv)
        assert process.stdin is not None
        try:
            process.stdin.write(f"{command}\n".encode("utf-8", "surrogateescape"))
            await process.stdin.drain()
        except (OSError, RuntimeError) as exc:
            await finish(process)
            raise RemoteError(f"cannot start a command through {argv[0]}: {exc}") from None
        return cls(process)

    async def read(self) -> bytes:
        assert self._process.stdout is not None
        try:
            return await self._process.stdout.read(READ_CHUNK)
        except (OSError, ValueError):
            return b""

    def close(self) -> None:
        """EOF on the command's stdin at once; the local process is ended in the background (SIGTERM,
        then SIGKILL, if it lingers)."""
        if self._ending is None:
            self._ending = asyncio.get_running_loop().create_task(self._end())

    async def _end(self) -> None:
        with contextlib.suppress(Exception):
            await finish(self._process)
