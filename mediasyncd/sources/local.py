"""A folder on this machine as a source: the real transport for `transport = "local"` and the fast real
source of the unit tests.

Blocking file-system work runs in threads. Paths are opened component by component below their root
with O_NOFOLLOW, so a symlink swapped in after a listing never leads out of the root; a root that is
itself a symlink is followed, as with SSH's `find -H`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import platform
import posixpath
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from mediasyncd.errors import LibraryFull, RemoteFileChanged, TransferError, UnsafePathError
from mediasyncd.sources.base import Capabilities, Deletion, Expected, Progress
from mediasyncd.sources.commands import QUARANTINE, emptied_dirs, quarantine_token
from mediasyncd.sources.copied import Copied
from mediasyncd.sources.listing import Listing, same_version
from mediasyncd.sources.local_copy import (
    NOFOLLOW,
    Dirs,
    close_and_drop,
    copy_many,
    copy_span,
    start_partial,
    tail_and_stat,
)
from mediasyncd.sources.receive import LOCAL_FULL, RateLimiter
from mediasyncd.sources.survey import DIR_COUNT_LIMIT, PARENT_NAMES, RootState, RootSurvey, Survey
from mediasyncd.sources.tar import Member
from mediasyncd.sources.walk import scan

COPY_HOP = 8 << 20  # bytes copied per trip to a thread (read, hash, write in 1 MiB pieces)


class LocalSource:
    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = [posixpath.normpath(r) for r in roots]
        # A file that fits in one trip to a thread gains nothing from its own job: it joins a batch.
        self._caps = Capabilities(transport="local", hasher="local", batches=True, stream_below=COPY_HOP)
        self._copied = Copied()

    @property
    def caps(self) -> Capabilities:
        return self._caps

    @property
    def shell(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def list_roots(self, roots: Sequence[str]) -> Listing:
        return await asyncio.to_thread(_list, roots)

    async def pull(
        self,
        path: str,
        partial: Path,
        *,
        size: int,
        mtime: float,
        executor: Executor,
        limiter: RateLimiter | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Copy `path` into `partial` (resuming one a previous attempt left), hashing the bytes as they
        are written: up to COPY_HOP bytes per trip to a thread. The copy's hash answers `sha256` for this
        file without reading it again when the file provably did not change meanwhile (see _Copied)."""
        loop = asyncio.get_running_loop()
        started_ns = time.time_ns()
        dst: int | None = None
        if limiter is not None and limiter.rate <= 0:  # no bandwidth limit configured
            limiter = None
        try:
            if limiter is None and size <= COPY_HOP:  # the whole copy in one trip to a thread
                copied = await loop.run_in_executor(executor, self._copy_at_once, path, partial, size)
                hasher, offset, done, longer, before, after = copied
                if progress:
                    progress(done)
            else:
                src, before = await loop.run_in_executor(executor, self._open_file, path)
                try:
                    hasher, offset, out = await loop.run_in_executor(executor, start_partial, partial, size)
                    dst = out
                    done = await _copy(src, out, hasher, offset, size, executor, limiter, progress)
                    longer, after = await loop.run_in_executor(executor, tail_and_stat, src, done)
                finally:
                    os.close(src)
            if done != size or longer or not same_version(after.st_size, after.st_mtime, size, mtime):
                raise RemoteFileChanged(f"{path}: changed during transfer")
        except RemoteFileChanged:
            fd, dst = dst, None
            await loop.run_in_executor(executor, close_and_drop, fd, partial)
            raise
        except OSError as exc:
            if exc.errno in LOCAL_FULL:
                raise LibraryFull(f"library disk full writing {partial.name}: {exc.strerror}") from None
            raise TransferError(f"{path}: {exc.strerror or exc}") from None
        finally:
            if dst is not None:
                os.close(dst)
        digest: str = hasher.hexdigest()
        # offset 0: not resumed, so every byte hashed was read by this copy
        self._copied.remember(path, digest, before, after, whole=offset == 0, started_ns=started_ns)
        return digest

    async def pull_batch(
        self,
        root: str,
        partials: dict[str, Path],
        *,
        executor: Executor,
        on_member: Callable[[Member], None],
        progress: Progress | None = None,
        sizes: dict[str, int] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """Copy many small files of `root`, about COPY_HOP bytes of them per trip to a thread (a local
        folder has no stream: the batch saves the trips), each hashed and checked as `pull` does. A file
        that changed or vanished is not delivered: the caller takes it again, one by one."""
        loop = asyncio.get_running_loop()
        sizes = sizes or {}
        items = list(partials.items())
        done = start = 0
        while start < len(items):
            end, hop = start, 0
            while end < len(items) and (end == start or hop < COPY_HOP):
                hop += sizes.get(items[end][0], 0)
                end += 1
            trip = [(rel, partial, sizes.get(rel)) for rel, partial in items[start:end]]
            if limiter is not None:
                await limiter.consume(hop)
            copies, error = await loop.run_in_executor(
                executor, copy_many, self._split, root, trip, self._copied
            )
            for c in copies:
                on_member(Member(c.rel, c.size, c.mtime, c.sha256))
                done += c.size
            if progress:
                progress(done)
            if error is not None:
                raise error
            start = end

    async def sha256(self, paths: Sequence[str]) -> dict[str, str] | None:
        """Each file's SHA-256 now: the hash of the copy just made where the file is provably unchanged
        since (same inode, size, mtime and ctime, and no write during the copy), else read again."""
        return await asyncio.to_thread(self._hashes, paths)

    async def still_same(self, files: Sequence[tuple[str, int, float]]) -> set[str]:
        def check() -> set[str]:
            same: set[str] = set()
            for path, size, mtime in files:
                st = self._lstat(path)
                regular = st is not None and stat.S_ISREG(st.st_mode)
                if regular and st is not None and same_version(st.st_size, st.st_mtime, size, mtime):
                    same.add(path)
            return same

        return await asyncio.to_thread(check)

    async def delete(self, files: Sequence[Expected]) -> Deletion:
        token = quarantine_token()

        def remove() -> Deletion:
            result = Deletion()
            for i, e in enumerate(files):
                try:
                    with self._parent(e.path) as (dir_fd, name):
                        result.add(_delete_checked(dir_fd, name, e, f"{QUARANTINE}{token}-{i}"), e.path)
                except FileNotFoundError:
                    result.gone.add(e.path)
                except (OSError, UnsafePathError):
                    result.failed.add(e.path)
            return result

        return await asyncio.to_thread(remove)

    async def remove_empty_dirs(self, root: str, deleted: Sequence[str]) -> None:
        def tidy() -> None:
            for d in emptied_dirs(root, deleted):
                try:
                    with self._parent(d) as (dir_fd, name):
                        os.rmdir(name, dir_fd=dir_fd)
                except (OSError, UnsafePathError):
                    continue  # not empty, or not ours to remove

        await asyncio.to_thread(tidy)

    async def free_space(self, path: str) -> int | None:
        def measure() -> int | None:
            try:
                vfs = os.statvfs(path)
            except OSError:
                return None
            return vfs.f_bavail * vfs.f_frsize

        return await asyncio.to_thread(measure)

    async def survey(self, roots: Sequence[str]) -> Survey:
        def look() -> Survey:
            roots_found = tuple(_survey_root(r) for r in roots)
            return Survey(roots_found, True, platform.python_version(), _inotify_watches())

        return await asyncio.to_thread(look)

    # ------------------------------------------------------------------------------------ paths

    def _split(self, path: str) -> tuple[str, list[str]]:
        """The root `path` lies under and its components below it; UnsafePathError otherwise."""
        norm = posixpath.normpath(path)
        for root in sorted(self.roots, key=len, reverse=True):
            if norm.startswith(root.rstrip("/") + "/"):
                rel = norm[len(root.rstrip("/")) + 1 :]
                return root, rel.split("/")
        raise UnsafePathError(f"{path} is not under a root of this source")

    @contextlib.contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str]]:
        """The directory holding `path`, opened without following symlinks below the root, and the
        last component's name."""
        root, parts = self._split(path)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def _open_file(self, path: str) -> tuple[int, os.stat_result]:
        """A read-only descriptor of the regular file at `path` and its fstat."""
        with Dirs(self._split) as dirs:
            return dirs.open_file(path)

    def _copy_at_once(
        self, path: str, partial: Path, size: int
    ) -> tuple[Any, int, int, bool, os.stat_result, os.stat_result]:
        """Blocking: open, copy and check a file of at most COPY_HOP bytes; (hasher, offset resumed
        from, end offset, whether the source has more bytes, fstat before, fstat after)."""
        src, before = self._open_file(path)
        try:
            hasher, offset, dst = start_partial(partial, size)
            try:
                done = offset + copy_span(src, dst, hasher, offset, size - offset)
            finally:
                os.close(dst)
            longer, after = tail_and_stat(src, done)
        finally:
            os.close(src)
        return hasher, offset, done, longer, before, after

    def _lstat(self, path: str) -> os.stat_result | None:
        with Dirs(self._split) as dirs:
            return dirs.lstat(path)

    def _hashes(self, paths: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with Dirs(self._split) as dirs:  # each folder opened once for the whole batch
            for path in paths:
                known = self._copied.take(path, dirs.lstat(path))
                if known is not None:
                    out[path] = known
                    continue
                try:
                    fd, _ = dirs.open_file(path)
                except (OSError, RemoteFileChanged):
                    continue
                with os.fdopen(fd, "rb") as fh:
                    out[path] = hashlib.file_digest(fh, "sha256").hexdigest()
        return out


async def _copy(
    src: int,
    dst: int,
    hasher: Any,
    offset: int,
    size: int,
    executor: Executor,
    limiter: RateLimiter | None,
    progress: Progress | None,
) -> int:
    """Copy `src` from `offset` on to `dst`, COPY_HOP bytes per trip to a thread; the end offset (short
    of `size` if the source ended early)."""
    loop = asyncio.get_running_loop()
    done = offset
    if progress:
        progress(done)
    while done < size:
        n = min(COPY_HOP, size - done)
        if limiter:
            await limiter.consume(n)
        got = await loop.run_in_executor(executor, copy_span, src, dst, hasher, done, n)
        done += got
        if progress:
            progress(done)
        if got < n:
            break
    return done


def _delete_checked(dir_fd: int, name: str, expected: Expected, aside: str) -> str:
    """Rename `name` aside, hash it there (never through a symlink), unlink it if it is still the
    expected version, else link it back (never over a file made at `name` meanwhile). "D", "G", "C" or
    "F" as in `Deletion.add`."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return "G"
    if not stat.S_ISREG(st.st_mode):
        return "C"
    os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    verdict = "C"
    try:
        fd = os.open(aside, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as fh:
            same = stat.S_ISREG(os.fstat(fd).st_mode)
            same = same and hashlib.file_digest(fh, "sha256").hexdigest() == expected.sha256
        if same:
            os.unlink(aside, dir_fd=dir_fd)
            verdict = "D"
    except OSError:
        verdict = "C"
    finally:
        if verdict != "D":
            with contextlib.suppress(OSError):  # a file made at `name` meanwhile wins: ours stays aside
                os.link(aside, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                os.unlink(aside, dir_fd=dir_fd)
    return verdict


def _list(roots: Sequence[str]) -> Listing:
    """Walk `roots` without following symlinks below them; only regular files are listed."""
    listing = Listing(method="local", remote_now=time.time())
    for root in roots:
        try:
            if not stat.S_ISDIR(os.stat(root).st_mode):
                listing.missing_roots.append(root)
                continue
        except OSError:
            listing.missing_roots.append(root)
            continue
        pending: list[bytes] = [b""]
        while pending:
            sub = pending.pop()
            try:
                entries = list(os.scandir(os.fsencode(root) + (b"/" + sub if sub else b"")))
            except OSError:
                continue  # vanished or unreadable directory: skip it this pass
            pending += (sub + b"/" + name if sub else name for name in scan(entries, sub, root, listing))
    return listing


def _survey_root(root: str) -> RootSurvey:
    """What `survey_command` prints for one root, found with os calls (symlinks followed, as `[ -d ]`)."""
    if os.path.isdir(root):
        dirs = 0
        for _ in os.walk(root):
            dirs += 1
            if dirs >= DIR_COUNT_LIMIT:
                break
        return RootSurvey(root, "dir", writable=os.access(root, os.W_OK), dirs=dirs)
    parent = posixpath.dirname(root)
    while not os.path.isdir(parent):
        parent = posixpath.dirname(parent)
    try:
        with os.scandir(parent) as it:
            names = sorted(e.name + "/" if e.is_dir() else e.name for e in it if not e.name.startswith("."))
    except OSError:
        names = []
    state: RootState = "not-dir" if os.path.lexists(root) else "missing"
    kept = tuple(names[:PARENT_NAMES])
    return RootSurvey(root, state, parent=parent, names=kept, more=len(names) - len(kept))


def _inotify_watches() -> int | None:
    try:
        return int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        return None
