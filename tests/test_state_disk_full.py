"""The state DB's filesystem fills (found by `python -m bench.faults --only disk`): a write that meets the
full disk is a StateDiskFull (rolled back, nothing counted against a file), the remote waits in backoff
saying why, the daemon neither crashes a part nor prints a traceback, and a start on a full disk exits
with the reason."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mediasyncd.errors import StateDiskFull
from mediasyncd.state import EventType, NewEvent, Store
from tests.helpers import MEDIASYNCD, make_env, small_filesystem, start_daemon, stop, wait_for
from tests.sshd import SshServer

MiB = 1 << 20


def fill(path: Path) -> None:
    with path.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


async def test_a_write_on_a_full_disk_is_state_disk_full_and_the_db_goes_on_after(tmp_path: Path) -> None:
    """The transaction is rolled back and raised as StateDiskFull (not SQLite's "cannot rollback - no
    transaction is active", which hid the cause); once space returns the same connection writes again
    and the DB is intact."""
    state = tmp_path / "state"
    state.mkdir()
    with small_filesystem(state, "2m"):
        store = Store(state / "state.db")
        await store.open()
        try:
            big = [NewEvent(EventType.SYNC_ERROR, "r1", data={"error": "x" * 65536}) for _ in range(8)]
            await store.append(big[:1])
            fill(state / "filler")
            with pytest.raises(StateDiskFull, match="state DB disk full"):
                for _ in range(10):
                    await store.append(big)
            (state / "filler").unlink()
            await store.append(big)
        finally:
            await store.close()
        with sqlite3.connect(state / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_run_on_a_full_state_disk_exits_1_with_the_reason(tmp_path: Path, sshd: SshServer) -> None:
    """No traceback: one line naming the state DB and the full disk, exit status 1 (a service manager
    retries later; a config error would be 78)."""
    env = make_env(tmp_path, sshd)
    env.state_dir.mkdir()
    with small_filesystem(env.state_dir, "1m"):
        fill(env.state_dir / "filler")
        done = subprocess.run(
            [MEDIASYNCD, "run", "--config", str(env.config_path)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert "cannot open the state DB" in done.stderr and "disk full" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_full_state_disk_puts_the_remote_in_backoff_and_everything_lands_after(
    tmp_path: Path, sshd: SshServer
) -> None:
    """While the state dir's disk is full, /status shows the remote in backoff with the reason, no file
    is marked failed, no part is reported crashed; once there is space every file lands."""
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    env.state_dir.mkdir()
    port = int(env.config_path.read_text().split("status_listen = ")[1].split('"')[1].rsplit(":", 1)[1])
    with small_filesystem(env.state_dir, "8m"):
        env.write("a/first.mp4", b"1" * 200_000)
        proc = start_daemon(env.config_path, tmp_path / "run.log")
        try:
            wait_for(lambda: (env.library / "r1" / "a" / "first.mp4").is_file(), timeout=30)
            fill(env.state_dir / "filler")
            for n in range(6):
                env.write(f"b/{n}.mp4", bytes([n]) * (MiB + n))

            def remote() -> dict[str, object]:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
                    found: dict[str, object] = json.load(r)["remotes"][0]
                    return found

            wait_for(lambda: "state DB disk full" in str(remote().get("paused")), timeout=30)
            time.sleep(2)  # it stays paused, saying why, while the disk is full (no session flapping)
            assert "state DB disk full" in str(remote()["paused"])
            assert remote()["state"] == "backoff" and remote()["failed_files"] == 0
            (env.state_dir / "filler").unlink()
            wait_for(lambda: len(env.landed()) == 7, timeout=60)
        finally:
            assert stop(proc) == 0
        assert env.rows("SELECT COUNT(*) FROM files WHERE state = 'failed' OR attempts > 0") == [(0,)]
    log = (tmp_path / "run.log").read_text()
    assert "crashed" not in log and "Traceback" not in log
