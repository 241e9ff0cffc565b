"""The media pipeline reads the event log: files that landed while it was not running (a kill -9 between
landing and processing looks the same) are processed from the log later, each once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mediasyncd import processing
from mediasyncd.demo.images import write_forge_image
from mediasyncd.state import FileRow, Store
from tests.helpers import MEDIASYNCD, OLD, Env, make_env, once
from tests.sshd import SshServer


def test_files_landed_without_the_pipeline_are_processed_from_the_log(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Three images land with the pipeline off; with it on, a pass with nothing new processes exactly
    those three (state processed, one `file_processed` event each, with the prompt), and a further pass
    processes nothing again."""
    env = make_env(tmp_path, sshd, settle="0s")
    forge_images(env, 3, seed=3)
    assert once(env) == 0
    assert env.rows("SELECT DISTINCT state FROM files") == [("landed",)]
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    assert once(env) == 0
    assert env.rows("SELECT DISTINCT state FROM files") == [("processed",)]
    processed = _events(env, "file_processed")
    assert len(processed) == 3
    assert all(e["data"]["prompt"] and e["data"]["generator"] for e in processed)
    assert {e["data"]["file_id"] for e in processed} == {r[0] for r in env.rows("SELECT id FROM files")}
    assert once(env) == 0
    assert len(_events(env, "file_processed")) == 3


def test_a_file_deleted_from_the_library_leaves_the_index_at_the_next_start(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Processed images; one is deleted from the library by hand; the next run's start-up audit drops its
    record and search entry, the others stay."""
    env = make_env(tmp_path, sshd, settle="0s")
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    forge_images(env, 2, seed=5)
    assert once(env) == 0
    [(gone,), (kept,)] = env.rows("SELECT local_path FROM files ORDER BY local_path")
    assert len(env.rows("SELECT path FROM media")) == 2
    (env.library / gone).unlink()
    assert once(env) == 0
    assert env.rows("SELECT path FROM media") == [(kept,)]


def forge_images(env: Env, count: int, *, seed: int) -> None:
    """`count` small Forge PNGs with A1111 parameters on the remote, old enough to be taken at once."""
    rng = random.Random(seed)
    for index in range(count):
        image = write_forge_image(env.remote_root, index, rng, size=64)
        os.utime(image, (OLD, OLD))


def _events(env: Env, kind: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [MEDIASYNCD, "events", "--json", "--type", kind, "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_files_purged_or_out_of_the_log_before_processing_are_still_processed(
    tmp_path: Path, sshd: SshServer
) -> None:
    """The pipeline does not depend on the remote lifecycle or on the log's retention: a file purged
    from the remote before the pipeline ran, and one whose `file_synced` left the log, are processed."""
    env = make_env(tmp_path, sshd, settle="0s")
    forge_images(env, 2, seed=4)
    assert once(env) == 0
    (first, gone), (second, _) = env.rows("SELECT id, rel FROM files ORDER BY id")
    (env.remote_root / gone).unlink()  # as the purge did
    with contextlib.closing(sqlite3.connect(env.state_dir / "state.db")) as db, db:
        db.execute("UPDATE files SET state = 'purged', purged_at = 1 WHERE id = ?", (first,))
        db.execute("DELETE FROM events WHERE json_extract(data, '$.file_id') = ?", (second,))
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    assert once(env) == 0
    assert sorted(env.rows("SELECT state, processed_at IS NOT NULL FROM files")) == [
        ("processed", 1), ("purged", 1),
    ]  # fmt: skip
    assert {e["data"]["file_id"] for e in _events(env, "file_processed")} == {first, second}


def test_a_file_whose_processing_crashes_does_not_stall_the_others(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file's processing raises: it is logged and skipped, the other files are processed and the
    pipeline's position moves on."""
    from mediasyncd.processing import Processor

    env = make_env(tmp_path, sshd, settle="0s")
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    forge_images(env, 3, seed=5)
    original = Processor._process

    async def crash_on_one(self: Processor, row: FileRow) -> None:
        if "/00001-" in f"/{row.rel}":
            raise RuntimeError("a bug in a stage")
        await original(self, row)

    monkeypatch.setattr(Processor, "_process", crash_on_one)
    assert once(env) == 0
    states = dict(env.rows("SELECT rel, state FROM files"))
    assert sorted(states.values()) == ["landed", "processed", "processed"]
    assert env.rows("SELECT acked_id > 0 FROM consumers WHERE name = 'pipeline'") == [(1,)]


async def test_the_library_audit_also_runs_on_its_schedule(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the pipeline runs, a file deleted by hand leaves the index at the next scheduled audit (no
    restart), and its thumbnail goes with it; the other file stays."""
    env = make_env(tmp_path, sshd, settle="0s")
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    forge_images(env, 2, seed=6)
    assert await asyncio.to_thread(once, env) == 0
    [(gone, thumb), (kept, _)] = env.rows("SELECT path, thumbnail FROM media ORDER BY path")
    assert (env.library / thumb).is_file()
    monkeypatch.setattr(processing, "AUDIT_EVERY", 0.2)
    config = env.config()
    store = Store(config.daemon.db_path)
    await store.open()
    processor = processing.Processor(config, store)
    task = asyncio.create_task(processor.run())
    try:
        await asyncio.sleep(0.5)  # past the start-up audit: only the schedule can notice what follows
        (env.library / gone).unlink()
        for _ in range(100):
            if env.rows("SELECT path FROM media") == [(kept,)]:
                break
            await asyncio.sleep(0.1)
        assert env.rows("SELECT path FROM media") == [(kept,)]
        assert not (env.library / thumb).exists()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
