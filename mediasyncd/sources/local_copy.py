"""The blocking half of LocalSource's copies: read, hash and write from one buffer; folders below a root
opened without following symlinks; many small files copied in one trip to a thread.

Everything here runs in a worker thread. A file's bytes pass through SHA-256 once, from the same buffer
that is written to the partial, so the digest is the digest of the bytes landed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediasyncd.errors import LibraryFull, RemoteFileChanged, TransferError, UnsafePathError
from mediasyncd.sources.copied import COPY_READ, Copied
from mediasyncd.sources.receive import LOCAL_FULL, open_partial, resume_state

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC

Split = Callable[[str], tuple[str, list[str]]]
_local = threading.local()


class Dirs:
    """Folders below the source's roots, each opened once (component by component, never through a
    symlink below its root) and kept open until `close`: one trip to a thread over many files of the same
    folders opens each folder once, not once per file."""

    def __init__(self, split: Split) -> None:
        self._split = split
        self._fds: dict[tuple[str, ...], int] = {}

    def parent(self, path: str) -> tuple[int, str]:
        """The open folder holding `path` and the last component's name (UnsafePathError outside the
        roots; OSError as os.open raises it)."""
        root, parts = self._split(path)
        return self._dir((root, *parts[:-1])), parts[-1]

    def _dir(self, key: tuple[str, ...]) -> int:
        fd = self._fds.get(key)
        if fd is None:
            if len(key) == 1:  # the root itself: followed if it is a symlink, as SSH's `find -H`
                fd = os.open(key[0], DIR_FLAGS)
            else:
                fd = os.open(key[-1], DIR_FLAGS | os.O_NOFOLLOW, dir_fd=self._dir(key[:-1]))
            self._fds[key] = fd
        return fd

    def open_file(self, path: str) -> tuple[int, os.stat_result]:
        """A read-only descriptor of the regular file at `path` and its fstat; RemoteFileChanged when it
        vanished or is no longer a regular file."""
        try:
            dir_fd, name = self.parent(path)
            # O_NONBLOCK: a FIFO swapped in after the listing must not block a thread in open().
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError, UnsafePathError) as exc:
            raise RemoteFileChanged(f"{path}: vanished before transfer ({exc})") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink where the listing saw a file
                raise RemoteFileChanged(f"{path}: no longer a regular file") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise RemoteFileChanged(f"{path}: no longer a regular file")
        return fd, st

    def lstat(self, path: str) -> os.stat_result | None:
        try:
            dir_fd, name = self.parent(path)
            return os.lstat(name, dir_fd=dir_fd)
        except (OSError, UnsafePathError):
            return None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Dirs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Copy:
    """One file of a batch, copied whole and checked: its digest, and its size and mtime after the copy."""

    rel: str
    sha256: str
    size: int
    mtime: float


def copy_many(
    split: Split,
    root: str,
    files: list[tuple[str, Path, int | None]],
    copied: Copied,
) -> tuple[list[Copy], Exception | None]:
    """Copy each (rel under `root`, partial, listed size or None) whole into a fresh partial, hashing what is
    written, in one trip to a thread; what was copied, and the error that stopped the trip early
    (LibraryFull, or TransferError for any other I/O error) or None. A file that vanished, is no longer
    a regular file, or whose size or fingerprint moved during its copy is left out (its partial dropped):
    the caller takes it again, one by one. Each copy's digest is remembered in `copied` for verification,
    as `LocalSource.pull` does."""
    out: list[Copy] = []
    made: set[Path] = set()
    with Dirs(split) as dirs:
        for rel, partial, listed in files:
            path = f"{root.rstrip('/')}/{rel}"
            started_ns = time.time_ns()
            try:
                src, before = dirs.open_file(path)
            except RemoteFileChanged:
                continue
            except OSError as exc:
                return out, TransferError(f"{path}: {exc.strerror or exc}")
            dst = -1
            try:
                if partial.parent not in made:
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    made.add(partial.parent)
                dst = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                size = before.st_size if listed is None else listed
                hasher = hashlib.sha256()
                done = copy_span(src, dst, hasher, 0, size)
                longer, after = tail_and_stat(src, done)
            except OSError as exc:
                close_and_drop(dst if dst >= 0 else None, partial)
                if exc.errno in LOCAL_FULL:
                    return out, LibraryFull(f"library disk full writing {partial.name}: {exc.strerror}")
                return out, TransferError(f"{path}: {exc.strerror or exc}")
            finally:
                os.close(src)
            os.close(dst)
            if done != size or longer or after.st_size != size:
                partial.unlink(missing_ok=True)
                continue
            digest = hasher.hexdigest()
            copied.remember(path, digest, before, after, whole=True, started_ns=started_ns)
            out.append(Copy(rel, digest, size, after.st_mtime))
    return out, None


def start_partial(partial: Path, size: int) -> tuple[Any, int, int]:
    """The hash of what an interrupted copy left in `partial`, its length, and the partial open for
    appending."""
    hasher, offset = resume_state(partial, size)
    return hasher, offset, open_partial(partial, os.O_APPEND)


def copy_span(src: int, dst: int, hasher: Any, offset: int, n: int) -> int:
    """Copy up to `n` bytes of `src` from `offset` to the end of `dst`, hashing them; the bytes copied
    (fewer at the source's end). Each piece is read into this thread's buffer, hashed and written from
    it: no new buffer (and no fresh pages to fault in) per read."""
    buffer = _buffer()
    copied = 0
    while copied < n:
        got = os.preadv(src, [buffer[: min(COPY_READ, n - copied)]], offset + copied)
        if not got:
            break
        view = buffer[:got]
        hasher.update(view)
        while view:
            view = view[os.write(dst, view) :]
        copied += got
    return copied


def _buffer() -> memoryview:
    """This thread's COPY_READ-byte copy buffer."""
    buffer: memoryview | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = memoryview(bytearray(COPY_READ))
    return buffer


def tail_and_stat(src: int, end: int) -> tuple[bool, os.stat_result]:
    """Whether the source has bytes past `end` (it grew), and its fstat after the copy."""
    return bool(os.pread(src, 1, end)), os.fstat(src)


def close_and_drop(fd: int | None, partial: Path) -> None:
    if fd is not None:
        os.close(fd)
    partial.unlink(missing_ok=True)
