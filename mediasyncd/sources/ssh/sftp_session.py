"""The SFTP session of an SSH connection, started when something first needs it.

sshd starts a subsystem through the user's login shell, so an SFTP session costs what every exec costs:
the remote shell's start-up, ~90–110 ms of remote CPU where the rc file is heavy (pyenv or conda init,
FIELD_NOTES 3), plus a round trip. Where the remote has a shell, listing, hashing and small files go
through the command channel and tar streams, so a nothing-new pass (and a pull of small files) needs
no SFTP session at all: it is started on first use, once, and shared by everything that asks.
"""

from __future__ import annotations

import asyncio

import asyncssh

from mediasyncd.errors import RemoteError

SFTP_HINT = (
    "files not sent in a tar stream come over SFTP: the server must offer it, e.g. `Subsystem sftp "
    "internal-sftp` in its sshd_config"
)


class SftpSession:
    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn
        self._client: asyncio.Future[asyncssh.SFTPClient] | None = None

    @property
    def started(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        """Ask for the session now (without waiting for it); later calls do nothing."""
        if self._client is None:
            self._client = asyncio.ensure_future(self._conn.start_sftp_client())

    async def client(self) -> asyncssh.SFTPClient:
        """The session, started on the first call; RemoteError if the remote refuses it (the
        connection's problem, not a file's: the session ends and is retried)."""
        self.start()
        assert self._client is not None
        try:  # shielded: one caller cancelled does not cancel the start the others wait for
            return await asyncio.shield(self._client)
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(f"SFTP unavailable: {exc} ({SFTP_HINT})") from None

    def close(self) -> None:
        """End the session if it started, or stop its start."""
        if self._client is None:
            return
        if not self._client.done():
            self._client.cancel()
        elif not self._client.cancelled() and self._client.exception() is None:
            self._client.result().exit()
