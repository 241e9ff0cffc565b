"""One long-lived remote shell per connection: commands framed by random sentinels.

Each exec on a GPU container pays its shell start-up (a heavy ~/.bashrc costs ~110 ms, FIELD_NOTES 3), so
listing, hashing and deleting go through a single `sh` started once, one command at a time.
"""

from __future__ import annotations

import asyncio
import re
import secrets

import asyncssh

from mediasyncd.errors import RemoteError
from mediasyncd.sources.base import CommandResult

PROBE_TIMEOUT = 30.0
SENTINEL_SPAN = 64  # a sentinel line is shorter: the search resumes this far back, across chunk edges
READ_CHUNK = 1 << 20  # output is consumed as it comes: a listing can be far larger than the channel window


class CommandChannel:
    """Runs shell snippets in one remote `sh` process, serialised by a lock."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        self.commands_run = 0

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
        if not result.stdout.startswith(b"mediasyncd-ok\n"):
            channel.close()
            raise RemoteError("remote shell unavailable: unexpected answer to a probe")
        return channel, CommandResult(
            result.exit_status, result.stdout[len(b"mediasyncd-ok\n") :], result.stderr
        )

    async def run(self, script: str) -> CommandResult:
        """Run `script` (stdin from /dev/null) and return its exit status and output."""
        token = "__mediasyncd_" + secrets.token_hex(8)
        framed = (
            f"{{ {script}\n}} </dev/null; printf '\\n{token} %d\\n' $?; printf '{token}\\n' >&2\n"
        ).encode()
        async with self._lock:
            self.commands_run += 1
            try:
                self._process.stdin.write(framed)
                (stdout, status), (stderr, _) = await asyncio.gather(
                    _read_through(self._process.stdout, re.compile(rb"\n" + token.encode() + rb" (\d+)\n")),
                    _read_through(self._process.stderr, re.compile(token.encode() + rb"\n")),
                )
            except (asyncssh.Error, OSError, asyncio.IncompleteReadError, BrokenPipeError) as exc:
                raise RemoteError(f"remote shell failed: {exc or type(exc).__name__}") from None
        return CommandResult(int(status or b"255"), stdout, stderr)

    def close(self) -> None:
        self._process.close()


async def _read_through(
    stream: asyncssh.SSHReader[bytes], end: re.Pattern[bytes]
) -> tuple[bytes, bytes | None]:
    """Read `stream` until `end` matches; return what came before it and the pattern's first group.
    Reading as it arrives keeps the channel window open (asyncssh's readuntil gives up once a window's
    worth is buffered without the separator)."""
    buf = bytearray()
    while True:
        chunk = await stream.read(READ_CHUNK)
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buf), None)
        searched = len(buf)
        buf += chunk
        match = end.search(buf, max(0, searched - SENTINEL_SPAN))
        if match is not None:  # nothing follows it: the shell waits for the next command
            return bytes(buf[: match.start()]), match.group(1) if end.groups else None
