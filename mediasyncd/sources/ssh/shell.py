"""One long-lived remote shell per connection: commands framed by random sentinels.

Each exec on a GPU container pays its shell start-up (a heavy ~/.bashrc costs ~110 ms, FIELD_NOTES 3), so
listing, hashing and deleting go through a single `sh` started once, one command at a time. Between
commands, on a fast link, the shell may carry a tar stream (`lent`): the first stream of a pull then
costs no exec. A shell that a stream left ended is replaced when the next command comes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncssh

from mediasyncd.errors import RemoteError
from mediasyncd.sources.base import CommandResult
from mediasyncd.sources.framed import PROBE_OK, STDERR_KEPT, ShellHung, frame, read_through

PROBE_TIMEOUT = 30.0


class CommandChannel:
    """Runs shell snippets in one remote `sh` process, serialised by a lock."""

    def __init__(
        self, process: asyncssh.SSHClientProcess[bytes], conn: asyncssh.SSHClientConnection | None = None
    ) -> None:
        self._process = process
        self._conn = conn  # starts the shell again after a lent one ended (None: never lent)
        self._lock = asyncio.Lock()
        self.commands_run = 0
        self.restarts = 0  # shells started again after a stream ended one
        self._hung = False  # a command never finished: its late output would answer the next one

    @classmethod
    async def start(
        cls, conn: asyncssh.SSHClientConnection, probe: str = "true"
    ) -> tuple[CommandChannel, CommandResult]:
        """Start `sh` on the remote and run `probe` as its first command (one round trip for both)."""
        channel = cls(await _start_sh(conn), conn)
        try:
            result = await asyncio.wait_for(channel.run(f"echo mediasyncd-ok; {probe}"), PROBE_TIMEOUT)
        except TimeoutError:
            result = CommandResult(255, b"", b"")
        if not result.stdout.startswith(PROBE_OK):
            channel.close()
            raise RemoteError("remote shell unavailable: unexpected answer to a probe")
        return channel, CommandResult(result.exit_status, result.stdout[len(PROBE_OK) :], result.stderr)

    async def run(self, script: str) -> CommandResult:
        """Run `script` (stdin from /dev/null) and return its exit status and output.
        Reading as output arrives keeps the channel window open (asyncssh's readuntil gives up once a
        window's worth is buffered without the separator)."""
        framed = frame(script)
        async with self._lock:
            if self._hung:
                raise RemoteError("remote shell failed: an earlier command never finished")
            self.commands_run += 1
            if self._process.is_closing() and self._conn is not None:  # a lent shell's stream ended it
                self._process = await _start_sh(self._conn)
                self.restarts += 1
            try:
                self._process.stdin.write(framed.data)
                (stdout, status), (stderr, _) = await asyncio.gather(
                    read_through(self._process.stdout, framed.stdout_end),
                    read_through(self._process.stderr, framed.stderr_end, keep=STDERR_KEPT),
                )
            except ShellHung:
                self._hung = True
                self.close()
                raise
            except (asyncssh.Error, OSError, asyncio.IncompleteReadError, BrokenPipeError) as exc:
                raise RemoteError(f"remote shell failed: {exc or type(exc).__name__}") from None
        return CommandResult(int(status or b"255"), stdout, stderr)

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[asyncssh.SSHClientProcess[bytes] | None]:
        """The shell, held for one tar stream, when no command runs on it (else None: the stream takes
        a shell of its own, and a command never waits behind a stream it could have avoided). Commands
        wait while it is lent. A stream that does not leave the shell clean closes it."""
        if self._lock.locked() or self._hung or self._conn is None or self._process.is_closing():
            yield None
            return
        async with self._lock:
            yield self._process

    def close(self) -> None:
        self._process.close()


async def _start_sh(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
    try:
        return await conn.create_process("exec sh", encoding=None)
    except (asyncssh.Error, OSError) as exc:
        raise RemoteError(f"remote shell unavailable: {exc}") from None
