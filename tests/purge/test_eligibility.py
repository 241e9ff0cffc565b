"""The safety rule's two steps, one condition at a time (pure functions, no server)."""

from __future__ import annotations

from dataclasses import replace

from mediasyncd.purge.eligibility import Local, Reason, RemoteHash, Rules, Seen, confirm, screen
from mediasyncd.state import FileState
from mediasyncd.state.purge import Tracked

SHA = "a" * 64
ROW = Tracked(
    1, "/out", "txt2img/00001.png", 1000, 1_700_000_000.25, FileState.LANDED, SHA, "r1/txt2img/00001.png"
)
SAME = Seen(1000, 1_700_000_000.25)
RULES = Rules(older_than=3600.0)


def test_an_old_verified_unchanged_file_passes_screening() -> None:
    """Landed, verified, unchanged and old enough: nothing in the cheap checks keeps it."""
    assert screen(ROW, SAME, age=7200, rules=RULES, local_missing=False) is None


def test_processed_files_are_as_eligible_as_landed_ones() -> None:
    """Eligibility depends on the verified landing, never on the media pipeline."""
    assert (
        screen(replace(ROW, state=FileState.PROCESSED), SAME, age=7200, rules=RULES, local_missing=False)
        is None
    )


def test_unlanded_states_are_not_verified() -> None:
    """seen, transferring and failed rows are never purged, however old."""
    for state in (FileState.SEEN, FileState.TRANSFERRING, FileState.FAILED):
        row = replace(ROW, state=state)
        assert screen(row, SAME, age=1e9, rules=RULES, local_missing=False) is Reason.NOT_VERIFIED


def test_a_landed_row_without_a_recorded_hash_is_not_verified() -> None:
    """Without the SHA-256 verified at landing there is nothing to compare with."""
    row = replace(ROW, sha256=None)
    assert screen(row, SAME, age=7200, rules=RULES, local_missing=False) is Reason.NOT_VERIFIED


def test_preserve_globs_follow_the_spec_glob_rules() -> None:
    """A glob with '/' matches the path under the root; without '/' it matches the file name."""
    for globs in (("txt2img/**",), ("*.png",), ("txt2img/0000?.png",)):
        rules = Rules(3600.0, preserve=globs)
        assert screen(ROW, SAME, age=7200, rules=rules, local_missing=False) is Reason.PRESERVED
    rules = Rules(3600.0, preserve=("img2img/**", "*.webp"))
    assert screen(ROW, SAME, age=7200, rules=rules, local_missing=False) is None


def test_a_changed_size_or_mtime_keeps_the_file() -> None:
    """The remote must still hold the version that landed."""
    for seen in (Seen(1001, SAME.mtime), Seen(1000, SAME.mtime + 2)):
        assert screen(ROW, seen, age=7200, rules=RULES, local_missing=False) is Reason.CHANGED_ON_REMOTE


def test_whole_second_mtimes_from_sftp_match_their_fraction() -> None:
    """An SFTP listing's whole-second mtime is the same version as find's fractional one."""
    assert screen(ROW, Seen(1000, 1_700_000_000.0), age=7200, rules=RULES, local_missing=False) is None


def test_young_files_are_kept_as_too_young() -> None:
    """Age below older_than keeps the file (it may still be chosen for free space)."""
    assert screen(ROW, SAME, age=3599, rules=RULES, local_missing=False) is Reason.TOO_YOUNG


def test_a_copy_deleted_from_the_library_keeps_the_remote_one_by_default() -> None:
    """A missing local copy means "not safe" unless the user asks otherwise."""
    assert screen(ROW, SAME, age=7200, rules=RULES, local_missing=True) is Reason.MISSING_LOCALLY
    assert confirm(ROW, Local.MISSING, SHA, rules=RULES) is Reason.MISSING_LOCALLY


def test_include_deleted_locally_lets_missing_copies_go_when_the_remote_matches() -> None:
    """--include-deleted-locally: a missing copy is fine, a remote hash mismatch still is not."""
    rules = Rules(3600.0, include_deleted_locally=True)
    assert screen(ROW, SAME, age=7200, rules=rules, local_missing=True) is None
    assert confirm(ROW, Local.MISSING, SHA, rules=rules) is None
    assert confirm(ROW, Local.MISSING, "b" * 64, rules=rules) is Reason.REMOTE_HASH_MISMATCH


def test_a_local_copy_that_rehashes_differently_is_corrupt() -> None:
    """Same size and mtime are not enough: the local bytes are re-hashed now."""
    assert confirm(ROW, "c" * 64, SHA, rules=RULES) is Reason.CORRUPT_LOCALLY


def test_an_unreadable_local_copy_keeps_the_file() -> None:
    """A local copy that cannot be read proves nothing."""
    assert confirm(ROW, Local.UNREADABLE, SHA, rules=RULES) is Reason.LOCAL_UNREADABLE


def test_the_remote_hash_must_match_where_the_remote_can_hash() -> None:
    """A remote sha256sum that differs (or is missing) keeps the file; a remote that cannot hash relies
    on size and mtime."""
    assert confirm(ROW, SHA, "d" * 64, rules=RULES) is Reason.REMOTE_HASH_MISMATCH
    assert confirm(ROW, SHA, RemoteHash.UNREADABLE, rules=RULES) is Reason.REMOTE_UNREADABLE
    assert confirm(ROW, SHA, RemoteHash.UNSUPPORTED, rules=RULES) is None
    assert confirm(ROW, SHA, SHA, rules=RULES) is None
