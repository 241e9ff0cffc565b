"""Races with the purge, injected at a chosen step by wrapping a remote tool (never by timing luck): a file
rewritten between its remote hash and its deletion, a library copy deleted or edited meanwhile, rows
lost from the state DB. Nothing that was not verified may be deleted."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.hostile import exec_world, faketime_shell, faketime_swept, wrap

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4000)


def test_a_render_written_again_at_the_path_just_before_rm_survives(tmp_path: Path) -> None:
    """A generator writing the same path again right before the remote `rm` runs (after every hash and
    lstat) writes a new file: the verified one, set aside, goes; the new render stays on the remote."""
    world = exec_world(tmp_path)
    world.write("a.png", PNG)
    world.write("b.png", PNG[::-1])
    assert world.sync() == 0
    victim = world.remote_root / "a.png"
    wrap(world.bin_dir, "rm", f"printf 'new render' > '{victim}'")
    assert world.purge() == 0
    assert world.on_remote() == {"a.png": b"new render"}
    assert world.landed() == {"a.png": PNG, "b.png": PNG[::-1]}


def test_a_file_rewritten_in_place_just_before_it_is_set_aside_is_put_back(tmp_path: Path) -> None:
    """A file rewritten in place (same size and mtime, other bytes) after the plan's hash and lstat,
    right before the purge moves it aside: the check in quarantine fails, it is renamed back, untouched,
    and kept with its reason."""
    world = exec_world(tmp_path)
    world.write("a.png", PNG)
    assert world.sync() == 0
    victim = world.remote_root / "a.png"
    other = bytes(b ^ 0xFF for b in PNG)
    (tmp_path / "other.bin").write_bytes(other)
    wrap(
        world.bin_dir,
        "mv",
        f"m=$(stat -c %Y '{victim}'); cat '{tmp_path / 'other.bin'}' > '{victim}'; touch -d @$m '{victim}'",
    )
    assert world.purge() == 0
    assert world.on_remote() == {"a.png": other}
    assert world.reasons() == {"a.png": "changed_at_delete"}


def test_a_library_copy_deleted_or_edited_after_it_was_hashed_keeps_its_remote_copy(tmp_path: Path) -> None:
    """Library copies hashed when the plan was made, then deleted or edited before the deletion (here
    while the remote's lstat runs): their remote copies stay (`local_changed`); the others go."""
    world = exec_world(tmp_path)
    for name in ("gone.png", "edited.png", "fine.png"):
        world.write(name, PNG + name.encode())
    assert world.sync() == 0
    lib = world.library / "r1"
    wrap(world.bin_dir, "stat", f"rm -f '{lib / 'gone.png'}'; printf x >> '{lib / 'edited.png'}'")
    assert world.purge() == 0
    assert set(world.on_remote()) == {"gone.png", "edited.png"}
    assert world.reasons() == {
        "gone.png": "local_changed",
        "edited.png": "local_changed",
        "fine.png": "purged",
    }


def test_rows_lost_from_the_state_db_mean_nothing_is_deleted(tmp_path: Path) -> None:
    """A state DB that lost its rows (restored from an old backup, say) knows of no verified copy: the
    purge deletes nothing."""
    world = exec_world(tmp_path)
    world.write("a.png", PNG)
    world.write("b.png", PNG[::-1])
    assert world.sync() == 0
    world.sql("DELETE FROM files WHERE rel = 'a.png'")
    assert world.purge() == 0
    assert set(world.on_remote()) == {"a.png"}


def test_a_remote_clock_years_fast_does_not_make_young_files_old(tmp_path: Path) -> None:
    """The remote's shell runs ten years ahead (faketime) while its files were written by the real clock:
    a file written two minutes ago is still young and stays; a two-hour-old one goes."""
    shell = faketime_shell(tmp_path, "+3650d")
    world = exec_world(tmp_path, command=shell)
    with faketime_swept():
        remote_year = subprocess.run(
            [*shell, "-c", "date +%Y"], capture_output=True, text=True, check=True
        ).stdout
        world.write("young.png", PNG, mtime=time.time() - 120)
        world.write("old.png", PNG[::-1], mtime=time.time() - 7200)
        assert world.sync() == 0
        assert world.purge() == 0
    assert int(remote_year) >= time.gmtime().tm_year + 9  # the remote's clock really is off
    assert set(world.on_remote()) == {"young.png"}
    assert world.reasons() == {"young.png": "too_young", "old.png": "purged"}
