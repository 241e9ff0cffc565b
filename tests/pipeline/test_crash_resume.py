"""A pipeline killed with SIGKILL completes on restart without redoing finished stages."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.runner import Pipeline
from tests.helpers import shm_swept
from tests.pipeline import samples
from tests.pipeline.conftest import sha256_of

HELPER = Path(__file__).with_name("crash_helper.py")
ROOT = Path(__file__).parents[2]


def finished_stages(db_path: Path) -> dict[tuple[str, str], tuple[int, str]]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT path, stage, runs, updated_at FROM pipeline_stages WHERE status IN ('done', 'skipped', 'error')"
        ).fetchall()
    return {(path, stage): (runs, updated) for path, stage, runs, updated in rows}


def kill_after_first_file(db_path: Path, library: Path, files: list[Path]) -> None:
    """Run the helper daemon-alike and SIGKILL its whole process group once the first file is done."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The kill takes multiprocessing's resource tracker too: nobody is left to unlink the pool's
    # semaphores (sem.mp-*), so this test does.
    with shm_swept(lambda name: name.startswith("sem.mp-")):
        _start_and_kill(env, db_path, library, files)


def _start_and_kill(env: dict[str, str], db_path: Path, library: Path, files: list[Path]) -> None:
    child = subprocess.Popen(
        [sys.executable, str(HELPER), str(db_path), str(library), *map(str, files)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        assert line.startswith("done 00.png"), line
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the daemon and its worker processes, as systemd would
        child.wait()
        child.stderr.close()  # type: ignore[union-attr]


async def test_kill_9_then_restart_completes_without_redoing(library: Path, db_path: Path) -> None:
    """After kill -9 mid-run, a restart finishes every file; stages finished before the kill keep runs == 1."""
    db_path.parent.mkdir()
    files = [samples.forge_png(library / "forge1" / f"{i:02}.png") for i in range(6)]
    kill_after_first_file(db_path, library, files)
    before = finished_stages(db_path)
    assert ("forge1/00.png", "thumbnail") in before and len(before) < 4 * len(files)
    thumb = next((library / ".mediasyncd" / "thumbs").rglob("*.webp"))
    thumb_mtime = thumb.stat().st_mtime_ns

    pipeline = Pipeline(db_path, library, PipelineOptions(workers=1))
    try:
        results = [await pipeline.process(f, sha256_of(f), remote="forge1", rel=f.name) for f in files]
    finally:
        await pipeline.aclose()

    after = finished_stages(db_path)
    assert all(result.ok for result in results) and len(after) == 4 * len(files)
    assert {key: after[key] for key in before} == before
    assert results[0].resumed == ("metadata", "xmp", "thumbnail", "index")
    assert thumb.stat().st_mtime_ns == thumb_mtime
