"""The one place local retention touches the library: check each due copy on disk, then delete it.

Blocking (run it in a thread). Every path is walked from the library one component at a time through
directory descriptors opened with O_NOFOLLOW, so a symlink anywhere under the library is never followed
and a swapped-in symlink cannot redirect a delete. A dry run makes exactly the same checks and deletes
nothing. With a copy go the outputs the media pipeline recorded for it in the catalog: its XMP sidecar
(unless another library file records the same one) and, once no landed file in the library has its
content any more, its thumbnail; directories the deletion left empty go too, never `<remote>/`. Nothing
is deleted by a name guessed here: a file the pipeline did not record stays.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from mediasyncd.digest import sha256_stream
from mediasyncd.purge.retention import Copy, Hold
from mediasyncd.sources import same_version

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass(frozen=True)
class Expired:
    """A library copy that goes (or would go), with the sidecar and thumbnail that go with it."""

    copy: Copy
    extras: tuple[str, ...] = ()  # library-relative


@dataclass
class Sweep:
    expired: list[Expired] = field(default_factory=list)
    held: list[tuple[Copy, Hold]] = field(default_factory=list)
    gone: list[Copy] = field(default_factory=list)  # already missing from the library (not ours to mark)

    @property
    def freed_bytes(self) -> int:
        return sum(e.copy.size for e in self.expired)


def expire(
    library: Path,
    copies: Sequence[Copy],
    *,
    dry_run: bool,
    live_by_sha: Mapping[str, frozenset[int]],
    outputs: Mapping[str, tuple[str | None, str | None]] | None = None,
    shared_sidecars: frozenset[str] = frozenset(),
) -> Sweep:
    """Delete (or, dry, only check) `copies`; `live_by_sha` maps each content hash to the ids of every
    landed row whose library copy still counts as present (to tell when a thumbnail is no longer used);
    `outputs` holds the (sidecar, thumbnail) the pipeline recorded per local path."""
    recorded = outputs or {}
    sweep = Sweep()
    extras: dict[str, list[str]] = {}
    lib_fd = os.open(library, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for copy in copies:
            outcome = _expire_one(lib_fd, copy, dry_run)
            if isinstance(outcome, Hold):
                sweep.held.append((copy, outcome))
            elif outcome is None:
                sweep.gone.append(copy)
            else:
                extras[copy.local_path] = outcome
        expiring = [c for c in copies if c.local_path in extras]
        _remove_sidecars(lib_fd, copies, expiring, recorded, shared_sidecars, extras, dry_run)
        gone_ids = {i for c in expiring for i in c.ids} | {i for c in sweep.gone for i in c.ids}
        released: set[str] = set()
        for copy in expiring:
            sha = copy.rows[0].sha256
            if not sha or sha in released or not live_by_sha.get(sha, frozenset()) <= gone_ids:
                continue
            released.add(sha)
            thumb = recorded.get(copy.local_path, (None, None))[1]
            if thumb and _remove(lib_fd, thumb, dry_run, root_parts=2):
                extras[copy.local_path].append(thumb)
        sweep.expired = [Expired(c, tuple(extras[c.local_path])) for c in expiring]
    finally:
        os.close(lib_fd)
    return sweep


def _remove_sidecars(
    lib_fd: int,
    copies: Sequence[Copy],
    expiring: Sequence[Copy],
    recorded: Mapping[str, tuple[str | None, str | None]],
    shared: frozenset[str],
    extras: dict[str, list[str]],
    dry_run: bool,
) -> None:
    """A recorded sidecar goes once every copy that records it goes (none held, none kept elsewhere)."""
    users: dict[str, list[str]] = {}
    for copy in copies:
        sidecar = recorded.get(copy.local_path, (None, None))[0]
        if sidecar:
            users.setdefault(sidecar, []).append(copy.local_path)
    going = {c.local_path for c in expiring}
    for sidecar, paths in users.items():
        if sidecar in shared or not set(paths) <= going:
            continue
        if _remove(lib_fd, sidecar, dry_run, root_parts=1):
            extras[paths[0]].append(sidecar)


def _expire_one(lib_fd: int, copy: Copy, dry_run: bool) -> list[str] | Hold | None:
    """An empty list of extras once the copy is deleted, why it stays, or None when it is already gone."""
    parts = copy.local_path.split("/")
    name = parts[-1]
    with ExitStack() as stack:
        fds = [lib_fd]
        try:
            for part in parts[:-1]:
                refused = _not_a_dir(os.stat(part, dir_fd=fds[-1], follow_symlinks=False))
                if refused is not None:
                    return refused
                fd = os.open(part, _DIR_FLAGS, dir_fd=fds[-1])
                stack.callback(os.close, fd)
                fds.append(fd)
            st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError:
            return Hold.UNREADABLE
        if stat.S_ISLNK(st.st_mode):
            return Hold.SYMLINK
        if not stat.S_ISREG(st.st_mode):
            return Hold.NOT_A_FILE
        if not _as_landed(fds[-1], name, st, copy):
            return Hold.CHANGED
        if not dry_run:
            try:
                os.unlink(name, dir_fd=fds[-1])
            except FileNotFoundError:
                return None
            except OSError:
                return Hold.DELETE_FAILED
            _prune(fds, parts)
        return []


def _as_landed(dir_fd: int, name: str, st: os.stat_result, copy: Copy) -> bool:
    """True when the file is still what mediasyncd put there: the landed size and mtime, or, for a file a
    workflow stage replaced in the library (`compress` with `keep_original = false`, whose size and mtime
    are not the landed ones), the SHA-256 of the replacement."""
    if any(
        r.library_sha256 is None and same_version(r.size, r.mtime, st.st_size, st.st_mtime) for r in copy.rows
    ):
        return True
    replaced = {r.library_sha256 for r in copy.rows if r.library_sha256 is not None}
    if not replaced:
        return False
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return sha256_stream(f) in replaced
    finally:
        os.close(fd)


def _not_a_dir(st: os.stat_result) -> Hold | None:
    """For a directory on the way: None when it is a real directory, else why the walk stops."""
    if stat.S_ISLNK(st.st_mode):
        return Hold.SYMLINK
    if not stat.S_ISDIR(st.st_mode):
        return Hold.NOT_A_FILE
    return None


def _unlink_regular(dir_fd: int, name: str, dry_run: bool) -> bool:
    """Delete `name` in `dir_fd` if it is a regular file (never a symlink); True when it goes."""
    try:
        if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return False
        if not dry_run:
            os.unlink(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def _remove(lib_fd: int, rel: str, dry_run: bool, *, root_parts: int) -> bool:
    """Delete the regular file `rel` (walked without following symlinks); prune dirs below `root_parts`."""
    parts = rel.split("/")
    with ExitStack() as stack:
        fds = [lib_fd]
        try:
            for part in parts[:-1]:
                fd = os.open(part, _DIR_FLAGS, dir_fd=fds[-1])
                stack.callback(os.close, fd)
                fds.append(fd)
        except OSError:
            return False
        if not _unlink_regular(fds[-1], parts[-1], dry_run):
            return False
        if not dry_run:
            _prune(fds, parts, keep=root_parts)
        return True


def _prune(fds: Sequence[int], parts: Sequence[str], keep: int = 1) -> None:
    """Remove the directories of `parts` left empty, deepest first, never the first `keep` levels.

    `fds[i]` is the directory holding `parts[i]`.
    """
    for i in range(len(parts) - 2, keep - 1, -1):
        try:
            os.rmdir(parts[i], dir_fd=fds[i])
        except OSError:
            return
