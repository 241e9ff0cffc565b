"""A container's roots, found inside its root directory on this machine, and listed from there.

Each configured root is resolved the way the container resolves it, but here, one component at a time
below the container's root descriptor: every component is opened without following symlinks; a symlink
is read and its target walked in its place (an absolute target starts again at the container's root,
`..` never climbs above it), so no link can lead out of the container, whatever it points to. Listing
then walks each root the same way, directory descriptor by directory descriptor, and lists regular
files only.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence

from mediasyncd.sources.listing import Listing
from mediasyncd.sources.walk import scan

DIRECTORY_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # symlinks followed while resolving one root, as the kernel allows


def resolve_in(container_root: int, path: str) -> int | None:
    """Blocking: a descriptor of the directory `path` names in the container (see the module's comment),
    or None when it is missing, not a directory, unreadable or a loop of links."""
    stack = [os.dup(container_root)]  # the directories walked so far: `..` goes back one, never past [0]
    pending = [p for p in reversed(path.split("/")) if p]
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                stack.append(os.open(part, DIRECTORY_NOFOLLOW, dir_fd=stack[-1]))
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    return None
            try:
                target = os.readlink(part, dir_fd=stack[-1])
            except OSError:
                return None  # not a link: a file where a directory should be
            links += 1
            if links > MAX_LINKS:
                return None
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
            pending.extend(p for p in reversed(target.split("/")) if p)
        return os.dup(stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


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
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return []  # unreadable: skipped this pass
    return scan(entries, rel_b, root, listing)
