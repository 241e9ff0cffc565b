"""Local retention (`[purge] local_retention`, off by default): which library copies may go. Pure.

A library copy is deleted only if all of these hold:
- mediasyncd landed it (a row with a `local_path`) under `<library>/<remote>/`, never under `.mediasyncd/`;
- its remote copy is already gone: mediasyncd purged it after verifying this very copy (state `purged`).
  Retention never leaves the only copy on a container, and the remote purge never meets a file that
  retention removed (its "deleted locally" count stays the user's own deletions);
- it landed at least `local_retention` ago (by `landed_at`, not by remote mtime: a backlog of old
  images pulled today still stays that long in the library);
- it matches no `preserve` glob (a file kept on the remote is kept at home too);
- no other landed file that is not itself expiring shares the library copy (same content landed twice);
- on disk (checked by `library_ops`), walking from the library without following a symlink, it is a
  regular file with the size and mtime it landed with (a file edited or replaced since is the user's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mediasyncd.errors import UnsafePathError
from mediasyncd.globs import any_match
from mediasyncd.paths import INTERNAL_DIR, check_rel
from mediasyncd.state.purge import Landed


class Hold(StrEnum):
    """Why an old library copy stays."""

    PRESERVED = "preserved"
    OUTSIDE = "outside_remote_folder"
    SHARED = "shared"
    SYMLINK = "symlink"
    NOT_A_FILE = "not_a_file"
    CHANGED = "changed_in_library"
    UNREADABLE = "unreadable"
    DELETE_FAILED = "delete_failed"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    Hold.PRESERVED: "matches a preserve glob",
    Hold.OUTSIDE: "not a path inside this remote's library folder (refused)",
    Hold.SHARED: "another landed file that is not expiring uses the same library copy",
    Hold.SYMLINK: "is or lies under a symlink (never followed)",
    Hold.NOT_A_FILE: "not a regular file",
    Hold.CHANGED: "changed in the library since it landed (size or mtime)",
    Hold.UNREADABLE: "cannot be inspected",
    Hold.DELETE_FAILED: "could not be deleted",
}


@dataclass(frozen=True)
class Copy:
    """One library file and the purged rows that landed it (usually one; more when content repeated)."""

    local_path: str
    rows: tuple[Landed, ...]

    @property
    def size(self) -> int:
        return self.rows[0].size

    @property
    def landed_at(self) -> float:
        return max(r.landed_at for r in self.rows)

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


def select(
    rows: Iterable[Landed], *, remote: str, preserve: tuple[str, ...], in_use: frozenset[str] = frozenset()
) -> tuple[list[Copy], list[tuple[Copy, Hold]]]:
    """Split due rows (purged, landed long enough ago) into copies to check on disk and copies held.

    `in_use`: local paths also referenced by landed rows outside `rows` (not purged, or not due yet).
    """
    grouped: dict[str, list[Landed]] = {}
    for row in rows:
        grouped.setdefault(row.local_path, []).append(row)
    due: list[Copy] = []
    held: list[tuple[Copy, Hold]] = []
    for local_path, group in grouped.items():
        copy = Copy(local_path, tuple(group))
        reason = _screen(copy, remote, preserve, in_use)
        if reason is None:
            due.append(copy)
        else:
            held.append((copy, reason))
    return due, held


def _screen(copy: Copy, remote: str, preserve: tuple[str, ...], in_use: frozenset[str]) -> Hold | None:
    if not inside_remote_folder(copy.local_path, remote):
        return Hold.OUTSIDE
    if any(any_match(preserve, r.rel) for r in copy.rows):
        return Hold.PRESERVED
    if copy.local_path in in_use:
        return Hold.SHARED
    return None


def inside_remote_folder(local_path: str, remote: str) -> bool:
    """True for a clean relative path `<remote>/...` with no `.mediasyncd` component."""
    try:
        check_rel(local_path)
    except UnsafePathError:
        return False
    parts = local_path.split("/")
    return len(parts) >= 2 and parts[0] == remote and INTERNAL_DIR not in parts
