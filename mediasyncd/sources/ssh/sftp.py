"""Everything the SSH source does over SFTP: the fallback walk, pipelined reads into a partial, and the
per-file operations of hosts without a shell (lstat, remove, rmdir, statvfs, the doctor's survey).

Errors are sorted here, once: a lost connection is a RemoteError (the session ends; nothing counts
against a file), a refused request is the file's own problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import posixpath
import stat
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterable, Sequence
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncssh

from mediasyncd.errors import RemoteError, RemoteFileChanged, TransferError, UnsafePathError
from mediasyncd.paths import decode_rel
from mediasyncd.sources.base import Deletion, Expected
from mediasyncd.sources.commands import QUARANTINE
from mediasyncd.sources.listing import Listing, Rejected, RemoteEntry, same_version
from mediasyncd.sources.receive import WRITE_CHUNK, PartialWriter, RateLimiter
from mediasyncd.sources.survey import PARENT_NAMES, RootState, RootSurvey, Survey

T = TypeVar("T")
IN_FLIGHT = 16  # SFTP requests in flight for per-file operations
# asyncssh's ways of saying that the connection is gone; SFTPNoConnection is what requests made after
# the cut raise, SFTPConnectionLost what requests in flight at the cut raise.
LOST: tuple[type[BaseException], ...] = (
    asyncssh.DisconnectError,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.ChannelOpenError,
    ConnectionError,
)


def is_lost(exc: BaseException, conn: asyncssh.SSHClientConnection | None = None) -> bool:
    """True when `exc` means the connection is gone rather than one request refused."""
    return isinstance(exc, LOST) or (conn is not None and conn.is_closed())


@asynccontextmanager
async def pull_failures(
    writer: PartialWriter, remote_path: str, conn: asyncssh.SSHClientConnection | None
) -> AsyncIterator[None]:
    """What a failed pull leaves (SFTP's or an exec channel's): RemoteFileChanged drops the partial (not
    the listed version); a lost connection becomes RemoteError and any other read failure TransferError,
    both keeping the partial for a resume; anything else (a cancel) keeps it too."""
    try:
        yield
    except RemoteFileChanged:
        await writer.abort(drop=True)
        raise
    except (asyncssh.Error, OSError) as exc:
        await writer.abort(drop=False)
        if is_lost(exc, conn):
            raise RemoteError(f"connection lost while reading {remote_path}: {exc}") from None
        raise TransferError(f"{remote_path}: {getattr(exc, 'reason', None) or exc}") from None
    except BaseException:
        with contextlib.suppress(Exception):  # a cancel goes on whatever closing the partial meets
            await writer.abort(drop=False)
        raise


# ------------------------------------------------------------------------------------------- listing


async def sftp_walk(sftp: asyncssh.SFTPClient, roots: Sequence[str], parallel: int = 16) -> Listing:
    """SFTP-only fallback: walk the roots with up to `parallel` directory reads in flight."""
    listing = Listing(method="sftp")
    for root in roots:
        try:
            attrs = await sftp.stat(root)  # follows a root that is itself a symlink
        except asyncssh.SFTPNoSuchFile:
            listing.missing_roots.append(root)
            continue
        except (asyncssh.Error, OSError) as exc:
            if is_lost(exc) or not isinstance(exc, asyncssh.SFTPError):
                raise RemoteError(f"connection lost listing {root}: {exc}") from None
            raise RemoteError(f"cannot stat root {root}: {exc.reason}") from None
        if attrs.permissions is None or not stat.S_ISDIR(attrs.permissions):
            listing.missing_roots.append(root)
            continue
        pending: list[bytes] = [b""]
        while pending:
            batch, pending = pending[:parallel], pending[parallel:]
            results = await asyncio.gather(
                *(_readdir(sftp, root, sub) for sub in batch), return_exceptions=True
            )
            for sub, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    if isinstance(result, asyncssh.SFTPError) and not is_lost(result):
                        continue  # vanished or unreadable directory: skip it this pass
                    if isinstance(result, asyncssh.Error | OSError):
                        raise RemoteError(f"connection lost listing {root}: {result}") from None
                    raise result
                for name, a in result:
                    rel_b = sub + b"/" + name if sub else name
                    mode = a.permissions or 0
                    if stat.S_ISDIR(mode):
                        pending.append(rel_b)
                    elif stat.S_ISREG(mode):
                        try:
                            rel = decode_rel(rel_b)
                            listing.entries.append(RemoteEntry(root, rel, a.size or 0, sftp_mtime(a)))
                        except UnsafePathError as exc:
                            listing.rejected.append(Rejected(root, rel_b, str(exc)))
    return listing


async def _readdir(
    sftp: asyncssh.SFTPClient, root: str, sub: bytes
) -> list[tuple[bytes, asyncssh.SFTPAttrs]]:
    path = root.encode() + (b"/" + sub if sub else b"")
    out: list[tuple[bytes, asyncssh.SFTPAttrs]] = []
    async for entry in sftp.scandir(path):
        name = entry.filename
        assert isinstance(name, bytes)
        if name in (b".", b".."):
            continue
        out.append((name, entry.attrs))
    return out


def sftp_mtime(a: asyncssh.SFTPAttrs) -> float:
    """A file's mtime from SFTP attributes, with the nanoseconds where the server sends them."""
    if a.mtime is None:
        return 0.0
    return float(a.mtime) + (a.mtime_ns % 1_000_000_000) / 1e9 if a.mtime_ns else float(a.mtime)


