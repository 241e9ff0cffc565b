"""The minimal-userland commands (busybox) and their parsers: what they print, run by a real busybox
`sh`, and what garbage or crafted output turns into (nothing trusted, nothing outside the roots)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mediasyncd.sources.portable import (
    parse_stat,
    parse_stat_listing,
    read_script,
    stat_command,
    stat_listing_command,
)


def busybox_sh(script: str) -> bytes:
    return subprocess.run(["busybox", "sh", "-c", script], capture_output=True, check=True).stdout


def test_stat_listing_of_a_real_tree_lists_files_and_rejects_newline_names(tmp_path: Path) -> None:
    """Files at any depth with size and whole-second mtime; a newline name is rejected with its bytes;
    symlinks are not listed; a missing root is named."""
    root = tmp_path / "r"
    (root / "d").mkdir(parents=True)
    (root / "a.png").write_bytes(b"aaa")
    (root / "d" / "$(x) ;b.png").write_bytes(b"b")
    (root / "new\nline.png").write_bytes(b"n")
    (root / "link.png").symlink_to("/etc/passwd")
    os.utime(root / "a.png", (1_700_000_000, 1_700_000_000))
    gone = str(tmp_path / "gone")
    listing = parse_stat_listing(busybox_sh(stat_listing_command([str(root), gone])), [str(root), gone])
    got = {e.rel: (e.size, e.mtime) for e in listing.entries}
    assert got.keys() == {"a.png", "d/$(x) ;b.png"}
    assert got["a.png"] == (3, 1_700_000_000.0)
    assert [r.raw for r in listing.rejected] == [b"new\nline.png"]
    assert listing.missing_roots == [gone] and listing.remote_now is not None


def test_garbage_and_crafted_lines_never_become_entries_outside_a_root() -> None:
    """Lines that do not parse are dropped; a path outside the root, or one climbing out with `..`, is
    never an entry; unknown root indexes are ignored."""
    out = (
        b"now 1700000000\nroot 0\n"
        b"12 1700000000 /srv/out/ok.png\n"
        b"12 1700000000 /etc/shadow\n"
        b"5 1700000000 /srv/out/../../etc/passwd\n"
        b"x y /srv/out/bad.png\n"
        b"\x00\xff garbage\n"
        b"root 7\n"
        b"3 1700000000 /srv/out/still-root-0.png\n"
        b"bad 0 zz\n"
    )
    listing = parse_stat_listing(out, ["/srv/out"])
    assert [e.rel for e in listing.entries] == ["ok.png", "still-root-0.png"]
    assert [r.raw for r in listing.rejected] == [b"../../etc/passwd"]


def test_stat_command_reports_regular_files_only(tmp_path: Path) -> None:
    """Size and mtime by path for regular files; a symlink or a missing path is absent."""
    (tmp_path / "f").write_bytes(b"12345")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    files = [(str(tmp_path / n), 5, 0.0) for n in ("f", "l", "missing")]
    got = parse_stat(busybox_sh(stat_command([f[0] for f in files])), files)
    assert list(got) == [str(tmp_path / "f")] and got[str(tmp_path / "f")][0] == 5


def test_parse_stat_ignores_garbage() -> None:
    """Out-of-range indexes and non-numbers are dropped."""
    files = [("/a", 1, 0.0)]
    assert parse_stat(b"0 1 2\n9 1 2\nx 1 2\n0 1\n", files) == {"/a": (1, 2.0)}


def test_read_script_answers_m_for_a_symlink_and_x_then_bytes_from_the_offset(tmp_path: Path) -> None:
    """The first byte tells a file (X, then its bytes from `offset`) from a gone one or a symlink (M)."""
    (tmp_path / "f").write_bytes(b"0123456789")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    assert busybox_sh(read_script(str(tmp_path / "f"), 4)) == b"X456789"
    assert busybox_sh(read_script(str(tmp_path / "l"), 0)) == b"M"
    assert busybox_sh(read_script(str(tmp_path / "nope; rm -rf /"), 0)) == b"M"
