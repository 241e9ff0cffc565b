"""Back-fill (SPEC §3.7): a new sink gets one synthetic event per landed file whose event left the log
(with the metadata the pipeline recorded), with fresh ids, for that sink only — never a second
`file_synced` for a file whose event the log still holds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from mediasyncd.state import LandedFile, NewFile, Store
from mediasyncd.state import sinks as ledger
from mediasyncd.state.events import select_events


async def seed(tmp_path: Path) -> Path:
    store = Store(tmp_path / "state.db")
    await store.open()
    rows = await store.add_seen("r1", [NewFile("/out", f"{i}.png", 10, 1.0e9) for i in range(3)])
    landed = [LandedFile(r, hashlib.sha256(r.rel.encode()).hexdigest(), f"r1/{r.rel}") for r in rows]
    await store.set_landing_intents([(f.row.id, f.sha256, f.local_path) for f in landed])
    await store.mark_landed(landed)
    first = (await store.landed_unprocessed([rows[0].id]))[0]
    await store.mark_processed(first, {"prompt": "a fox"})
    await store.close()
    conn = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    record = {"generator": "comfyui", "prompt": "a fox", "model": "sdxl", "seed": 7, "steps": 20}
    conn.execute(
        "INSERT INTO media (path, sha256, record, updated_at) VALUES (?, ?, ?, 'now')",
        (first.local_path, first.sha256, json.dumps(record)),
    )
    # the retention dropped the events of files 1 and 2 (file_synced of both, file_processed of 1)
    conn.execute(
        "DELETE FROM events WHERE json_extract(data, '$.file_id') IN (?, ?)", (rows[0].id, rows[1].id)
    )
    conn.close()
    return tmp_path / "state.db"


async def test_only_what_left_the_log_is_synthesized_for_that_sink_only(tmp_path: Path) -> None:
    """Files 1 and 2 get synthetic events (1 with its metadata), file 3 none; other consumers do not see
    them; a second back-fill of the same sink adds nothing."""
    path = await seed(tmp_path)
    conn = sqlite3.connect(path, isolation_level=None)
    before = [e.id for e in select_events(conn, 0)]
    assert ledger.backfill(conn, "db") == 3
    assert [e.id for e in select_events(conn, 0)] == before  # not for everyone
    synthetic = [e for e in select_events(conn, 0, sink="db") if e.id not in before]
    assert [(e.type, e.path) for e in synthetic] == [
        ("file_synced", "0.png"), ("file_processed", "0.png"), ("file_synced", "1.png"),
    ]  # fmt: skip
    assert all(e.data["backfill"] is True and e.id > max(before) for e in synthetic)
    processed = synthetic[1].data
    assert (
        processed["model"] == "sdxl"
        and processed["seed"] == 7
        and processed["metadata"]["generator"] == "comfyui"
    )
    assert {e.data["sha256"] for e in synthetic} >= {hashlib.sha256(b"0.png").hexdigest()}
    assert ledger.backfill(conn, "db") == 0
    assert select_events(conn, 0, sink="other") == select_events(conn, 0)


async def test_replay_all_rewinds_and_never_duplicates(tmp_path: Path) -> None:
    """`events replay --all`: position 0, a rewind request for the daemon, no second synthetic event for
    what the sink's back-fill already put in the log; `--since` only moves the position."""
    path = await seed(tmp_path)
    conn = sqlite3.connect(path, isolation_level=None)
    ledger.backfill(conn, "db")
    ledger.set_position(conn, "db", 99)
    assert ledger.replay(conn, "db", None) == 0
    assert conn.execute("SELECT acked_id FROM consumers WHERE name = 'sink:db'").fetchone() == (0,)
    assert ledger.take_requests(conn, "db") == ledger.Requests(rewind_to=0)
    assert ledger.take_requests(conn, "db") == ledger.Requests()
    assert ledger.replay(conn, "db", 4) == 0
    assert ledger.take_requests(conn, "db").rewind_to == 4