# ------------------------------------------------------------------------------------------- reading


async def sftp_pull(
    sftp: asyncssh.SFTPClient,
    remote_path: str,
    partial: Path,
    *,
    size: int,
    mtime: float,
    executor: Executor,
    block_size: int = 0,
    max_requests: int = 64,
    check_attrs: bool = True,
    limiter: RateLimiter | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Copy `remote_path` (expected `size` and `mtime`) into `partial`; return its SHA-256 hex digest.

    Continues an existing partial. Raises RemoteFileChanged when the file is not the expected version
    (then the partial is dropped), RemoteError when the connection is lost, TransferError for other read
    failures (the partial is kept for a resume).
    """
    writer = PartialWriter(partial, size, executor)
    offset = await writer.open()
    if progress:
        progress(offset)
    async with pull_failures(writer, remote_path, None):
        try:
            f = await sftp.open(remote_path, "rb", block_size=block_size or -1, max_requests=max_requests)
        except asyncssh.SFTPNoSuchFile:
            raise RemoteFileChanged(f"{remote_path}: vanished before transfer") from None
        try:
            done = await _stream(f, offset, size, writer, limiter, progress)
            if check_attrs:
                attrs = await f.stat()
                if attrs.size != size or (attrs.mtime is not None and int(attrs.mtime) != int(mtime)):
                    raise RemoteFileChanged(f"{remote_path}: changed during transfer")
        finally:
            close = asyncio.ensure_future(f.close())  # not awaited: saves a round trip per file
            close.add_done_callback(_ignore_result)
        if done != size:
            raise RemoteFileChanged(f"{remote_path}: size changed during transfer ({done} of {size} bytes)")
    return await writer.finish()


async def _stream(
    f: asyncssh.SFTPClientFile,
    offset: int,
    size: int,
    writer: PartialWriter,
    limiter: RateLimiter | None,
    progress: Callable[[int], None] | None,
) -> int:
    """Hand blocks to the writer in offset order (they may arrive out of order); returns bytes held.

    When reading stops early (the connection dropped, the transfer was cancelled), asyncssh's read
    requests still in flight are cancelled and their outcome retrieved: otherwise each one that later
    fails with "connection not open" is reported as a task exception nobody retrieved. asyncssh keeps
    them behind its iterator: pending on its reader (`_pending`), finished but not yet handed out in the
    generator's `done`. Both are noted before each step, since a step that raises ends the generator's
    frame and may already have replaced the pending set."""
    if size <= offset:
        return offset
    blocks = await f.read_parallel(size - offset, offset)
    reader = _reader_of(blocks)
    waiting: dict[int, bytes] = {}
    next_offset = offset
    received = offset  # what progress shows: blocks may arrive (and be written) out of order
    ready: list[bytes] = []
    ready_bytes = 0
    in_flight: list[Collection[object]] = []
    try:
        while True:
            in_flight = _outstanding(blocks, reader)
            try:
                block_offset, data = await anext(blocks)
            except StopAsyncIteration:
                break
            if limiter:
                await limiter.consume(len(data))
            waiting[block_offset] = data
            received += len(data)
            while next_offset in waiting:
                chunk = waiting.pop(next_offset)
                if not chunk:
                    break
                ready.append(chunk)
                ready_bytes += len(chunk)
                next_offset += len(chunk)
            if ready_bytes >= WRITE_CHUNK:
                await writer.write(ready)
                ready, ready_bytes = [], 0
            if progress:
                progress(received)
    except BaseException:
        _retrieve([*in_flight, *_outstanding(blocks, reader)])
        raise
    if ready:
        await writer.write(ready)
    return next_offset


def _reader_of(blocks: AsyncIterator[tuple[int, bytes]]) -> object:
    """asyncssh's parallel reader behind its iterator (the generator's `self`), taken before the first
    step: a failure inside the generator ends its frame. None where that is not how asyncssh works."""
    frame = getattr(blocks, "ag_frame", None)
    return frame.f_locals.get("self") if frame is not None else None


def _outstanding(blocks: AsyncIterator[tuple[int, bytes]], reader: object) -> list[Collection[object]]:
    """asyncssh's read requests that may still end in an error nobody retrieves: its pending set and the
    generator's `done`, held as the live collections, not copies. A step may add requests to the pending
    set and then split it into new ones (`done, self._pending = await asyncio.wait(self._pending)`)
    before it fails and its frame ends: the old set object still holds every request it had."""
    frame = getattr(blocks, "ag_frame", None)
    done = frame.f_locals.get("done", ()) if frame is not None else ()
    return [getattr(reader, "_pending", ()), done]


def _retrieve(groups: Iterable[Collection[object]]) -> None:
    for task in {id(t): t for group in groups for t in list(group)}.values():
        if isinstance(task, asyncio.Future):
            task.cancel()
            task.add_done_callback(_ignore_result)


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


# ------------------------------------------------------------------------------------------- per file


async def bounded(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the requests with at most IN_FLIGHT in flight; their results in order."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(coro: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def sftp_ok(call: Coroutine[Any, Any, object], what: str, *, missing_ok: bool = False) -> bool:
    """Run one SFTP request: True when it succeeded (or, with `missing_ok`, the path was already gone),
    False when the server refused it; a lost connection is a RemoteError."""
    try:
        await call
    except asyncssh.SFTPNoSuchFile:
        return missing_ok
    except (asyncssh.Error, OSError) as exc:
        if is_lost(exc) or not isinstance(exc, asyncssh.SFTPError):
            raise RemoteError(f"connection lost during {what}: {exc}") from None
        return False
    return True


async def sftp_under_root(sftp: asyncssh.SFTPClient, path: str, roots: Collection[str]) -> bool:
    """Whether `path`'s directory really lies below its root: its real path is the root's real path plus
    the listed directories (False when a directory below the root was swapped for a symlink). For
    remotes without a hash of their own, whose bytes nothing else pins; True when no root is known."""
    root = next(
        (r for r in sorted(roots, key=len, reverse=True) if path.startswith(r.rstrip("/") + "/")), None
    )
    if root is None:
        return True
    parent = posixpath.dirname(path)
    try:
        real_root = str(await sftp.realpath(root)).rstrip("/")
        real_parent = str(await sftp.realpath(parent))
    except (asyncssh.Error, OSError) as exc:
        if is_lost(exc) or not isinstance(exc, asyncssh.SFTPError):
            raise RemoteError(f"connection lost checking {path}: {exc}") from None
        return False
    return real_parent == real_root + parent[len(root.rstrip("/")) :] or (
        real_parent == "/" and not real_root
    )


async def sftp_remove(sftp: asyncssh.SFTPClient, path: str) -> bool:
    return await sftp_ok(sftp.remove(path), f"remove {path}", missing_ok=True)


async def sftp_delete_checked(sftp: asyncssh.SFTPClient, expected: Expected, token: str) -> str:
    """`Source.delete` for one file over SFTP alone: rename it aside, read it back and hash it here,
    remove it if it is still the expected version, else rename it back (SFTP's rename never replaces a
    file made at the path meanwhile). "D", "G", "C" or "F" as in `Deletion.add`."""
    path = expected.path
    aside = posixpath.join(posixpath.dirname(path), f"{QUARANTINE}{token}")
    found: list[asyncssh.SFTPAttrs] = []

    async def lstat(p: str) -> None:
        found.append(await sftp.lstat(p))

    if not await sftp_ok(lstat(path), f"lstat {path}", missing_ok=True):
        return "F"
    if not found:
        return "G"
    if found[0].type != asyncssh.FILEXFER_TYPE_REGULAR:
        return "C"
    if not await sftp_ok(sftp.rename(path, aside), f"rename {path}"):
        return "F"
    verdict = "C"
    try:
        regular = await sftp_ok(lstat(aside), f"lstat {aside}")
        regular = regular and found[-1].type == asyncssh.FILEXFER_TYPE_REGULAR
        if regular and await _sftp_sha256(sftp, aside) == expected.sha256:
            verdict = "D" if await sftp_ok(sftp.remove(aside), f"remove {aside}") else "F"
    finally:
        if verdict != "D":
            await sftp_ok(sftp.rename(aside, path), f"rename {aside}")
    return verdict


async def sftp_delete_all(sftp: asyncssh.SFTPClient, files: Sequence[Expected], token: str) -> Deletion:
    """`Source.delete` over SFTP alone (no shell): each file set aside, read back and hashed here, then
    removed or put back (`sftp_delete_checked`)."""
    result = Deletion()
    outcomes = await bounded(sftp_delete_checked(sftp, e, f"{token}-{i}") for i, e in enumerate(files))
    for e, outcome in zip(files, outcomes, strict=True):
        result.add(outcome, e.path)
    return result


async def _sftp_sha256(sftp: asyncssh.SFTPClient, path: str) -> str | None:
    """The SHA-256 of `path` read back over SFTP (None if it cannot be read)."""
    digest = hashlib.sha256()
    try:
        async with sftp.open(path, "rb") as fh:
            while chunk := cast(bytes, await fh.read(WRITE_CHUNK)):
                await asyncio.to_thread(digest.update, chunk)
    except (asyncssh.Error, OSError) as exc:
        if is_lost(exc) or not isinstance(exc, asyncssh.SFTPError):
            raise RemoteError(f"connection lost reading {path}: {exc}") from None
        return None
    return digest.hexdigest()


async def sftp_same(sftp: asyncssh.SFTPClient, path: str, size: int, mtime: float) -> bool:
    found: list[asyncssh.SFTPAttrs] = []

    async def lstat() -> None:
        found.append(await sftp.lstat(path))

    if not await sftp_ok(lstat(), f"lstat {path}") or not found:
        return False
    attrs = found[0]
    return attrs.size == size and same_version(size, mtime, size, sftp_mtime(attrs))


async def sftp_rmdir(sftp: asyncssh.SFTPClient, path: str) -> bool:
    return await sftp_ok(sftp.rmdir(path), f"rmdir {path}")


async def sftp_rmdirs(sftp: asyncssh.SFTPClient, dirs: Sequence[str]) -> None:
    """Remove the folders `dirs` that are empty, the deepest first (a parent empties once its children
    are gone)."""
    by_depth: dict[int, list[str]] = {}
    for d in dirs:
        by_depth.setdefault(d.count("/"), []).append(d)
    for depth in sorted(by_depth, reverse=True):
        await bounded(sftp_rmdir(sftp, d) for d in by_depth[depth])


async def sftp_free(sftp: asyncssh.SFTPClient, path: str) -> int | None:
    """statvfs's free bytes; None where the server has no statvfs (the caller may ask `df`)."""
    try:
        vfs = await sftp.statvfs(path)
        return int(vfs.bavail * vfs.frsize)
    except asyncssh.SFTPOpUnsupported:
        return None
    except (asyncssh.Error, OSError) as exc:
        if is_lost(exc) or not isinstance(exc, asyncssh.SFTPError):
            raise RemoteError(f"connection lost during statvfs {path}: {exc}") from None
        return None


