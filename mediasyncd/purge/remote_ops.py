"""Deleting on the remote in batches: commands built as pure values, run through one channel.

With a shell, each batch of files is one `rm` in the long-lived command channel that also reports which
paths still exist afterwards, and the directories left empty are one `rmdir` (deepest first, so nested
empty directories go in the same command). Without a shell (SFTP-only hosts) the same work goes through
SFTP `remove`/`rmdir` with a bounded number of requests in flight. Never one exec per file.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any

import asyncssh

from mediasyncd.errors import RemoteError
from mediasyncd.transfer.remote import RemoteHost
from mediasyncd.watchers.listing import sftp_mtime
from mediasyncd.watchers.poll import same_version

BATCH_FILES = 200  # files per delete command
BATCH_BYTES = 64 * 1024  # command-line bytes per delete command
SFTP_IN_FLIGHT = 16  # SFTP requests in flight when there is no shell


def batches(
    paths: Sequence[str], *, max_files: int = BATCH_FILES, max_bytes: int = BATCH_BYTES
) -> Iterator[list[str]]:
    """Split `paths` into runs that fit one command line (at least one path per batch)."""
    batch: list[str] = []
    size = 0
    for path in paths:
        cost = len(shlex.quote(path).encode()) + 1
        if batch and (len(batch) >= max_files or size + cost > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += cost
    if batch:
        yield batch


def delete_command(paths: Sequence[str]) -> str:
    """`rm -f` the paths, then print (NUL-terminated) every one that still exists."""
    args = " ".join(shlex.quote(p) for p in paths)
    return (
        f'set -- {args}; rm -f -- "$@"; '
        'for f in "$@"; do if [ -e "$f" ] || [ -L "$f" ]; then printf \'%s\\0\' "$f"; fi; done'
    )


def parse_survivors(output: bytes) -> set[str]:
    return {p.decode("utf-8", "surrogateescape") for p in output.split(b"\0") if p}


def emptied_dirs(root: str, paths: Iterable[str]) -> list[str]:
    """Directories between `root` (excluded) and each deleted path, deepest first."""
    base = root.rstrip("/") or "/"
    dirs: set[str] = set()
    for path in paths:
        parent = posixpath.dirname(path)
        while parent != base and parent.startswith(base.rstrip("/") + "/"):
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(dirs, key=lambda d: (-d.count("/"), d))


def rmdir_command(dirs: Sequence[str]) -> str:
    """Remove each directory that is empty; non-empty ones stay (rmdir refuses them)."""
    return f"rmdir -- {' '.join(shlex.quote(d) for d in dirs)} 2>/dev/null; true"


def free_space_command(path: str) -> str:
    return f"df -Pk -- {shlex.quote(path)}"


def parse_df(output: bytes) -> int | None:
    """Available bytes from POSIX `df -Pk` output (the 4th column of the last line)."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------------- execution


async def delete_files(host: RemoteHost, paths: Sequence[str]) -> set[str]:
    """Delete one batch; return the paths that still exist afterwards."""
    if not paths:
        return set()
    if host.shell is not None:
        result = await host.shell.run(delete_command(paths))
        return parse_survivors(result.stdout)
    outcomes = await _bounded(_sftp_remove(host.sftp, p) for p in paths)
    return {p for p, removed in zip(paths, outcomes, strict=True) if not removed}


async def still_same(host: RemoteHost, files: Sequence[tuple[str, int, float]]) -> set[str]:
    """Paths (of `(path, size, mtime)`) whose SFTP lstat still shows that size and mtime: the last check
    before each delete batch, so a file rewritten since it was listed and hashed is spared."""
    stats = await _bounded(_sftp_same(host.sftp, path, size, mtime) for path, size, mtime in files)
    return {path for (path, _, _), same in zip(files, stats, strict=True) if same}


async def remove_empty_dirs(host: RemoteHost, root: str, deleted: Iterable[str]) -> None:
    dirs = emptied_dirs(root, deleted)
    if not dirs:
        return
    if host.shell is not None:
        for batch in batches(dirs):
            await host.shell.run(rmdir_command(batch))
        return
    by_depth: dict[int, list[str]] = {}
    for d in dirs:
        by_depth.setdefault(d.count("/"), []).append(d)
    for depth in sorted(by_depth, reverse=True):
        await _bounded(_sftp_rmdir(host.sftp, d) for d in by_depth[depth])


async def free_space(host: RemoteHost, path: str) -> int | None:
    """Bytes available to unprivileged users on the filesystem holding `path` (None if unknown)."""
    try:
        vfs = await host.sftp.statvfs(path)
        return int(vfs.bavail * vfs.frsize)
    except asyncssh.SFTPConnectionLost as exc:
        raise RemoteError(f"connection lost during statvfs {path}: {exc}") from None
    except asyncssh.SFTPOpUnsupported:
        pass
    except asyncssh.SFTPError:
        return None
    except (asyncssh.Error, OSError) as exc:
        raise RemoteError(f"statvfs {path} failed: {exc}") from None
    if host.shell is None:
        return None
    result = await host.shell.run(free_space_command(path))
    return parse_df(result.stdout) if result.exit_status == 0 else None


async def _bounded(coros: Iterable[Coroutine[Any, Any, bool]]) -> list[bool]:
    gate = asyncio.Semaphore(SFTP_IN_FLIGHT)

    async def one(coro: Coroutine[Any, Any, bool]) -> bool:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def _sftp_ok(call: Coroutine[Any, Any, object], what: str, *, missing_ok: bool = False) -> bool:
    """Run one SFTP request: True when it succeeded (or, with `missing_ok`, the path was already gone),
    False when the server refused it; a lost connection is a RemoteError."""
    try:
        await call
    except asyncssh.SFTPNoSuchFile:
        return missing_ok
    except asyncssh.SFTPConnectionLost as exc:
        raise RemoteError(f"connection lost during {what}: {exc}") from None
    except asyncssh.SFTPError:
        return False
    except (asyncssh.Error, OSError) as exc:
        raise RemoteError(f"connection lost during {what}: {exc}") from None
    return True


async def _sftp_remove(sftp: asyncssh.SFTPClient, path: str) -> bool:
    return await _sftp_ok(sftp.remove(path), f"remove {path}", missing_ok=True)


async def _sftp_same(sftp: asyncssh.SFTPClient, path: str, size: int, mtime: float) -> bool:
    found: list[asyncssh.SFTPAttrs] = []

    async def lstat() -> None:
        found.append(await sftp.lstat(path))

    if not await _sftp_ok(lstat(), f"lstat {path}") or not found:
        return False
    attrs = found[0]
    return attrs.size == size and same_version(size, mtime, size, sftp_mtime(attrs))


async def _sftp_rmdir(sftp: asyncssh.SFTPClient, path: str) -> bool:
    return await _sftp_ok(sftp.rmdir(path), f"rmdir {path}")
