"""A large file over an exec channel of the same connection: `cat` on the remote (`tail -c +N` to resume),
read in large chunks, hashed and written into the partial as SFTP's pipelined reads would be.

Taken only where the remote has a shell and a hasher: the remote's SHA-256 after the transfer is then
what pins the bytes to the listed version and to the root, exactly as for an SFTP pull there. Measured
on loopback (bench.ab, BIG; bench.sshbytes): the same bytes cost ~0.5 local CPU-s/GB less than over SFTP
and ~0.4 remote CPU-s/GB more (sshd and `cat` against `sftp-server`), plus one exec per file: ~0.1 s and
~0.1 remote CPU-s where the login shell's rc file is heavy (pyenv or conda init), which is why only
large files come this way.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Literal

import asyncssh

from mediasyncd.errors import RemoteError, RemoteFileChanged, TransferError
from mediasyncd.sources.receive import DRAIN_READ, WRITE_CHUNK, PartialWriter, RateLimiter
from mediasyncd.sources.ssh.rtt import FAST_LINK
from mediasyncd.sources.ssh.sftp import pull_failures

ROUND_TRIPS = 3
VANISHED = 44  # the reader's exit status when the file is not there (any other failure: its own status)


class LargeFiles:
    """`transfer.stream_above` and `transfer.large_files`: which files come over an exec channel."""

    def __init__(
        self,
        stream_above: int = 0,
        mode: Literal["auto", "exec", "sftp"] = "sftp",
        *,
        round_trip: float | None = None,
    ) -> None:
        self.stream_above = stream_above
        self.mode = mode
        self._kernel_round_trip = round_trip  # the kernel's figure for the connection (rtt.py), if any
        self._sftp_round_trip: asyncio.Future[float] | None = None  # else measured, once

    async def by_exec(
        self, size: int, sftp: Callable[[], Awaitable[asyncssh.SFTPClient]], shell_and_hasher: bool
    ) -> bool:
        """Whether a file of `size` bytes comes over an exec channel rather than SFTP: a large file, a
        remote with a shell and a hasher, and (`large_files = "auto"`) a fast link. Over a WAN the
        exec channel's own window adds to SFTP's in flight and the link's queue, and nothing is gained
        there: the link, not the CPU, sets the pace."""
        if not self.stream_above or size < self.stream_above or not shell_and_hasher:
            return False
        if self.mode != "auto":
            return self.mode == "exec"
        if self._kernel_round_trip is not None:
            return self._kernel_round_trip <= FAST_LINK
        if self._sftp_round_trip is None:
            self._sftp_round_trip = asyncio.ensure_future(_round_trip(sftp))
        return await asyncio.shield(self._sftp_round_trip) <= FAST_LINK


async def _round_trip(session: Callable[[], Awaitable[asyncssh.SFTPClient]]) -> float:
    """The shortest of a few SFTP round trips (seconds), once per connection; infinite if refused."""
    loop = asyncio.get_running_loop()
    best = float("inf")
    sftp = await session()
    for _ in range(ROUND_TRIPS):
        start = loop.time()
        try:
            await sftp.realpath(".")
        except (asyncssh.Error, OSError):
            return float("inf")
        best = min(best, loop.time() - start)
    return best


def read_command(path: str, offset: int) -> str:
    """Write `path` from byte `offset` on to stdout; exit VANISHED when it is not a regular file."""
    quoted = shlex.quote(path)
    reader = f"cat -- {quoted}" if offset == 0 else f"tail -c +{offset + 1} -- {quoted}"
    return f"[ -f {quoted} ] || exit {VANISHED}; exec {reader} 2>/dev/null"


async def exec_pull(
    conn: asyncssh.SSHClientConnection,
    remote_path: str,
    partial: Path,
    *,
    size: int,
    executor: Executor,
    limiter: RateLimiter | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Copy `remote_path` (expected `size`) into `partial`, continuing what it holds; its SHA-256.

    The same contract as `sftp_pull`: RemoteFileChanged when the file is not the expected version (the
    partial is dropped), RemoteError when the connection is lost, TransferError for other failures
    (the partial is kept for a resume)."""
    writer = PartialWriter(partial, size, executor)
    offset = await writer.open()
    if progress:
        progress(offset)
    async with pull_failures(writer, remote_path, conn):
        done = offset
        if offset < size:
            process = await conn.create_process(read_command(remote_path, offset), encoding=None)
            try:
                done = await _drain(process.stdout, offset, size, writer, limiter, progress)
                status = (await process.wait()).exit_status if done <= size else 0
            finally:
                process.close()
            if conn.is_closed():  # the stream ended with the connection: the session's, not the file's
                raise RemoteError(f"connection lost while reading {remote_path}")
            if status == VANISHED:
                raise RemoteFileChanged(f"{remote_path}: vanished before transfer")
            if status != 0:  # unreadable, or a read failed: retried later from what the partial holds
                raise TransferError(f"{remote_path}: the remote reader exited with status {status}")
        if done != size:
            raise RemoteFileChanged(f"{remote_path}: size changed during transfer ({done} of {size} bytes)")
    return await writer.finish()


async def _drain(
    stdout: asyncssh.SSHReader[bytes],
    offset: int,
    size: int,
    writer: PartialWriter,
    limiter: RateLimiter | None,
    progress: Callable[[int], None] | None,
) -> int:
    """Hand the writer WRITE_CHUNK bytes at a time; stop early once more than `size` arrived (the file
    grew: not the listed version). Returns the bytes held, counting `offset`."""
    done = offset
    ready: list[bytes] = []
    ready_bytes = 0
    while chunk := await stdout.read(DRAIN_READ):
        if limiter:
            await limiter.consume(len(chunk))
        done += len(chunk)
        if done > size:
            return done
        ready.append(chunk)
        ready_bytes += len(chunk)
        if ready_bytes >= WRITE_CHUNK:
            await writer.write(ready)
            ready, ready_bytes = [], 0
        if progress:
            progress(done)
    if ready:
        await writer.write(ready)
    return done
