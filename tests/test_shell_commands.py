"""Batched shell commands (delete, rmdir, df, the doctor's survey) as pure values; the snippets are run by a real local `sh`."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from mediasyncd.sources.base import Expected
from mediasyncd.sources.commands import (
    QUARANTINE,
    batches,
    delete_command,
    emptied_dirs,
    hash_command,
    parse_deletion,
    parse_df,
    parse_hashes,
    rmdir_command,
)
from mediasyncd.sources.survey import PARENT_NAMES, parse_survey, survey_command


def sh(script: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", script], capture_output=True, check=False, timeout=10)


def test_batches_respect_the_file_count_and_keep_order() -> None:
    """25 paths in batches of at most 10 make 3 commands, in the original order."""
    paths = [f"/out/{i:03}.png" for i in range(25)]
    got = list(batches(paths, max_files=10))
    assert [len(b) for b in got] == [10, 10, 5]
    assert [p for b in got for p in b] == paths


def test_batches_respect_the_command_line_budget() -> None:
    """No batch's quoted arguments exceed the byte budget; a single huge path still gets a batch."""
    paths = ["/out/" + "x" * 100] * 50 + ["/out/" + "y" * 5000]
    got = list(batches(paths, max_bytes=1000))
    assert all(sum(len(p) + 3 for p in b) <= 1000 for b in got[:-1])
    assert got[-1] == ["/out/" + "y" * 5000]
    assert sum(len(b) for b in got) == 51


def expect(path: Path) -> Expected:
    st = path.stat()
    return Expected(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime)


@pytest.mark.parametrize("hasher", ["sha256sum", "openssl", None])
def test_delete_command_removes_awkward_names_and_reports_what_stayed(
    tmp_path: Path, hasher: str | None
) -> None:
    """Spaces, quotes, leading dashes and newlines are deleted after their check (by SHA-256, or by size
    and mtime without a hasher); a path rm cannot remove is reported as failed, an absent one as gone."""
    names = ["a b.png", "it's.png", "-rf.png", "new\nline.png", "$(touch pwned).png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x" + name.encode())
    locked = tmp_path / "locked"
    locked.mkdir()
    stuck = locked / "stuck.png"
    stuck.write_bytes(b"x")
    files = [expect(tmp_path / n) for n in names] + [expect(stuck)]
    files.append(Expected(str(tmp_path / "never-existed.png"), "0" * 64, 1, 0.0))
    locked.chmod(0o500)
    try:
        result = parse_deletion(sh(delete_command(files, hasher, "t0k")).stdout, files)
    finally:
        locked.chmod(0o700)
    assert not any((tmp_path / n).exists() for n in names)
    assert not (tmp_path / "pwned").exists()
    assert result.gone == {str(tmp_path / "never-existed.png")}
    if stuck.exists():  # root ignores directory permissions; then it goes too
        assert result.failed == {str(stuck)}
    else:
        assert str(stuck) in result.deleted
    assert result.deleted >= {str(tmp_path / n) for n in names}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["locked"] + (
        ["stuck.png"] if stuck.exists() else []
    )


@pytest.mark.parametrize("hasher", ["sha256sum", None])
def test_delete_command_puts_back_a_file_that_is_not_the_verified_version(
    tmp_path: Path, hasher: str | None
) -> None:
    """A file rewritten since it was verified (other bytes, other size) is renamed back to its path,
    untouched, and reported as changed; a symlink in its place is left alone."""
    changed = tmp_path / "changed.png"
    changed.write_bytes(b"old render")
    wanted = expect(changed)
    changed.write_bytes(b"the new render, longer")
    outside = tmp_path.parent / f"{tmp_path.name}-precious.png"
    outside.write_bytes(b"old render")
    link = tmp_path / "link.png"
    link.symlink_to(outside)
    files = [wanted, expect(outside)._replace(path=str(link))]
    result = parse_deletion(sh(delete_command(files, hasher, "t0k")).stdout, files)
    assert result.changed == {str(changed), str(link)} and not result.deleted
    assert changed.read_bytes() == b"the new render, longer"
    assert link.is_symlink() and outside.read_bytes() == b"old render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed.png", "link.png"]


def test_delete_command_never_puts_back_over_a_file_made_at_the_path_meanwhile(tmp_path: Path) -> None:
    """When the check fails and a writer has re-created the path meanwhile, the new file wins; the set
    aside one stays under its quarantine name (still on the remote), reported as changed."""
    path = tmp_path / "x.png"
    path.write_bytes(b"v1")
    wanted = expect(path)._replace(sha256="f" * 64)  # the check fails
    # A hasher that re-creates the path while the file is set aside (as a generator writing again).
    fake = tmp_path.parent / f"{tmp_path.name}-bin"
    fake.mkdir()
    (fake / "sha256sum").write_text(f'#!/bin/sh\nprintf v2 > {path}\nexec /usr/bin/sha256sum "$@"\n')
    (fake / "sha256sum").chmod(0o755)
    script = f"PATH={fake}:$PATH; " + delete_command([wanted], "sha256sum", "t0k")
    result = parse_deletion(sh(script).stdout, [wanted])
    assert result.changed == {str(path)}
    assert path.read_bytes() == b"v2"
    assert [p.read_bytes() for p in tmp_path.glob(f"{QUARANTINE}*")] == [b"v1"]


