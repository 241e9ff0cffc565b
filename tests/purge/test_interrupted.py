"""A purge interrupted mid-delete (kill -9, a dropped connection) leaves state and remote consistent."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mediasyncd.state import LandedFile, NewFile, Store
from mediasyncd.state.purge import PurgeLedger
from tests.helpers import Env, once
from tests.purge.conftest import on_remote, purge, purge_env, reasons
from tests.sshd import SshServer


async def _mark_intent(env: Env, rels: list[str]) -> None:
    store = Store(env.state_dir / "state.db")
    await store.open()
    try:
        known = await store.current_files("r1")
        ids = [row.id for rel in rels if (row := known.get((str(env.remote_root), rel))) is not None]
        await PurgeLedger(store).mark_intent(99, ids)
    finally:
        await store.close()


def test_a_delete_cut_off_before_it_was_recorded_is_confirmed_on_the_next_run(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files marked mid-delete are marked purged if the remote no longer has them; those still there
    are judged afresh (a young one stays, unmarked)."""
    env = purge_env(tmp_path, sshd)
    for name in ("gone.png", "still-there.png", "other.png"):
        env.write(name, name.encode() * 1000)
    env.write("young.png", b"young" * 1000, mtime=time.time() - 60)
    assert once(env) == 0
    asyncio.run(_mark_intent(env, ["gone.png", "still-there.png", "young.png"]))
    (env.remote_root / "gone.png").unlink()  # the rm ran; the process died before recording it
    capsys.readouterr()

    assert purge(env) == 0

    assert "already gone" in capsys.readouterr().out
    assert reasons(env) == {
        "gone.png": "purged",
        "still-there.png": "purged",
        "other.png": "purged",
        "young.png": "too_young",
    }
    assert on_remote(env) == {"young.png"}
    assert env.rows("SELECT COUNT(*) FROM files WHERE purge_run IS NOT NULL") == [(0,)]


def _seed_landed(env: Env, count: int) -> None:
    """`count` old files on the remote, landed and verified in the library, through the Store API."""
    files = []
    for i in range(count):
        rel = f"day{i % 10}/{i:05}.png"
        data = f"image {i} ".encode() * 50
        remote = env.write(rel, data)
        local = env.library / "r1" / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        files.append((NewFile(str(env.remote_root), rel, len(data), remote.stat().st_mtime), data))
    (env.library / ".mediasyncd").mkdir()

    async def record() -> None:
        store = Store(env.state_dir / "state.db")
        await store.open()
        try:
            rows = await store.add_seen("r1", [f for f, _ in files])
            for row, (_, data) in zip(rows, files, strict=True):
                digest = hashlib.sha256(data).hexdigest()
                await store.set_landing_intents([(row.id, digest, f"r1/{row.rel}")])
                await store.mark_landed([LandedFile(row, digest, f"r1/{row.rel}")])
        finally:
            await store.close()

    asyncio.run(record())


def _purge_killed_at(env: Env, marker: bytes, occurrence: int, delay: float = 0.0) -> int:
    """Run `mediasyncd purge` in a child process and SIGKILL it `delay` seconds after the n-th log line
    holding `marker`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediasyncd", "purge", "--config", str(env.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if marker in line:
            seen += 1
            if seen == occurrence:
                time.sleep(delay)
                proc.kill()
                break
    proc.stdout.close()
    return proc.wait(timeout=30)


def _assert_consistent(env: Env) -> None:
    """Nothing is marked purged that the remote still has; every library copy is intact."""
    with sqlite3.connect(env.state_dir / "state.db") as db:
        rows = db.execute("SELECT rel, state, local_path, sha256 FROM files").fetchall()
    present = on_remote(env)
    for rel, state, local_path, sha in rows:
        if state == "purged":
            assert rel not in present, f"{rel} is marked purged but still on the remote"
        assert hashlib.sha256((env.library / local_path).read_bytes()).hexdigest() == sha


def test_kill_9_during_a_purge_then_a_rerun_leaves_state_and_remote_consistent(
    tmp_path: Path, sshd: SshServer
) -> None:
    """SIGKILL mid-delete (at three points: after the intent, while `rm` may be running, between
    batches): nothing is ever marked purged that still exists, and the next complete run marks every
    deleted file and deletes the rest."""
    env = purge_env(tmp_path, sshd)
    _seed_landed(env, 1000)

    assert _purge_killed_at(env, b'"deleting batch"', 2) == -9
    _assert_consistent(env)
    first_cut = len(on_remote(env))
    assert 0 < first_cut < 1000

    assert _purge_killed_at(env, b'"deleting batch"', 1, delay=0.004) == -9
    _assert_consistent(env)

    assert _purge_killed_at(env, b'"purged"', 1) == -9
    _assert_consistent(env)

    done = subprocess.run(
        [sys.executable, "-m", "mediasyncd", "purge", "--config", str(env.config_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _assert_consistent(env)
    assert on_remote(env) == set()
    assert env.rows("SELECT state, COUNT(*) FROM files GROUP BY state") == [("purged", 1000)]
    assert env.rows("SELECT COUNT(*) FROM files WHERE purge_run IS NOT NULL") == [(0,)]
    outcomes = env.rows("SELECT outcome, error FROM purge_runs ORDER BY id")
    assert outcomes[:3] == [("error", "interrupted (process ended mid-run)")] * 3
    assert outcomes[3] == ("ok", None)
