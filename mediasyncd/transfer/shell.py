"""One long-lived remote shell per connection: commands framed by random sentinels.

Each exec on a GPU container pays its shell start-up (a heavy ~/.bashrc costs ~110 ms, FIELD_NOTES 3), so
listing, hashing and deleting go through a single `sh` started once, one command at a time.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import asyncssh

from mediasyncd.errors import RemoteError

PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: bytes
    stderr: bytes


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
                out, err = await asyncio.gather(
                    self._process.stdout.readuntil(f"\n{token} ".encode()),
                    self._process.stderr.readuntil(f"{token}\n".encode()),
                )
                status_line = await self._process.stdout.readline()
            except (asyncssh.Error, OSError, asyncio.IncompleteReadError, BrokenPipeError) as exc:
                raise RemoteError(f"remote shell failed: {exc or type(exc).__name__}") from None
        stdout = out[: -len(token) - 2]
        stderr = err[: -len(token) - 1]
        try:
            status = int(status_line.strip() or b"255")
        except ValueError:
            status = 255
        return CommandResult(status, stdout, stderr)

    def close(self) -> None:
        self._process.close()
