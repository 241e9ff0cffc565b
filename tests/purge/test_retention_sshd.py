"""Local retention inside real purge runs on the real OpenSSH sshd: it follows the remote purge, leaves the
"deleted locally" accounting alone, runs on the schedule, and expired files are never fetched again."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from mediasyncd.progress import StatusView
from mediasyncd.purge.scheduler import PurgeScheduler
from mediasyncd.state import Store
from tests.helpers import Env, once
from tests.purge.conftest import on_remote, purge, purge_env
from tests.sshd import SshServer

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(5_000)


def backdate_landing(env: Env, seconds: float) -> None:
    """Pretend every file landed `seconds` earlier (the test's clock for `local_retention`)."""
    with sqlite3.connect(env.state_dir / "state.db") as db:
        db.execute("UPDATE files SET landed_at = landed_at - ?", (seconds,))


def runs(env: Env) -> list[tuple[int, int, int]]:
    """(remote files deleted, deleted locally, library files deleted) per finished run."""
    return [
        (d, dl, ld)
        for d, dl, ld in env.rows(
            "SELECT deleted_files, deleted_locally, library_deleted_files FROM purge_runs ORDER BY id"
        )
    ]


def test_retention_deletes_library_copies_only_after_the_remote_purge(
    tmp_path: Path, sshd: SshServer
) -> None:
    """A run purges the remote copy and keeps the library one; a later run past `local_retention`
    deletes the library copy, and neither counts it as "deleted locally"."""
    env = purge_env(tmp_path, sshd, purge={"local_retention": "1h"})
    env.write("a/1.png", PNG)
    env.write("a/2.png", PNG[::-1])
    assert once(env) == 0
    backdate_landing(env, 2 * 3600)
    assert purge(env) == 0
    assert on_remote(env) == set() and set(env.landed()) == {"a/1.png", "a/2.png"}
    assert purge(env) == 0
    assert env.landed() == {}
    assert runs(env) == [(2, 0, 0), (0, 0, 2)]


def test_files_on_the_remote_keep_their_library_copy(tmp_path: Path, sshd: SshServer) -> None:
    """A file the remote purge keeps (here: preserved) keeps its library copy, however old."""
    env = purge_env(tmp_path, sshd, purge={"local_retention": "1h", "preserve": ["fav/**"]})
    env.write("fav/1.png", PNG)
    assert once(env) == 0
    backdate_landing(env, 30 * 86400)
    assert purge(env) == 0 and purge(env) == 0
    assert on_remote(env) == {"fav/1.png"} and set(env.landed()) == {"fav/1.png"}


def test_expired_files_are_not_fetched_again(tmp_path: Path, sshd: SshServer) -> None:
    """After retention removed a copy, `sync --once` brings nothing back and the row stays purged and
    expired (retention is not a user deletion, and the remote file is gone)."""
    env = purge_env(tmp_path, sshd, purge={"local_retention": "1h"})
    env.write("a.png", PNG)
    env.write("b.png", PNG[::-1])
    assert once(env) == 0
    backdate_landing(env, 2 * 3600)
    assert purge(env) == 0 and purge(env) == 0
    assert env.landed() == {}
    assert once(env) == 0
    assert env.landed() == {}
    assert env.rows("SELECT rel, state, library_expired_at IS NOT NULL FROM files ORDER BY rel") == [
        ("a.png", "purged", 1),
        ("b.png", "purged", 1),
    ]


async def test_the_scheduled_purge_applies_local_retention(tmp_path: Path, sshd: SshServer) -> None:
    """A scheduled run (the daemon's job) deletes old library copies of purged files too."""
    env = purge_env(tmp_path, sshd, purge={"local_retention": "1h"})
    env.write("a.png", PNG)
    assert await asyncio.to_thread(once, env) == 0
    assert await asyncio.to_thread(purge, env) == 0
    backdate_landing(env, 2 * 3600)
    store = Store(env.state_dir / "state.db")
    await store.open()
    try:
        scheduler = PurgeScheduler(env.config(), store, StatusView("test", None))
        report = await scheduler.run_now("r1", source="schedule")
        snapshot = scheduler.snapshot()["remotes"][0]
    finally:
        await store.close()
    assert report is not None and report.library is not None
    assert [e.copy.local_path for e in report.library.sweep.expired] == ["r1/a.png"]
    assert env.landed() == {}
    assert snapshot["local_retention_s"] == 3600
    assert snapshot["last_run"]["library_deleted_files"] == 1
