"""Pure parts: globs, listing parser, diff, settle, names, conflict naming, backoff, sha256sum parsing."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediasyncd.backoff import Backoff, jittered
from mediasyncd.errors import UnsafePathError
from mediasyncd.globs import PathFilter, glob_matches
from mediasyncd.paths import check_rel, conflict_name, decode_rel, decode_rels
from mediasyncd.sources.commands import parse_sha256sum
from mediasyncd.sources.listing import RemoteEntry, find_command, parse_find, same_version
from mediasyncd.state import FileRow, FileState, KnownFiles
from mediasyncd.transfer.adopt import same_stamp
from mediasyncd.transfer.index import diff
from mediasyncd.watchers.poll import SettleTracker


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("*.png", "a/b/c.png", True),  # no '/': matches the file name anywhere
        ("*.png", "a/b/c.jpg", False),
        ("grids/*", "grids/x.png", True),
        ("grids/*", "grids/sub/x.png", False),  # '*' stays within one directory
        ("grids/**", "grids/sub/x.png", True),  # '**' crosses directories
        ("**/tmp/*.png", "a/b/tmp/x.png", True),
        ("**/tmp/*.png", "tmp/x.png", True),
        ("txt2img-images/*/0000?-*.png", "txt2img-images/2026-11-21/00001-42.png", True),
    ],
)
def test_glob_rules(glob: str, path: str, hit: bool) -> None:
    """SPEC §3.1 glob semantics."""
    assert glob_matches(glob, path) is hit


def test_path_filter_include_then_exclude() -> None:
    """A path must match an include and no exclude."""
    f = PathFilter(("*.png",), ("grids/**",))
    assert f.accepts("a.png") and not f.accepts("grids/a.png") and not f.accepts("a.txt")


def test_find_output_is_parsed_and_unsafe_names_rejected() -> None:
    """Entries carry root, rel, size and mtime; control characters and bad UTF-8 land in `rejected`."""
    out = (
        b"now\x001700000100.250000000\x00"
        b"missing\x00/gone\x00"
        b"root\x00/r\x00"
        b"12\x001700000000.2500000000\x00a/b.png\x00"
        b"1\x001700000000.0\x00bad\nname.png\x00"
        b"1\x001700000000.0\x00\xff.png\x00"
        b"root\x00/not-asked\x00"
        b"1\x001700000000.0\x00x.png\x00"
    )
    listing = parse_find(out, ["/r", "/gone"])
    assert listing.remote_now == 1700000100.25
    assert parse_find(b"now\x001700000100.%N\x00", ["/r"]).remote_now == 1700000100  # busybox date
    assert listing.missing_roots == ["/gone"]
    assert listing.entries == [RemoteEntry("/r", "a/b.png", 12, 1700000000.25)]
    assert [r.reason for r in listing.rejected] == [
        "name contains control character '\\n'",
        "name is not valid UTF-8",
    ]


def test_find_command_lists_each_root_under_its_own_name(tmp_path: Path) -> None:
    """Run by a real `sh` and GNU find: files under each root (one with a space and a quote, one a
    symlink to a folder) with their sizes and mtimes, a file named like a tag, a missing root named."""
    import subprocess

    first, second = tmp_path / "it's here", tmp_path / "real"
    (first / "sub").mkdir(parents=True)
    second.mkdir()
    (first / "sub" / "a.png").write_bytes(b"a" * 7)
    (first / "root").write_bytes(b"")  # a name that is also a tag
    (second / "b.png").write_bytes(b"b" * 3)
    (tmp_path / "link").symlink_to(second)
    roots = [str(first), str(tmp_path / "link"), str(tmp_path / "gone")]
    out = subprocess.run(["sh", "-c", find_command(roots)], capture_output=True, check=True).stdout
    listing = parse_find(out, roots)
    got = sorted((e.root, e.rel, e.size) for e in listing.entries)
    assert got == [(roots[0], "root", 0), (roots[0], "sub/a.png", 7), (roots[1], "b.png", 3)]
    mtime = next(e.mtime for e in listing.entries if e.rel == "sub/a.png")
    assert mtime == pytest.approx((first / "sub" / "a.png").stat().st_mtime, abs=1e-6)
    assert listing.missing_roots == [roots[2]] and listing.remote_now is not None


def test_find_command_quotes_roots() -> None:
    """Roots with spaces or quotes are shell-quoted."""
    assert "'/work space/it'\"'\"'s'" in find_command(["/work space/it's"])


@pytest.mark.parametrize(
    "rel", ["../x", "a/../b", "/abs", "a//b", "", "a/./b", "tab\there", "x/" + "é" * 128, "..", "a/"]
)
def test_unsafe_relative_paths(rel: str) -> None:
    """Traversal, absolute, empty components and control characters are refused."""
    with pytest.raises(UnsafePathError):
        check_rel(rel)


def test_legal_awkward_names_are_accepted() -> None:
    """Spaces, leading dashes, CJK and emoji are fine."""
    for rel in ["with space.png", "-x.png", "日本/画像.png", "🎨/😀.webp", "..weird..png"]:
        assert decode_rel(rel.encode()) == rel


# Pieces a hostile or merely odd remote name is made of: separators, dot components, controls (C0, DEL,
# C1 as text and as bytes), invalid UTF-8, characters of 1 to 4 bytes, components near 255 bytes.
_NAME_PIECES = st.sampled_from(
    [b"/", b"//", b".", b"..", b"./", b"../", b"/.", b"/..", b"a", b"x.png", b"\n", b"\x01", b"\x7f",
     "\x85".encode(), "\xa9".encode(), b"\xc2", b"\xff", "é".encode(), "画".encode(), "😀".encode(),
     b"a" * 255, b"a" * 256, "é".encode() * 127, "é".encode() * 128, b" ", b"-"]
)  # fmt: skip


def _decoded_one_by_one(raws: list[bytes]) -> list[str] | None:
    try:
        return [decode_rel(raw) for raw in raws]
    except UnsafePathError:
        return None


@settings(max_examples=600, deadline=None)
@given(st.lists(st.lists(_NAME_PIECES, max_size=6).map(b"".join), min_size=1, max_size=5))
def test_names_checked_together_pass_exactly_when_each_passes_alone(raws: list[bytes]) -> None:
    """`decode_rels` (a whole listing's names in a few scans) accepts a list exactly when `decode_rel`
    accepts every name in it, and decodes them alike: the fast path never lets an unsafe name by."""
    assert decode_rels(raws) == _decoded_one_by_one(raws)


def test_a_listing_with_one_unsafe_name_keeps_the_others() -> None:
    """The names of a root are checked together; one unsafe name among them is set aside with its reason,
    the rest are listed as they would be alone."""
    records = [
        b"1\x001700000000.5\x00a.png",
        b"2\x001700000000.5\x00b/../c.png",
        b"3\x001700000000.5\x00d.png",
    ]
    listing = parse_find(b"root\x00/r\x00" + b"\x00".join(records) + b"\x00", ["/r"])
    assert [(e.rel, e.size) for e in listing.entries] == [("a.png", 1), ("d.png", 3)]
    assert [r.reason for r in listing.rejected] == ["path component '..' is not allowed"]
    assert type(listing.entries[0]) is RemoteEntry and listing.entries[0].key == ("/r", "a.png")
    bad_size = parse_find(b"root\x00/r\x00x\x001.0\x00a.png\x002\x001.0\x00b.png\x00", ["/r"])
    assert [e.rel for e in bad_size.entries] == ["b.png"]
    assert [r.reason for r in bad_size.rejected] == ["unparseable size or mtime"]


def test_conflict_name_is_deterministic_and_keeps_the_extension() -> None:
    """stem~<sha8>.ext next to the original."""
    assert conflict_name("r/a/00001-42.png", "abcdef0123456789") == "r/a/00001-42~abcdef01.png"
    assert conflict_name("r/noext", "abcdef0123") == "r/noext~abcdef01"


def row(i: int, rel: str, size: int, mtime: float, state: str) -> FileRow:
    return FileRow(i, "r", "/root", rel, size, mtime, FileState(state))


def test_diff_writes_nothing_for_unchanged_files() -> None:
    """A listing identical to the DB yields an empty diff."""
    known = KnownFiles.build("r", [], [row(1, "a", 5, 10.5, "landed")])
    assert diff(known, [RemoteEntry("/root", "a", 5, 10.5)]).empty


def test_diff_new_changed_and_vanished() -> None:
    """New files are added, a changed landed file is retired and re-added, vanished unlanded rows forgotten."""
    rows = [
        row(1, "landed", 5, 10.0, "landed"),
        row(2, "gone", 5, 10.0, "seen"),
        row(3, "kept", 5, 10.0, "landed"),
    ]
    known = KnownFiles.build("r", [], rows)
    d = diff(known, [RemoteEntry("/root", "landed", 6, 11.0), RemoteEntry("/root", "new", 1, 1.0)])
    assert [n.rel for n in d.new] == ["landed", "new"]
    assert d.retire == [1] and d.forget == [2]


def test_whole_second_mtimes_match_their_fraction() -> None:
    """SFTP v3 reports whole seconds; find reports fractions: the same file is the same version."""
    assert same_version(5, 100.0, 5, 100.75) and not same_version(5, 100.25, 5, 100.75)


def test_settle_by_stability_and_by_remote_clock() -> None:
    """A file is ready once unchanged for `settle` seconds, or at once when already old by the remote clock."""
    t = SettleTracker(settle=5)
    fresh = RemoteEntry("/r", "f", 10, 1000.0)
    assert t.observe([fresh], now=0, remote_now=1001) == set()
    assert t.next_in == pytest.approx(4.0)
    assert t.observe([fresh], now=3, remote_now=1004) == set()
    assert t.observe([fresh], now=6, remote_now=1007) == {("/r", "f")}
    grown = RemoteEntry("/r", "f", 20, 1006.5)
    assert t.observe([grown], now=7, remote_now=1008) == set()  # it changed: wait again
    old = RemoteEntry("/r", "o", 1, 900.0)
    assert t.observe([old], now=8, remote_now=1009) == {("/r", "o")}


def test_backoff_is_capped_exponential_with_jitter() -> None:
    """Delays grow by doubling, stay within [ceiling/2, ceiling] and never exceed the cap."""
    b = Backoff(base=1, cap=60)
    rng = random.Random(1)
    delays = [b.delay(n, rng) for n in range(12)]
    for n, d in enumerate(delays):
        ceiling = min(60, 2**n)
        assert ceiling / 2 <= d <= ceiling
    assert max(delays) <= 60


def test_reconcile_intervals_are_jittered_so_remotes_drift_apart() -> None:
    """50 remotes started together would list together every interval; with ±10 % they spread out."""
    rng = random.Random(2)
    spread = [jittered(600.0, rng) for _ in range(50)]
    assert all(540.0 <= s <= 660.0 for s in spread)
    assert max(spread) - min(spread) > 60.0


def test_sha256sum_output_including_escaped_names() -> None:
    """Lines map path -> hex; a backslash-escaped line (name with a backslash) is unescaped."""
    h = "a" * 64
    out = f"{h}  /r/a b.png\n\\{h}  /r/back\\\\slash.png\n".encode()
    assert parse_sha256sum(out) == {"/r/a b.png": h, "/r/back\\slash.png": h}


def test_byte_budget_lets_small_files_share_and_two_big_ones_overlap() -> None:
    """Transfers start while their bytes fit the budget; a file larger than half of it counts as half,
    so two big files run side by side (one's start-up hides behind the other's data) and a third waits."""
    import asyncio

    from mediasyncd.transfer.budget import ByteBudget

    async def scenario() -> list[str]:
        budget = ByteBudget(100)
        events: list[str] = []
        a = await budget.acquire(60)
        b = await budget.acquire(40)
        big1 = asyncio.ensure_future(budget.acquire(500))  # counts as 50: waits for room
        await asyncio.sleep(0.01)
        events.append(f"big1 waiting={not big1.done()}")
        await budget.release(a)
        taken1 = await big1
        big2 = asyncio.ensure_future(budget.acquire(500))
        big3 = asyncio.ensure_future(budget.acquire(500))
        await asyncio.sleep(0.01)
        events.append(f"big2 waiting={not big2.done()} big3 waiting={not big3.done()}")
        await budget.release(b)
        taken2 = await big2
        await asyncio.sleep(0.01)
        events.append(f"took {taken1}+{taken2}, used {budget.used}, big3 waiting={not big3.done()}")
        await budget.release(taken1)
        await big3
        events.append(f"big3 started, used {budget.used}")
        return events

    assert asyncio.run(scenario()) == [
        "big1 waiting=True",
        "big2 waiting=True big3 waiting=True",
        "took 50+50, used 100, big3 waiting=True",
        "big3 started, used 100",
    ]


def test_openssl_dgst_output_is_parsed() -> None:
    """`openssl dgst -sha256 -r` prints `<hex> *<path>`; names with spaces and backslashes survive."""
    h = "b" * 64
    out = f"{h} */r/a b.png\n{h} */r/x\\y.png\n".encode()
    assert parse_sha256sum(out) == {"/r/a b.png": h, "/r/x\\y.png": h}


def test_diff_leaves_rows_in_transfer_alone() -> None:
    """A file being transferred that changes or vanishes is not replaced mid-flight (its transfer notices)."""
    known = KnownFiles.build("r", [], [row(1, "busy", 5, 10.0, "seen"), row(2, "gone", 5, 10.0, "seen")])
    d = diff(known, [RemoteEntry("/root", "busy", 9, 12.0)], busy={1, 2})
    assert d.empty


def test_an_adoption_candidate_has_the_remote_size_and_its_mtime_within_two_seconds() -> None:
    """rsync -a keeps mtimes; FAT rounds them to 2 s, SFTP v3 to whole seconds: all are candidates."""
    assert same_stamp(100, 1_700_000_001.75, 100, 1_700_000_001.75)
    assert same_stamp(100, 1_700_000_001.75, 100, 1_700_000_000.0)  # FAT
    assert same_stamp(100, 1_700_000_001.75, 100, 1_700_000_001.0)  # whole seconds
    assert not same_stamp(100, 1_700_000_001.75, 101, 1_700_000_001.75)
    assert not same_stamp(100, 1_700_000_001.75, 100, 1_700_000_004.0)


def test_diff_of_the_pending_part_of_a_listing_keeps_what_the_whole_listing_shows() -> None:
    """Given only the entries not landed in this version, the diff compares those, and an unlanded row
    listed in the whole listing is not taken for vanished; one listed nowhere is."""
    rows = [
        row(1, "landed", 5, 10.0, "landed"),
        row(2, "waiting", 5, 10.0, "failed"),
        row(3, "gone", 5, 10.0, "seen"),
    ]
    known = KnownFiles.build("r", [], rows)
    listing = [RemoteEntry("/root", "landed", 5, 10.0), RemoteEntry("/root", "waiting", 5, 10.0)]
    part = [RemoteEntry("/root", "new", 1, 1.0)]
    d = diff(known, part, listing=[*listing, *part])
    assert [n.rel for n in d.new] == ["new"] and d.forget == [3] and not d.retire
    assert diff(known, part).forget == [2, 3]  # without the whole listing, only `part` was listed


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=["a", "é", ".", "/", "\x01", "\x85", "\x7f", " "], max_size=12))
def test_check_rel_refuses_exactly_the_names_its_rules_name(rel: str) -> None:
    """The one-search fast path refuses what the rules say and nothing else: empty or absolute, a
    control character, or an empty, '.' or '..' component."""
    parts = rel.split("/")
    unsafe = (
        not rel
        or rel.startswith("/")
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in rel)
        or any(p in ("", ".", "..") for p in parts)
    )
    if unsafe:
        with pytest.raises(UnsafePathError):
            check_rel(rel)
    else:
        check_rel(rel)


def test_check_rel_refuses_a_long_component_and_allows_a_long_path() -> None:
    check_rel("/".join(["d" * 200] * 8))
    with pytest.raises(UnsafePathError, match="longer than 255 bytes"):
        check_rel("a/" + "é" * 128)


def test_a_row_in_another_state_keeps_every_other_field() -> None:
    """`with_state` is `dataclasses.replace(row, state=...)`, field for field."""
    row = FileRow(7, "r", "/root", "a/b.png", 11, 1.5, FileState.FAILED, 3, 9.5, "ab", "l/b.png", "p", 2.5)
    moved = row.with_state(FileState.TRANSFERRING)
    assert moved == dataclasses.replace(row, state=FileState.TRANSFERRING)
    assert [
        f.name for f in dataclasses.fields(FileRow) if getattr(moved, f.name) != getattr(row, f.name)
    ] == ["state"]


def test_sha256sum_escapes_are_read_left_to_right() -> None:
    """GNU sha256sum (coreutils 9) prints a name with a backslash, a newline or a carriage return escaped
    on a line that starts with a backslash; a backslash followed by `n` in the name itself stays that (an
    unescaping of `\\n` before `\\\\` made it a newline, so the file never verified)."""
    h = "c" * 64
    out = f"\\{h}  /r/x\\\\naples.jpg\n\\{h}  /r/c\\rr.png\n\\{h}  /r/two\\\\\\\\.png\n".encode()
    assert parse_sha256sum(out) == {"/r/x\\naples.jpg": h, "/r/c\rr.png": h, "/r/two\\\\.png": h}
