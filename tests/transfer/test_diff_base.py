"""The diff base (state/known.py): what the state DB holds, kept in ~40 bytes per landed file."""

from __future__ import annotations

import random
import sqlite3
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mediasyncd.sources import same_version
from mediasyncd.state import WAITING, FileRow, FileState, KnownFiles, LandedFile, NewFile, Store
from mediasyncd.state.known import key_digest

STATES = [FileState.SEEN, FileState.TRANSFERRING, FileState.FAILED, FileState.LANDED, FileState.PROCESSED]


def row(file_id: int, rel: str, state: FileState, size: int = 10, mtime: float = 100.5) -> FileRow:
    return FileRow(file_id, "r", "/root", rel, size, mtime, state, attempts=2 if state == "failed" else 0)


async def test_the_store_loads_landed_files_as_columns_and_the_rest_whole(tmp_path: Path) -> None:
    """Landed and processed files come back as id, size and mtime; unlanded rows whole; purged and
    retired rows not at all."""
    store = Store(tmp_path / "state.db")
    await store.open()
    try:
        rows = await store.add_seen("r", [NewFile("/root", f"{i}.png", 10 + i, 100.5 + i) for i in range(6)])
        await store.mark_landed([LandedFile(r, "ab" * 32, f"r/{r.rel}", adopted=True) for r in rows[:4]])
        await store.mark_failed(rows[4], "boom", 0.0, None)
        (newer,) = await store.add_seen("r", [NewFile("/root", "3.png", 99, 300.0)], [rows[3].id])
        known = await store.current_files("r")
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE files SET state = 'purged' WHERE rel = '2.png'")
        conn.execute("UPDATE files SET state = 'processed' WHERE rel = '1.png'")
    landed = known[("/root", "0.png")]
    assert (landed.id, landed.size, landed.mtime, landed.state) == (rows[0].id, 10, 100.5, FileState.LANDED)
    assert landed.sha256 is None and landed.local_path is None
    assert known[("/root", "3.png")] == newer  # the new version, not the retired one
    failed = known[("/root", "4.png")]
    assert failed.state == FileState.FAILED and failed.attempts == 1
    assert known[("/root", "5.png")].state == FileState.SEEN
    assert len(known) == 6 and {r.rel for r in known.unlanded()} == {"3.png", "4.png", "5.png"}
    reopened = Store(tmp_path / "state.db")
    await reopened.open()
    try:
        again = await reopened.current_files("r")
    finally:
        await reopened.close()
    assert ("/root", "2.png") not in again and again[("/root", "1.png")].state == FileState.LANDED
    assert (
        len(again) == 5
        and again.get(("/root", "nope.png")) is None
        and again.get(("/other", "0.png")) is None
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 150), st.sampled_from([*STATES, None])), max_size=400),
    st.integers(0, 60),
)
def test_every_change_reads_back_as_a_dict_would_hold_it(
    ops: list[tuple[int, FileState | None]], base: int
) -> None:
    """Sets (each state), pops and the merges they cause: `get` answers as a plain dict of the same
    changes, on every key, including keys that left and came back."""
    landed = sorted((key_digest("/root", f"{n}.png"), 1000 + n, n, float(n)) for n in range(base))
    known = KnownFiles.build("r", landed, [])
    model = {
        ("/root", f"{n}.png"): row(1000 + n, f"{n}.png", FileState.LANDED, n, float(n)) for n in range(base)
    }
    next_id = 5000
    for n, state in ops:
        key = ("/root", f"{n}.png")
        if state is None:
            known.pop(key)
            model.pop(key, None)
            continue
        next_id += 1
        new = row(next_id, f"{n}.png", state, size=n * 3, mtime=n + 0.25)
        known.set(new)
        model[key] = new
    for n in range(151):
        key = ("/root", f"{n}.png")
        got, want = known.get(key), model.get(key)
        if want is None:
            assert got is None
            continue
        assert got is not None and (got.id, got.size, got.mtime, got.key) == (
            want.id,
            want.size,
            want.mtime,
            key,
        )
        if want.state in (FileState.LANDED, FileState.PROCESSED):
            assert got.state == FileState.LANDED
        else:
            assert got == want
    keys = [("/root", f"{n}.png") for n in range(151)] + [("/other", "1.png")]
    landed_as = {FileState.LANDED, FileState.PROCESSED}
    assert list(known.stamps(keys)) == [
        None
        if (r := model.get(k)) is None
        else (r.id, FileState.LANDED if r.state in landed_as else r.state, r.size, r.mtime)
        for k in keys
    ]  # a whole listing's lookups answer as the dict would, key by key
    listed = [(*k, n % 7 * 3, n % 5 + 0.25) for n, k in enumerate(keys)]  # some versions match, some not
    assert known.not_landed(listed, same_version) == [
        e
        for e in listed
        if (r := model.get((e[0], e[1]))) is None
        or r.state in WAITING
        or not same_version(r.size, r.mtime, e[2], e[3])
    ]  # ... and the listing's comparison (still_pending) as the dict's rows would
    assert len(known) == len(model)
    assert sorted(r.id for r in known.unlanded()) == sorted(
        r.id for r in model.values() if r.state not in (FileState.LANDED, FileState.PROCESSED)
    )


def test_a_landed_file_costs_under_50_bytes() -> None:
    """A million current files must fit the daemon in ~150 MB (issue 21): 200,000 cost < 10 MB."""
    count = 200_000
    rels = [f"txt2img-images/2026-11-{i % 28:02d}/{i:07d}-{i * 7919 % 10**9}.png" for i in range(count)]
    landed = sorted((key_digest("/root", rel), i + 1, 100_000 + i, 1.7e9 + i) for i, rel in enumerate(rels))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        known = KnownFiles.build("r", iter(landed), [])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used / count < 50, f"{used / count:.0f} bytes per landed file"
    rel = random.Random(1).choice(rels)
    found = known[("/root", rel)]
    assert found.state == FileState.LANDED and found.id == rels.index(rel) + 1


def test_columns_refuse_an_unsorted_load() -> None:
    """The store hands the landed files over sorted by digest; anything else is a bug, not a guess."""
    digests = sorted(key_digest("/root", f"{n}") for n in range(3))
    try:
        KnownFiles.build("r", [(digests[1], 1, 1, 1.0), (digests[0], 2, 1, 1.0)], [])
    except ValueError as exc:
        assert "ascending" in str(exc)
    else:
        raise AssertionError("an unsorted load was taken")
