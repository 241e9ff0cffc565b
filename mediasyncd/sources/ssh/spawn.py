"""A long-running command on its own SSH exec channel (the remote agent), beside the command channel.

Its stderr is merged into stdout on the remote (`2>&1` in the command) by the caller's choice; here stdout
is read as it comes. Closing the channel gives the command EOF on stdin.
"""

from __future__ import annotations

import asyncssh

from mediasyncd.errors import RemoteError

READ_CHUNK = 1 << 16


class SshSpawned:
    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection, command: str) -> SshSpawned:
        try:
            process = await conn.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(f"cannot start a remote command: {exc}") from None
        return cls(process)

    async def read(self) -> bytes:
        try:
            return await self._process.stdout.read(READ_CHUNK)
        except (asyncssh.Error, OSError):
            return b""

    def close(self) -> None:
        self._process.close()
