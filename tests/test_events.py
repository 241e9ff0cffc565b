"""The event log (SPEC §3.7): written with each change, read by `mediasyncd events`, back-filled on
migration, and exactly one `file_synced` per landed file through crashes."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from mediasyncd.state import Store
from mediasyncd.state.schema import MIGRATIONS
from tests.helpers import MEDIASYNCD, Env, make_env, once, start_daemon, stop, wait_for
from tests.sshd import SshServer

ENVELOPE = {"id", "type", "time", "remote", "path", "sync_id", "data"}


def events_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIASYNCD, "events", "--config", str(env.config_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def json_events(env: Env, *args: str) -> list[dict[str, object]]:
    result = events_cli(env, "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]  # every stdout line is an envelope


def test_a_sync_writes_one_file_synced_per_file_and_one_sync_complete(
    tmp_path: Path, sshd: SshServer
) -> None:
    """`sync --once` of N files: N `file_synced` envelopes (with file_id, sha256, library_path) and one
    `sync_complete`; a second pass with nothing new adds no event."""
    env = make_env(tmp_path, sshd, settle="0s")
    names = [f"day/{i:03}.png" for i in range(7)]
    for i, name in enumerate(names):
        env.write(name, bytes([i]) * (500 + i))
    assert once(env) == 0
    synced = json_events(env, "--type", "file_synced")
    assert sorted(str(e["path"]) for e in synced) == names
    for e in synced:
        assert set(e) == ENVELOPE and e["remote"] == "r1" and e["sync_id"]
        data = e["data"]
        assert isinstance(data, dict) and {"file_id", "sha256", "library_path", "size", "mtime"} <= set(data)
        assert data["library_path"] == f"r1/{e['path']}"
    (complete,) = json_events(env, "--type", "sync_complete")
    assert complete["data"]["landed"] == 7 and complete["sync_id"] == synced[0]["sync_id"]  # type: ignore[index]
    everything = json_events(env)
    assert once(env) == 0
    assert json_events(env) == everything
    assert json_events(env, "--since", str(everything[-2]["id"])) == everything[-1:]


def test_the_readable_listing_and_bad_types(tmp_path: Path, sshd: SshServer) -> None:
    """Without --json each event is one line naming its type and file; an unknown type is refused with
    the known ones, exit 2."""
    env = make_env(tmp_path, sshd, settle="0s")
    env.write("a.png", b"a" * 100)
    assert once(env) == 0
    plain = events_cli(env)
    assert plain.returncode == 0
    lines = plain.stdout.splitlines()
    assert any("file_synced" in line and "r1:a.png" in line and "size=100" in line for line in lines)
    bad = events_cli(env, "--type", "file_synced,nope")
    assert bad.returncode == 2 and "nope" in bad.stderr and "file_purged" in bad.stderr


def test_follow_prints_events_as_they_are_written(tmp_path: Path, sshd: SshServer) -> None:
    """`events --follow --json` keeps reading: events written after it started arrive on its stdout."""
    env = make_env(tmp_path, sshd, settle="0s")
    env.write("first.png", b"1" * 10)
    assert once(env) == 0
    follower = subprocess.Popen(
        [
            MEDIASYNCD,
            "events",
            "--follow",
            "--json",
            "--type",
            "file_synced",
            "--config",
            str(env.config_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["path"] == "first.png"
        env.write("second.png", b"2" * 10)
        assert once(env) == 0
        assert json.loads(follower.stdout.readline())["path"] == "second.png"
    finally:
        follower.terminate()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()


def test_the_migration_back_fills_files_landed_before_the_log(tmp_path: Path) -> None:
    """A state DB from before the event log gets one back-filled `file_synced` per landed file (and a
    `file_processed` per processed one, a `file_expired` per copy local retention removed) when it is
    first opened."""
    db = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        rows = [
            ("a.png", "landed"), ("b.png", "processed"), ("c.png", "purged"), ("d.png", "seen"),
            ("e.png", "failed"),
        ]  # fmt: skip
        for i, (rel, state) in enumerate(rows):
            landed = state in ("landed", "processed", "purged")
            conn.execute(
                "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen, sha256, local_path, "
                "landed_at) VALUES ('old', '/out', ?, 10, 1.0, ?, 1.0, ?, ?, ?)",
                (rel, state, "f" * 64 if landed else None, f"old/{rel}" if landed else None, 100.0 + i),
            )

    async def open_and_read() -> list[tuple[str, str | None, bool]]:
        store = Store(db)
        await store.open()
        try:
            return [(e.type, e.path, bool(e.data.get("backfill"))) for e in await store.events()]
        finally:
            await store.close()

    import asyncio

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("UPDATE files SET library_expired_at = 500.0 WHERE rel = 'c.png'")  # retention took it
    assert asyncio.run(open_and_read()) == [
        ("file_synced", "a.png", True),
        ("file_synced", "b.png", True),
        ("file_synced", "c.png", True),
        ("file_processed", "b.png", True),
        ("file_expired", "c.png", True),
    ]


def test_kill_9_during_busy_runs_leaves_exactly_one_file_synced_per_landed_file(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Ten kill -9s of a busy `run`, each followed by a restart: in the end every landed file has exactly
    one `file_synced` event, and no such event lacks its landed file."""
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    text = env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "4MiB"')
    env.config_path.write_text(text)
    rng = random.Random(11)
    for i in range(60):
        env.write(f"batch/{i:03}.png", rng.randbytes(rng.choice([20_000, 90_000, 300_000, 1_500_000])))
    for round_ in range(10):
        proc = start_daemon(env.config_path, tmp_path / f"run{round_}.log")
        time.sleep(rng.uniform(0.4, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = start_daemon(env.config_path, tmp_path / "final.log")
    try:
        wait_for(lambda: len(env.landed()) == 60, timeout=60)
    finally:
        code = stop(proc)
    assert code == 0, (tmp_path / "final.log").read_text()[-3000:]
    landed = {r[0] for r in env.rows("SELECT id FROM files WHERE state IN ('landed', 'processed')")}
    events = env.rows("SELECT json_extract(data, '$.file_id') FROM events WHERE type = 'file_synced'")
    ids = [r[0] for r in events]
    assert len(landed) == 60
    assert sorted(ids) == sorted(landed)  # one each, none without its file


async def test_retention_drops_only_old_events_every_enabled_consumer_acknowledged(tmp_path: Path) -> None:
    """Events older than the retention go once every enabled consumer acknowledged them; an
    unacknowledged one stays however old, and a disabled consumer holds nothing back."""
    from mediasyncd.state import EventType, NewEvent

    store = Store(tmp_path / "state.db")
    await store.open()
    try:
        await store.append([NewEvent(EventType.SYNC_ERROR, "r1", data={"n": n}) for n in range(4)])
        ids = [e.id for e in await store.events()]
        await store.enable_consumers(["pipeline", "sink"])
        await store.ack("pipeline", ids[3])
        await store.ack("sink", ids[1])
        assert await store.prune_events(time.time() + 1) == 2  # everything is "old"; sink is at 2
        assert [e.id for e in await store.events()] == ids[2:]
        await store.enable_consumers(["pipeline"])  # the sink left the config
        assert await store.prune_events(time.time() + 1) == 2
        assert await store.prune_events(time.time() - 3600) == 0
    finally:
        await store.close()
