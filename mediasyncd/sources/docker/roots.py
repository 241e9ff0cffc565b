"""A container's roots, found inside its root directory on this machine, and listed from there.

The container's shell says where each configured root really is (`cd -P`, `pwd -P`: its symlinks resolved
by the container's own kernel view, inside the container) and which directory that is (`stat`: device
and inode). That path is then opened here one component at a time below the container's root
descriptor, never following a symlink and never taking `..`, and it must be the same directory the
shell named; otherwise the two views disagree and the container's files are not read from here.
Listing walks each root the same way, directory descriptor by directory descriptor.
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import decode_rel
from mediasyncd.sources.docker.container import HostPathUnavailable
from mediasyncd.sources.listing import Listing, Rejected, RemoteEntry

DIRECTORY_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Located:
    """Where the container's shell found a root: its real path and the directory's device and inode."""

    path: str
    dev: int
    ino: int


def locate_command(roots: Sequence[str]) -> str:
    """For each root, one NUL-terminated record: `D <dev> <ino> <real path>` for a directory, `N` for
    anything else or nothing. (`echo .` keeps a trailing newline of a path from `$(…)`'s trimming.)"""
    words = " ".join(shlex.quote(r) for r in roots)
    return (
        f"for r in {words}; do "
        'if d=$(cd -P -- "$r" 2>/dev/null && pwd -P && echo .) && d=${d%??} && '
        's=$(stat -c \'%d %i\' -- "$d" 2>/dev/null); then printf \'D %s %s\\0\' "$s" "$d"; '
        "else printf 'N\\0'; fi; done"
    )


def parse_located(output: bytes, roots: Sequence[str]) -> dict[str, Located | None]:
    """What `locate_command` printed, by root; a record that cannot be read is a disagreement."""
    records = output.split(b"\0")
    if len(records) != len(roots) + 1 or records[-1] != b"":
        raise HostPathUnavailable("the container's shell did not answer where its roots are")
    found: dict[str, Located | None] = {}
    for root, record in zip(roots, records, strict=False):
        if record == b"N":
            found[root] = None
            continue
        tag, dev, ino, path = [*record.split(b" ", 3), b"", b"", b""][:4]
        if tag != b"D" or not dev.isdigit() or not ino.isdigit() or not path.startswith(b"/"):
            raise HostPathUnavailable(f"the container's shell answered garbage for root {root}")
        found[root] = Located(os.fsdecode(path), int(dev), int(ino))
    return found


def open_located(container_root: int, located: Located) -> int:
    """Blocking: a descriptor of `located` below the container's root (no symlink followed, no `..`),
    checked to be the directory the shell named; HostPathUnavailable if it is not."""
    parts = [p for p in located.path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise HostPathUnavailable(f"the container named {located.path!r} as a root's real path")
    fd = os.dup(container_root)
    try:
        for part in parts:
            next_fd = os.open(part, DIRECTORY_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise HostPathUnavailable(
            f"{located.path} cannot be opened from this machine ({exc.strerror})"
        ) from None
    if (st.st_dev, st.st_ino) != (located.dev, located.ino):
        os.close(fd)
        raise HostPathUnavailable(
            f"{located.path} is another directory from this machine than in the container"
        )
    return fd


def list_below(fds: dict[str, int | None], roots: Sequence[str]) -> Listing:
    """Blocking: every regular file under `roots` (each open at `fds[root]`; None: missing), walked by
    directory descriptors without following symlinks; only regular files are listed."""
    listing = Listing(method="host-path", remote_now=time.time())
    for root in roots:
        fd = fds.get(root)
        if fd is None:
            listing.missing_roots.append(root)
            continue
        _walk(fd, root, listing)
    return listing


def _walk(root_fd: int, root: str, listing: Listing) -> None:
    top = os.dup(root_fd)
    stack: list[tuple[int, bytes, list[bytes]]] = [(top, b"", _scan(top, b"", root, listing))]
    while stack:
        fd, rel_b, subdirs = stack[-1]
        if not subdirs:
            os.close(fd)
            stack.pop()
            continue
        name = subdirs.pop()
        try:
            child = os.open(name, DIRECTORY_NOFOLLOW, dir_fd=fd)
        except OSError:
            continue  # vanished, or swapped for a symlink: skipped this pass
        child_rel = rel_b + b"/" + name if rel_b else name
        stack.append((child, child_rel, _scan(child, child_rel, root, listing)))


def _scan(fd: int, rel_b: bytes, root: str, listing: Listing) -> list[bytes]:
    """List the regular files of the directory open at `fd`; return its subdirectories' names."""
    subdirs: list[bytes] = []
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return subdirs  # unreadable: skipped this pass
    for entry in entries:
        name = os.fsencode(entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        file_rel = rel_b + b"/" + name if rel_b else name
        try:
            listing.entries.append(RemoteEntry(root, decode_rel(file_rel), st.st_size, st.st_mtime))
        except UnsafePathError as exc:
            listing.rejected.append(Rejected(root, file_rel, str(exc)))
    return subdirs
