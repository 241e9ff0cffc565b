"""Tar streams on reused shells: each stream of small files runs GNU `tar` in an `sh` of its own (an exec
channel over SSH; for an exec or docker source, another process of its shell command), and a shell whose
archive ended cleanly takes the next stream.

Every shell started pays the remote's start-up: over SSH root's `~/.bashrc` running `pyenv init` here,
~0.1 CPU-s and ~0.12 s each (FIELD_NOTES 3), and a pull of 2,000 × 100 KB came in 12 streams, 12 execs,
~1.2 CPU-s of a remote that rsync asks ~0.6 CPU-s of in all (docs/benchmarks.md, issue 21 third pass);
`docker exec` costs ~50-100 ms, and an OpenSSH client behind an exec source a whole session. A shell now
runs one stream after another: the file list goes in the command (`printf`, a shell builtin, pipes it to
tar's `-T -`), stdout carries the archive and nothing else, and the reader stops at the archive's exact
end (its first zero block, rounded up to GNU tar's 10240-byte records). The shell then prints a random
token on stderr and waits for the next stream. A tar that fails (a vanished file, a kill) ends the
shell (`|| exit`): its channel ends, and the stream is read to that end as before. A shell is reused only
when exactly one whole archive came and then the token; anything else closes it.

On a fast SSH link, a stream that finds no shell of its own idle asks the connection's command channel
for its shell (`lender`, ssh/shell.py), when no command runs there, before it starts a new one: the remote
start-up it spares (~0.09 s here, and the remote's CPU for the login shell) is a good share of a pull of
a few files on loopback or a LAN (+50 PNGs of ~1.7 MB beside 20,000 known files: 1.03 -> 0.88 s, where
the third of three streams had started a second shell; docs/benchmarks.md, issue 21). A command that
comes while a stream holds that shell waits for the stream's end (a hash batch, at most one stream's
time); over a slow link a stream holds it for seconds, and listing and hashing must not wait that long:
there is no lender there.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from mediasyncd.sources.framed import AnswerTooLong, Readable, ShellHung, read_through
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.tar import Member, unpack_stream


class Writable(Protocol):
    def write(self, data: bytes, /) -> None: ...


class StreamShell(Protocol):
    """An `sh` reading its commands from `stdin` (asyncssh's SSHClientProcess; exec/process.PipeShell)."""

    @property
    def stdin(self) -> Writable: ...
    @property
    def stdout(self) -> Readable: ...
    @property
    def stderr(self) -> Readable: ...
    @property
    def exit_status(self) -> int | None: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...


Lender = Callable[[], AbstractAsyncContextManager[StreamShell | None]]
KEEP = 4  # idle shells kept per connection (streams run at most about this many at once)
READY_TIMEOUT = (
    30.0  # after a clean archive, the hashes and the token: nothing for this long closes the shell
)
# The reader finds the archive's end by GNU tar's default 10240-byte records: the remote's TAR_OPTIONS
# (a blocking factor, compression) must not change what is written, so it is emptied for tar.
TAR = "TAR_OPTIONS= tar -cf - --blocking-factor=20 --format=gnu --null --no-recursion --hard-dereference"
# What a stream's stderr may hold before its token: what the script `after` prints (a SHA-256 line per
# file, naming it: less than twice the script's own length plus ANSWER_PER_FILE each), and room for what a
# new shell's login says there first. More is not an answer, and is not kept.
ANSWER_PER_FILE = 96
ANSWER_SLACK = 64 << 10


def answer_bound(after: str, files: int) -> int:
    return ANSWER_SLACK + 2 * len(after.encode("utf-8", "surrogateescape")) + ANSWER_PER_FILE * files


def tar_script(root: str, rels: list[str], token: str, after: str = "") -> bytes:
    """The archive of `rels` (relative to `root`) on stdout; when tar succeeded, what the script `after`
    prints (stdin from /dev/null) and then `token`, both on stderr; else the shell exits with tar's
    status. --hard-dereference: a hard-linked second name still carries its data; --no-recursion: only
    the listed files; symlinks are archived as links, never followed."""
    names = " ".join(shlex.quote(rel) for rel in rels)
    then = f"{{ {after}\n}} </dev/null >&2\n" if after else ""
    return (
        f"printf '%s\\0' {names} | {TAR} -C {shlex.quote(root)} -T - 2>/dev/null || exit\n"
        f"{then}printf '%s\\n' {token} >&2\n"
    ).encode()


class TarShells:
    """The shells of one connection that tar streams run on; idle ones wait for the next stream."""

    def __init__(
        self, start: Callable[[], Awaitable[StreamShell]], keep: int = KEEP, lender: Lender | None = None
    ) -> None:
        self.start = start  # a new shell (for SSH: `exec sh` on a new exec channel)
        self.keep = keep
        self.lender = lender  # a shell to borrow when none is idle (the command channel's `lent`)
        self._idle: list[StreamShell] = []
        self._closed = False  # a stream that ends after `close` closes its shell rather than keep it
        self.started = 0  # shells started (each one exec on the remote)
        self.borrowed = 0  # streams that ran on the lender's shell

    def _take_idle(self) -> StreamShell | None:
        while self._idle:
            process = self._idle.pop()
            if not process.is_closing() and process.exit_status is None:
                return process
            process.close()
        return None

    async def _shell(self) -> StreamShell:
        idle = self._take_idle()
        if idle is not None:
            return idle
        self.started += 1
        return await self.start()

    async def stream(
        self,
        root: str,
        partials: dict[str, Path],
        *,
        executor: Executor,
        on_member: Callable[[Member], None],
        progress: Callable[[int], None] | None = None,
        sizes: dict[str, int] | None = None,
        limiter: RateLimiter | None = None,
        after: str = "",
    ) -> bytes | None:
        """One archive of `partials`' files, unpacked as `unpack_stream` does; then the shell runs the
        script `after` (the remote's hashes of what it sent: one trip for both). Returns what `after`
        printed, or None where the archive or the shell did not end cleanly. The transport's errors
        (asyncssh.Error, OSError, RemoteError) and TransferError pass to the caller."""
        idle = self._take_idle()
        async with contextlib.nullcontext(None) if idle is not None else self._borrow() as lent:
            process = idle or lent or await self._shell()
            token = "__mediasyncd_" + secrets.token_hex(8)
            reusable = False
            said: bytes | None = None
            try:
                process.stdin.write(tar_script(root, list(partials), token, after))
                clean = await unpack_stream(
                    process.stdout, root, partials, executor=executor, on_member=on_member, progress=progress,
                    sizes=sizes, exact=True, limiter=limiter,
                )  # fmt: skip
                if clean:
                    try:
                        said, _ = await read_through(
                            process.stderr, re.compile(re.escape(token.encode()) + rb"\n"), READY_TIMEOUT,
                            answer_bound(after, len(partials)),
                        )  # fmt: skip
                        reusable = True
                    except (asyncio.IncompleteReadError, ShellHung, AnswerTooLong):
                        pass  # tar failed and the shell ended, it hangs, or it says without end: not reused
            finally:
                if process is lent:
                    if not reusable:
                        process.close()  # the lender starts another when it needs one
                elif reusable and not self._closed and len(self._idle) < self.keep:
                    self._idle.append(process)
                else:
                    process.close()
        return said

    @contextlib.asynccontextmanager
    async def _borrow(self) -> AsyncIterator[StreamShell | None]:
        """The lender's shell when it lends one (no command runs on it); else None. Asked only when no
        shell of the connection's own is idle: a pull's streams take those first, so that the command
        channel is free to hash what they bring."""
        if self.lender is None:
            yield None
            return
        async with self.lender() as lent:
            if lent is not None:
                self.borrowed += 1
            yield lent

    def close(self) -> None:
        self._closed = True
        for process in self._idle:
            process.close()
        self._idle.clear()
