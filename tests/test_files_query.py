"""The library's files, newest first (GET /api/v1/files), are read in index order: a page stops after its
rows instead of sorting every landed file on the state DB's one thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mediasyncd.state import Store
from mediasyncd.state.catalog import Catalog, FileQuery


async def test_a_page_of_files_walks_the_newest_first_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    assert Catalog(conn).files(FileQuery(limit=20)) == ([], None)
    [query] = [sql for sql in seen if "FROM files AS f" in sql]
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "USING INDEX files_newest" in plan and "TEMP B-TREE" not in plan, plan
