"""The safety rule, as pure functions: may this remote file be deleted, and if not, why not.

A remote file may go only if all of these hold:
- its row is landed and verified (landed or processed, with the SHA-256 verified at landing);
- it matches no `preserve` glob;
- the remote still has the version that landed (same size and mtime);
- it is older than `older_than` by remote mtime, or it was chosen to free space (`min_free`);
- the local copy exists and re-hashes now to the recorded SHA-256 (or the user asked to purge files
  they deleted from the library, `--include-deleted-locally`, and the copy is absent);
- the remote's own SHA-256 of it equals the recorded one, where the remote can hash;
- every workflow stage in `[workflow] purge_after` is verified for it (`waiting`: the first that is not).

Checks come in two steps: `screen` (cheap: DB row, listing, age, globs) and `confirm` (after hashing).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mediasyncd.globs import any_match
from mediasyncd.sources import same_version
from mediasyncd.state import FileState
from mediasyncd.state.purge import Tracked

VERIFIED_STATES = frozenset({FileState.LANDED, FileState.PROCESSED})


class Reason(StrEnum):
    """Why a file stays on the remote."""

    NOT_VERIFIED = "not_verified"
    PRESERVED = "preserved"
    CHANGED_ON_REMOTE = "changed_on_remote"
    TOO_YOUNG = "too_young"
    MISSING_LOCALLY = "missing_locally"
    LOCAL_UNREADABLE = "local_unreadable"
    CORRUPT_LOCALLY = "corrupt_locally"
    REMOTE_HASH_MISMATCH = "remote_hash_mismatch"
    REMOTE_UNREADABLE = "remote_unreadable"
    DELETE_FAILED = "delete_failed"
    CHANGED_AT_DELETE = "changed_at_delete"
    LOCAL_CHANGED = "local_changed"
    WAITING_ARCHIVE = "waiting_for_archive"
    WAITING_COMPRESS = "waiting_for_compress"
    WAITING_SYNCTHING = "waiting_for_syncthing"

    @classmethod
    def waiting_for(cls, stage: str) -> Reason:
        return cls(f"waiting_for_{stage}")

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    Reason.NOT_VERIFIED: "not landed and verified yet",
    Reason.PRESERVED: "matches a preserve glob",
    Reason.CHANGED_ON_REMOTE: "changed on the remote since it landed (size or mtime)",
    Reason.TOO_YOUNG: "younger than older_than",
    Reason.MISSING_LOCALLY: "deleted from the library (use --include-deleted-locally to purge)",
    Reason.LOCAL_UNREADABLE: "local copy cannot be read",
    Reason.CORRUPT_LOCALLY: "local copy's SHA-256 differs from the one verified at landing",
    Reason.REMOTE_HASH_MISMATCH: "remote sha256sum differs from the one verified at landing",
    Reason.REMOTE_UNREADABLE: "remote sha256sum could not read it",
    Reason.DELETE_FAILED: "the remote refused to delete it",
    Reason.CHANGED_AT_DELETE: "not the verified version when set aside for deletion: put back",
    Reason.LOCAL_CHANGED: "the library copy changed or vanished after it was hashed",
    Reason.WAITING_ARCHIVE: "waiting for archive (workflow.purge_after)",
    Reason.WAITING_COMPRESS: "waiting for compress (workflow.purge_after)",
    Reason.WAITING_SYNCTHING: "waiting for syncthing (workflow.purge_after)",
}


class Local(StrEnum):
    """The local copy's state when it has no digest to show."""

    MISSING = "missing"
    UNREADABLE = "unreadable"


class RemoteHash(StrEnum):
    """The remote's answer when it has no digest to show."""

    UNSUPPORTED = "unsupported"  # the remote cannot hash at all (no shell or no sha256sum)
    UNREADABLE = "unreadable"  # it can, but sha256sum printed nothing for this file


@dataclass(frozen=True)
class Seen:
    """The same file in this run's listing of the remote."""

    size: int
    mtime: float


@dataclass(frozen=True)
class Rules:
    older_than: float
    preserve: tuple[str, ...] = ()
    min_free: int = 0
    include_deleted_locally: bool = False


def screen(
    row: Tracked, seen: Seen, *, age: float, rules: Rules, local_missing: bool, waiting: str | None = None
) -> Reason | None:
    """The cheap checks, in order; None when the file may be purged once hashes confirm it.

    TOO_YOUNG comes last so that a young file screened out only by its age can still be chosen
    to free space.
    """
    if row.state not in VERIFIED_STATES or not row.sha256 or not row.local_path:
        return Reason.NOT_VERIFIED
    if any_match(rules.preserve, row.rel):
        return Reason.PRESERVED
    if not same_version(row.size, row.mtime, seen.size, seen.mtime):
        return Reason.CHANGED_ON_REMOTE
    if local_missing and not rules.include_deleted_locally:
        return Reason.MISSING_LOCALLY
    if waiting is not None:
        return Reason.waiting_for(waiting)
    if age < rules.older_than:
        return Reason.TOO_YOUNG
    return None


def confirm(row: Tracked, local: str | Local, remote: str | RemoteHash, *, rules: Rules) -> Reason | None:
    """The hash checks; None when the file is safe to delete.

    `local` is the local copy's SHA-256 computed now (or why there is none); `remote` the remote's
    sha256sum of the file (or why there is none).
    """
    if local is Local.MISSING:
        if not rules.include_deleted_locally:
            return Reason.MISSING_LOCALLY
    elif local is Local.UNREADABLE:
        return Reason.LOCAL_UNREADABLE
    elif local != row.sha256:
        return Reason.CORRUPT_LOCALLY
    if remote is RemoteHash.UNREADABLE:
        return Reason.REMOTE_UNREADABLE
    if remote is not RemoteHash.UNSUPPORTED and remote != row.sha256:
        return Reason.REMOTE_HASH_MISMATCH
    return None
