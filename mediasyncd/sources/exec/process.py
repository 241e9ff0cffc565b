"""The processes of an exec source: one long-lived framed shell, and one-shot byte streams.

A command that cannot reach its shell (a stopped or removed container, a missing `docker`, a pod gone)
ends, or never starts: both are a RemoteError that names what the command said on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
from collections.abc import Sequence
from typing import Any

from mediasyncd.errors import RemoteError
from mediasyncd.sources.base import CommandResult
from mediasyncd.sources.framed import PROBE_OK, ShellHung, frame, read_through
from mediasyncd.sources.framed import STDERR_KEPT as COMMAND_STDERR_KEPT

PROBE_TIMEOUT = 30.0
EXIT_WAIT = 3.0  # seconds a process gets to end after its stdin closed, then after SIGTERM
STDERR_KEPT = 4096
# The command's stdout pipe holds PIPE_SIZE in the kernel, so what waits for the loop waits there: our
# own buffer stays at asyncio's 64 KiB. A 1 MiB buffer (when the pipe held 64 KiB) cost 1.5-2.6 MB of
# peak RSS at the same speed once the pipe had grown (docs/benchmarks.md, eighteenth pass).
READ_LIMIT = 1 << 16  # bytes buffered from a pipe before reading pauses
PIPE_SIZE = 1 << 20  # the default /proc/sys/fs/pipe-max-size: any user may grow a pipe this far
Process = asyncio.subprocess.Process


async def spawn(argv: Sequence[str], *, grow: bool = False) -> Process:
    """Start `argv` with pipes on all three standard streams; RemoteError if it cannot start. `grow`:
    its stdout carries bulk bytes (a file, a tar stream), so its pipe is grown to PIPE_SIZE."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=READ_LIMIT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the daemon, not every child
        )
    except OSError as exc:
        raise RemoteError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if grow:
        _grow_pipe(process)
    return process


def _grow_pipe(process: Process) -> None:
    """Let the command's stdout pipe hold PIPE_SIZE: each wake-up of the loop then reads up to asyncio's
    256 KiB rather than the default pipe's 64 KiB. Where the system refuses (the user's pipe pages are
    used up, an older kernel), the pipe stays as it is. Only bulk streams grow theirs: an unprivileged
    user's pipes share a budget (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB), and a user past it gets
    small pipes in every program."""
    transport = process._transport.get_pipe_transport(1)  # type: ignore[attr-defined]
    pipe = transport.get_extra_info("pipe") if transport is not None else None
    if pipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def signal_group(process: Process, sig: int = signal.SIGTERM) -> None:
    """`sig` to the command and everything it started here (`sh`'s tar, `docker`'s own children): each
    command leads a session of its own (`spawn`). Once all of them are gone, nothing is sent."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def finish(process: Process) -> None:
    """End `process`: close its stdin (the shell exits), then SIGTERM, then SIGKILL, to its group."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    alive = process.returncode is None
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            break
        if sig is not None:
            signal_group(process, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), EXIT_WAIT)
    if alive:  # its end was just seen: what it left running (a tar writing into a full pipe) goes too;
        signal_group(process)  # never later, when its pid could name someone else's group
    _close_paused_pipes(process)


def _close_paused_pipes(process: Process) -> None:
    """A pipe whose reading paused (its buffer full: a stream given up) would never see its end, and stay
    open; the others end by themselves once read (a failure's stderr is read to its end first)."""
    transport = process._transport  # type: ignore[attr-defined]
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd)
        if pipe is not None and not pipe.is_closing() and not pipe.is_reading():
            pipe.close()


