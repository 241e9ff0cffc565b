"""One long-lived remote shell per connection: commands framed by random sentinels.

Each exec on a GPU container pays its shell start-up (a heavy ~/.bashrc costs ~110 ms, FIELD_NOTES 3), so
listing, hashing and deleting go through a single `sh` started once, one command at a time.
"""

from __future__ import annotations

import asyncio

import asyncssh

from mediasyncd.errors import RemoteError
from mediasyncd.sources.base import CommandResult
from mediasyncd.sources.framed import PROBE_OK, ShellHung, frame, read_through

PROBE_TIMEOUT = 30.0


class CommandChannel:
    """Runs shell snippets in one remote `sh` process, serialised by a lock."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        self.commands_run = 0
        self._hung = False  # a command never finished: its late output would answer the next one

    @classmethod
    async def start(
        cls, conn: asyncssh.SSHClientConnection, probe: str = "true"
    ) -> tuple[CommandChannel, CommandResult]:
        """Start `sh` on the remote and run `probe` as its first command (one round trip for both)."""
        try:
            process = await conn.create_process("exec sh", encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(f"remote shell unavailable: {exc}") from None
        channel = cls(process)
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
            try:
                self._process.stdin.write(framed.data)
                (stdout, status), (stderr, _) = await asyncio.gather(
                    read_through(self._process.stdout, framed.stdout_end),
                    read_through(self._process.stderr, framed.stderr_end),
                )
            except ShellHung:
                self._hung = True
                self.close()
                raise
            except (asyncssh.Error, OSError, asyncio.IncompleteReadError, BrokenPipeError) as exc:
                raise RemoteError(f"remote shell failed: {exc or type(exc).__name__}") from None
        return CommandResult(int(status or b"255"), stdout, stderr)

    def close(self) -> None:
        self._process.close()
