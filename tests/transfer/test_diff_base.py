"""The diff base keeps a landed file as the next listing needs it, without its hash or library path."""

from __future__ import annotations

from pathlib import Path

from mediasyncd.state import FileState, LandedFile, NewFile, Store


async def test_landed_rows_load_without_hash_and_path_and_share_their_root(tmp_path: Path) -> None:
    """Landed rows come back slim (what the diff compares is all there); unlanded rows keep theirs."""
    store = Store(tmp_path / "state.db")
    await store.open()
    try:
        rows = await store.add_seen("r", [NewFile("/root", f"{i}.png", 10 + i, 100.0 + i) for i in range(3)])
        await store.mark_landed([LandedFile(rows[0], "ab" * 32, "r/0.png", adopted=True)])
        index = await store.current_files("r")
    finally:
        await store.close()
    landed, waiting = index[("/root", "0.png")], index[("/root", "1.png")]
    assert landed.state == FileState.LANDED and (landed.size, landed.mtime) == (10, 100.0)
    assert landed.sha256 is None and landed.local_path is None and landed.landed_at is None
    assert waiting.state == FileState.SEEN
    assert len({id(r.root) for r in index.values()}) == 1