def describe(stderr: bytes, returncode: int | None) -> str:
    """The last non-empty line the command wrote to stderr (`Error response from daemon: Container
    … is not running`), or its exit status."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if lines:
        return lines[-1][:300]
    return f"the shell command ended (exit status {returncode})"


class ShellProcess:
    """One `sh` behind `argv`, running framed commands one at a time."""

    def __init__(self, process: Process) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        self.commands_run = 0
        self._interrupted = False  # a command was cancelled mid-answer: its rest would corrupt the next

    @classmethod
    async def start(cls, argv: Sequence[str], probe: str = "true") -> tuple[ShellProcess, CommandResult]:
        """Start the shell and run `probe` as its first command; RemoteError ("unreachable: …") if no
        shell answers."""
        shell = cls(await spawn(argv))
        try:
            result = await asyncio.wait_for(shell.run(f"echo mediasyncd-ok; {probe}"), PROBE_TIMEOUT)
        except TimeoutError:
            await shell.aclose()
            raise RemoteError(f"unreachable: no shell answered within {PROBE_TIMEOUT:.0f} s") from None
        except RemoteError as exc:
            await shell.aclose()
            raise RemoteError(f"unreachable: {exc}") from None
        if not result.stdout.startswith(PROBE_OK):
            await shell.aclose()
            raise RemoteError("unreachable: the command did not answer like a POSIX shell")
        return shell, CommandResult(result.exit_status, result.stdout[len(PROBE_OK) :], result.stderr)

    @property
    def alive(self) -> bool:
        return self._process.returncode is None

    async def run(self, script: str) -> CommandResult:
        """Run `script` (stdin from /dev/null); RemoteError when the shell is gone."""
        framed = frame(script)
        process = self._process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        async with self._lock:
            if self._interrupted:
                raise RemoteError("shell gone: a command was interrupted mid-answer")
            self.commands_run += 1
            try:
                process.stdin.write(framed.data)
                await process.stdin.drain()
            except (OSError, RuntimeError):  # BrokenPipe, ConnectionReset; RuntimeError: closed transport
                pass  # the reads below see the end and say why
            out: Any
            err: Any
            try:
                out, err = await asyncio.gather(
                    read_through(process.stdout, framed.stdout_end),
                    read_through(process.stderr, framed.stderr_end, keep=COMMAND_STDERR_KEPT),
                    return_exceptions=True,
                )
            except BaseException:
                self._interrupted = True
                raise
            for outcome in (out, err):
                if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                    raise outcome  # CancelledError, KeyboardInterrupt: never swallowed
            hung = next((e for e in (out, err) if isinstance(e, ShellHung)), None)
            if hung is not None:  # what it sends later would be taken as the next command's answer
                self._interrupted = True
                self.close()
                raise hung
            if isinstance(out, Exception) or isinstance(err, Exception):
                stderr = err.partial if isinstance(err, asyncio.IncompleteReadError) else b""
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), EXIT_WAIT)
                raise RemoteError(f"shell gone: {describe(stderr, process.returncode)}")
        stdout, status = out
        return CommandResult(int(status or b"255"), stdout, err[0])

    async def aclose(self) -> None:
        await finish(self._process)

    def close(self) -> None:
        """End the shell without waiting (`aclose` waits for it)."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        if self._process.returncode is None:
            signal_group(self._process)


async def _read_kept(stream: asyncio.StreamReader) -> bytes:
    """The start of what a command that ended said on `stream` (STDERR_KEPT bytes at most)."""
    kept = b""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(EXIT_WAIT):
            while len(kept) < STDERR_KEPT and (chunk := await stream.read(STDERR_KEPT - len(kept))):
                kept += chunk
    return kept


