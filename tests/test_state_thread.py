"""The state DB's thread keeps its SQLite objects: a cursor never reaches the event loop's thread, where
freeing it would reset a statement this thread may be using (the purges of 50 remotes that start on the
same minute failed with "bad parameter or other API misuse" while `record_kept` handed its cursor back)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mediasyncd.state.thread import StateThread


async def _thread(tmp_path: Path) -> StateThread:
    state = StateThread(tmp_path / "state.db")
    await state.open()
    await state._transaction(lambda c: c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").close())
    return state


async def test_a_transaction_that_returns_its_cursor_is_refused_and_rolled_back(tmp_path: Path) -> None:
    state = await _thread(tmp_path)
    try:
        with pytest.raises(TypeError, match="must not leave"):
            await state._transaction(
                lambda c: c.executemany("INSERT INTO t (v) VALUES (?)", [("a",), ("b",)])
            )
        rows = await state._read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone())
        assert rows == (0,)
    finally:
        await state.close()


async def test_a_read_that_returns_its_cursor_is_refused(tmp_path: Path) -> None:
    state = await _thread(tmp_path)
    try:
        with pytest.raises(TypeError, match="must not leave"):
            await state._read(lambda c: c.execute("SELECT v FROM t"))
        assert await state._read(lambda c: c.execute("SELECT v FROM t").fetchall()) == []
    finally:
        await state.close()


async def test_the_purge_ledger_writes_hand_back_no_cursor(tmp_path: Path) -> None:
    """`record_kept`, `mark_intent` and `clear_intent` were the ones that returned `executemany`'s cursor."""
    from mediasyncd.state import NewFile, Store
    from mediasyncd.state.purge import PurgeLedger

    store = Store(tmp_path / "s.db")
    await store.open()
    try:
        rows = await store.add_seen("r", [NewFile("/root", f"{i}.png", 10, 100.0) for i in range(20)])
        ledger = PurgeLedger(store)
        run_id = await ledger.start_run("r", "test", dry_run=False)
        tracked = await ledger.tracked("r")
        assert len(tracked) == len(rows)
        columns = "SELECT DISTINCT purge_run, purge_reason FROM files"
        await ledger.record_kept([(r, "too_young") for r in tracked])
        assert await store._read(lambda c: c.execute(columns).fetchall()) == [(None, "too_young")]
        await ledger.mark_intent(run_id, [r.id for r in tracked])
        assert await store._read(lambda c: c.execute(columns).fetchall()) == [(run_id, "too_young")]
        await ledger.clear_intent([r.id for r in tracked], "delete_failed")
        assert await store._read(lambda c: c.execute(columns).fetchall()) == [(None, "delete_failed")]
    finally:
        await store.close()


def test_sqlite_cursor_is_what_executemany_returns() -> None:
    """The guard looks for `sqlite3.Cursor`: what `execute`/`executemany` return on this Python."""
    conn = sqlite3.connect(":memory:")
    try:
        assert isinstance(conn.execute("SELECT 1"), sqlite3.Cursor)
    finally:
        conn.close()