def test_emptied_dirs_are_below_the_root_deepest_first() -> None:
    """Every directory between the root and a deleted file, deepest first; never the root itself."""
    dirs = emptied_dirs("/out", ["/out/a/b/c/1.png", "/out/a/2.png", "/out/top.png", "/out/d/3.png"])
    assert dirs == ["/out/a/b/c", "/out/a/b", "/out/a", "/out/d"]
    assert emptied_dirs("/", ["/x/1.png"]) == ["/x"]
    assert emptied_dirs("/out", ["/outside/1.png"]) == []


def test_rmdir_command_removes_only_empty_directories(tmp_path: Path) -> None:
    """Nested empty directories go in one command; a directory with a file in it stays."""
    (tmp_path / "a/b/c").mkdir(parents=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep.png").write_bytes(b"x")
    dirs = emptied_dirs(str(tmp_path), [str(tmp_path / "a/b/c/x.png"), str(tmp_path / "full/y.png")])
    assert sh(rmdir_command(dirs)).returncode == 0
    assert not (tmp_path / "a").exists()
    assert (tmp_path / "full/keep.png").exists()


def test_parse_df_reads_available_bytes() -> None:
    """POSIX df -Pk: the fourth column of the last line, in KiB."""
    out = b"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 40 60 40% /\n"
    assert parse_df(out) == 60 * 1024
    assert parse_df(b"garbage") is None


def test_parse_df_of_a_real_df_matches_statvfs(tmp_path: Path) -> None:
    """The command and parser agree with os.statvfs about the same filesystem (to within 64 MiB)."""
    import os

    from mediasyncd.sources.commands import free_space_command

    got = parse_df(sh(free_space_command(str(tmp_path))).stdout)
    vfs = os.statvfs(tmp_path)
    assert got is not None
    assert abs(got - vfs.f_bavail * vfs.f_frsize) < 64 << 20


def test_survey_command_handles_awkward_root_names_and_caps_the_parent_listing(tmp_path: Path) -> None:
    """Roots with spaces, quotes and `$` are surveyed; a missing root's parent lists at most
    PARENT_NAMES names in sorted order and counts the rest."""
    odd = tmp_path / "it's a $HOME dir"
    odd.mkdir()
    for i in range(PARENT_NAMES + 5):
        (tmp_path / f"n{i:03}").touch()
    missing = str(tmp_path / "no such" / "outputs")
    survey = parse_survey(sh(survey_command([str(odd), missing])).stdout, [str(odd), missing])
    found, gone = survey.roots
    assert (found.state, found.dirs, found.writable) == ("dir", 1, True)
    assert gone.state == "missing" and gone.parent == str(tmp_path)
    assert gone.names[0] == "it's a $HOME dir/" and len(gone.names) == PARENT_NAMES and gone.more == 6


def test_parse_survey_skips_unknown_and_cut_records() -> None:
    """Unknown tags, indexes past the roots and a record cut short leave the rest intact; a root
    without any record counts as missing."""
    out = b"python\x003.12.1\x00bogus\x00dir\x005\x00dir\x000\x00dirs\x000\x00 12\x00dirs\x001"
    survey = parse_survey(out, ["/a", "/b"])
    assert survey.python == "3.12.1" and survey.inotify_watches is None
    assert [(r.state, r.dirs, r.writable) for r in survey.roots] == [
        ("dir", 12, False),
        ("missing", None, None),
    ]


def test_delete_command_never_enters_a_directory_swapped_for_a_symlink_out_of_the_root(
    tmp_path: Path,
) -> None:
    """A directory below the root replaced by a symlink to a folder outside it: the file there, even with
    the verified bytes, is neither moved nor deleted (reported as changed); the root itself may be a
    symlink."""
    real_root = tmp_path / "real"
    (real_root / "ok").mkdir(parents=True)
    (real_root / "ok" / "a.png").write_bytes(b"keep going")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.png").write_bytes(b"twin")
    (real_root / "sub").symlink_to(outside)
    root = tmp_path / "root-link"
    root.symlink_to(real_root)
    files = [expect(real_root / "ok" / "a.png")._replace(path=str(root / "ok" / "a.png"))]
    files.append(expect(outside / "b.png")._replace(path=str(root / "sub" / "b.png")))
    result = parse_deletion(sh(delete_command(files, "sha256sum", "t0k", [str(root)])).stdout, files)
    assert result.deleted == {files[0].path} and result.changed == {files[1].path}
    assert sorted(p.name for p in outside.iterdir()) == ["b.png"]


@pytest.mark.parametrize("hasher", ["sha256sum", "openssl"])
def test_hashes_of_names_with_backslashes_come_back_by_path(tmp_path: Path, hasher: str) -> None:
    """Names that GNU sha256sum prints escaped (a backslash before `n`, a doubled backslash, a carriage
    return) and openssl prints as they are: every file's hash comes back under its own path."""
    root = tmp_path / "out"
    root.mkdir()
    names = ["x\\naples.jpg", "two\\\\.png", "c\rr.png", "plain.png"]
    paths = []
    for i, name in enumerate(names):
        (root / name).write_bytes(b"v%d" % i)
        paths.append(f"{root}/{name}")
    result = sh(hash_command(hasher, paths, [str(root)]))
    assert parse_hashes(result.stdout, paths, [str(root)]) == {
        path: hashlib.sha256(b"v%d" % i).hexdigest() for i, path in enumerate(paths)
    }