class ByteProcess:
    """A one-shot `script` behind `argv` whose stdout is the answer: its first byte says which (see
    `portable.read_script`), the rest is the bytes. stderr is kept, its first `keep` bytes: to name a
    failure, or as the answer of a script that answers there too (a tar stream's hashes: `said`), which
    counts only if it fit."""

    def __init__(self, process: Process, keep: int = STDERR_KEPT) -> None:
        self.process = process
        self._stderr = bytearray()
        self._keep = keep  # bytes of stderr kept (a hostile remote's endless stderr is read past)
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def start(cls, argv: Sequence[str], script: str, *, keep: int = STDERR_KEPT) -> ByteProcess:
        process = await spawn(argv, grow=True)
        assert process.stdin is not None
        try:
            process.stdin.write(script.encode("utf-8", "surrogateescape") + b"\n")
            await process.stdin.drain()
        except (OSError, RuntimeError):
            pass  # a shell that never started: the empty answer says so
        process.stdin.close()
        return cls(process, keep)

    @property
    def stderr(self) -> bytes:
        return bytes(self._stderr)

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            if len(self._stderr) <= self._keep:  # one byte past `keep` marks an answer cut short
                self._stderr += chunk[: self._keep + 1 - len(self._stderr)]

    async def said(self) -> bytes | None:
        """All the process wrote on stderr, once it has ended with status 0 (its stdout was read to the
        end); None if it failed, does not end within EXIT_WAIT, or said more than `keep` bytes."""
        try:
            status = await asyncio.wait_for(self.process.wait(), EXIT_WAIT)
            await asyncio.wait_for(asyncio.shield(self._stderr_task), EXIT_WAIT)
        except TimeoutError:
            return None
        return self.stderr if status == 0 and len(self._stderr) <= self._keep else None

    async def answer(self) -> bytes:
        """The first byte of stdout (b"" when the process ended without one)."""
        assert self.process.stdout is not None
        return await self.process.stdout.read(1)

    async def read(self, n: int = -1) -> bytes:
        assert self.process.stdout is not None
        return await self.process.stdout.read(n)

    async def failure(self) -> str:
        """Why no answer came: what the command said on stderr."""
        await self.close()
        return describe(self.stderr, self.process.returncode)

    async def close(self) -> None:
        await finish(self.process)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, EXIT_WAIT)
        if not self._stderr_task.done():
            self._stderr_task.cancel()


class PipeShell:
    """A shell behind the command that tar streams run on, one after another (tar_shells.StreamShell).
    `close` ends it without waiting; its owner awaits `finish` for every shell it started."""

    def __init__(self, process: Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, argv: Sequence[str]) -> PipeShell:
        """A new shell behind `argv`, once it has answered (its stdout grown: it carries archives).
        RemoteError ("unreachable: …", with what the command said on stderr) when it ends first, stays
        silent, or answers unlike a POSIX shell: as a command shell that does not start, not as an
        archive that came empty."""
        shell = cls(await spawn(argv, grow=True))
        try:
            shell.stdin.write(b"echo " + PROBE_OK)
            async with asyncio.timeout(PROBE_TIMEOUT):  # unlike wait_for (3.11), never drops a cancel
                answer = await shell.stdout.readexactly(len(PROBE_OK))
        except asyncio.IncompleteReadError:
            await finish(shell.process)
            stderr = await _read_kept(shell.stderr)
            raise RemoteError(f"unreachable: {describe(stderr, shell.exit_status)}") from None
        except TimeoutError:
            await finish(shell.process)
            raise RemoteError(f"unreachable: no shell answered within {PROBE_TIMEOUT:.0f} s") from None
        except BaseException:  # cancelled while it started (the session ends): nobody else would reap it
            await asyncio.shield(finish(shell.process))
            raise
        if answer != PROBE_OK:
            await finish(shell.process)
            raise RemoteError("unreachable: the command did not answer like a POSIX shell")
        return shell

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.process.stdin is not None
        return self.process.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.process.stdout is not None
        return self.process.stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        assert self.process.stderr is not None
        return self.process.stderr

    @property
    def exit_status(self) -> int | None:
        return self.process.returncode

    def is_closing(self) -> bool:
        return self.process.returncode is not None or self.stdin.is_closing()

    def close(self) -> None:
        self.stdin.close()
        if self.process.returncode is None:  # the group: also a tar it started, writing into a full pipe
            signal_group(self.process)