# -------------------------------------------------------------------------------------------- survey


async def sftp_survey(sftp: asyncssh.SFTPClient, roots: Sequence[str]) -> Survey:
    """A host without a shell: each root's state and a missing one's nearest existing parent with its
    names, over SFTP (python3, the inotify limit, writability and the directory count stay unknown)."""
    return Survey(tuple([await _survey_root(sftp, root) for root in roots]), host_known=False)


async def _survey_root(sftp: asyncssh.SFTPClient, root: str) -> RootSurvey:
    state = await _root_state(sftp, root)
    if state == "dir":
        return RootSurvey(root, state)
    parent = posixpath.dirname(root)
    while parent != "/" and await _root_state(sftp, parent) != "dir":
        parent = posixpath.dirname(parent)
    names: list[str] = []

    async def scan() -> None:
        async for entry in sftp.scandir(parent):
            name = entry.filename if isinstance(entry.filename, str) else os.fsdecode(entry.filename)
            if not name.startswith("."):
                is_dir = entry.attrs.permissions is not None and stat.S_ISDIR(entry.attrs.permissions)
                names.append(name + "/" if is_dir else name)

    await sftp_ok(scan(), f"scandir {parent}")
    names.sort()
    return RootSurvey(
        root, state, parent=parent, names=tuple(names[:PARENT_NAMES]), more=max(0, len(names) - PARENT_NAMES)
    )


async def _root_state(sftp: asyncssh.SFTPClient, path: str) -> RootState:
    found: list[asyncssh.SFTPAttrs] = []

    async def follow() -> None:
        found.append(await sftp.stat(path))

    if not await sftp_ok(follow(), f"stat {path}") or not found:
        return "missing"
    mode = found[0].permissions
    return "dir" if mode is not None and stat.S_ISDIR(mode) else "not-dir"
