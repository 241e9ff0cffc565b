"""The fault harness's audit counts what it claims to count: a harness that can only say 0 proves nothing.
Each kind of damage is planted once in a real library, remote tree and state DB, and counted once."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path

from bench.faults.common import audit, audit_events, error_summary, make_world, sha256
from mediasyncd.state import EventType, LandedFile, NewEvent, NewFile, Store
from mediasyncd.state.events import file_data


def test_each_planted_problem_is_counted_once(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    root.mkdir()
    world = make_world(tmp_path, [{"name": "r1", "transport": "local", "roots": [str(root)]}])
    remote = world.remote
    lib = world.library / "r1"
    blobs = {
        name: os.urandom(1000) for name in ("ok.png", "bad.png", "dup.png", "gone.png", "lost.png", "x.png")
    }
    for name, blob in blobs.items():
        remote.write(name, blob)
    lib.mkdir()
    for name in ("ok.png", "dup.png", "x.png"):
        (lib / name).write_bytes(blobs[name])
    (lib / "bad.png").write_bytes(b"not the source")  # corrupt
    (lib / f"dup~{sha256(blobs['dup.png'])[:8]}.png").write_bytes(blobs["dup.png"])  # landed twice
    (lib / ".ok.png.xmp.ab12cd.tmp").write_bytes(b"<x:xmpmeta")  # a temporary left in sight
    (lib / "x.png.xmp").write_text("<x:xmpmeta")  # a half-written sidecar
    (world.library / ".mediasyncd" / "partial").mkdir(parents=True)
    (world.library / ".mediasyncd" / "partial" / "7.part").write_bytes(b"hidden: not counted")
    (root / "gone.png").unlink()  # deleted from the remote without a library copy
    during = audit(world, final=False, sidecars=True)
    assert {kind: during.count(kind) for kind in during.issues} == {
        "partial": 1, "corrupt": 2, "duplicated": 1, "lost": 0, "unverified": 1, "failed": 0,
    }  # fmt: skip
    final = audit(world, final=True, sidecars=True)
    assert final.issues["lost"] == {"r1/gone.png", "r1/lost.png"}


def test_events_count_a_missing_a_duplicated_and_an_orphaned_file_synced(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    root.mkdir()
    world = make_world(tmp_path, [{"name": "r1", "transport": "local", "roots": [str(root)]}])

    async def plant() -> None:
        store = Store(world.state_dir / "state.db")
        await store.open()
        try:
            rows = await store.add_seen("r1", [NewFile(str(root), f"{n}.png", 10, 1.0e9) for n in range(3)])
            landed = [LandedFile(r, "ab" * 32, f"r1/{r.rel}") for r in rows[:2]]
            await store.set_landing_intents([(f.row.id, f.sha256, f.local_path) for f in landed])
            await store.mark_landed(landed)  # one file_synced each, in the same transaction
            again = NewEvent(
                EventType.FILE_SYNCED, "r1", "0.png", data=file_data(rows[0].id, "ab" * 32, "r1/0.png")
            )
            orphan = NewEvent(
                EventType.FILE_SYNCED, "r1", "2.png", data=file_data(rows[2].id, "ab" * 32, "r1/2.png")
            )
            await store.append([again, orphan])
        finally:
            await store.close()

    asyncio.run(plant())
    with sqlite3.connect(world.state_dir / "state.db") as db:  # a landed file whose event went missing
        db.execute("DELETE FROM events WHERE type = 'file_synced' AND path = '1.png'")
    for cli in (False, True):
        events = audit_events(world, cli=cli)
        assert (events.lost, events.duplicated, events.orphaned, events.synced) == (1, 1, 1, 3)


def test_an_error_line_in_a_report_names_what_raised() -> None:
    """A JSON error line with a traceback is reported as its event and the exception's last line (a
    200-character cut of the raw line lost what raised in the 1-hour soak); other lines as they are."""
    line = json.dumps(
        {
            "event": 'Job "purge r32 (trigger: cron[minute=0])" raised an exception',
            "level": "error",
            "timestamp": "2026-11-30T22:00:03Z",
            "exception": 'Traceback (most recent call last):\n  File "x.py", line 1\nOSError: [Errno 24] Too many open files',
        }
    )
    assert error_summary(line) == (
        'Job "purge r32 (trigger: cron[minute=0])" raised an exception — OSError: [Errno 24] Too many open files'
    )
    assert error_summary("Traceback (most recent call last):") == "Traceback (most recent call last):"
    assert error_summary(json.dumps({"event": "x" * 1000, "level": "error"})) == "x" * 200
