"""The daemon with real sinks (a real PostgreSQL, a real webhook receiver) through faults: kill -9 mid
delivery, PostgreSQL stopped and restarted, the receiver down and up, a poison event, a back-fill of
thousands of landed files, a sink added by SIGHUP. After each: every landed file's row exists exactly once
with the right sha256, and every event id the sink should have is there exactly once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.state import EventType, LandedFile, NewEvent, NewFile, Store
from tests.helpers import MEDIASYNCD, Env, make_env, start_daemon, stop, wait_for
from tests.sinks.conftest import Pg
from tests.sinks.receiver import Receiver
from tests.sshd import SshServer

pytestmark = pytest.mark.slow
SECRET = "whsec_" + base64.b64encode(b"scenario-key-0123456789abcdef!!").decode()


# ------------------------------------------------------------------------------------------ helpers


def port_of(env: Env) -> int:
    for line in env.config_path.read_text().splitlines():
        if line.startswith("status_listen"):
            return int(line.split(":")[-1].strip('"'))
    raise AssertionError("no status_listen")


def sinks_status(env: Env) -> dict[str, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port_of(env)}/status", timeout=5) as resp:
            return {s["name"]: s for s in json.load(resp)["sinks"]}  # always there, [] at first
    except OSError:
        return {}


def add_sink(env: Env, table: str) -> None:
    env.config_path.write_text(env.config_path.read_text() + "\n[[sinks]]\n" + table.strip() + "\n")


def pg_sink(pg: Pg, **more: object) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in more.items())
    return f'name = "db"\ntype = "postgresql"\ndsn = "{pg.dsn}"\nschema = "{pg.schema}"\n{extra}'


def seed_landed(env: Env, n: int) -> None:
    """`n` files landed through the real state API (what a long-running library has), with their
    library copies, and their events in the log."""
    (env.library / ".mediasyncd").mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        store = Store(env.state_dir / "state.db")
        await store.open()
        try:
            rels = [f"old/{i:05}.png" for i in range(n)]
            rows = await store.add_seen("r1", [NewFile(str(env.remote_root), rel, 10, 1.0e9) for rel in rels])
            landed = []
            for row in rows:
                sha = hashlib.sha256(row.rel.encode()).hexdigest()
                landed.append(LandedFile(row, sha, f"r1/{row.rel}"))
            await store.set_landing_intents([(f.row.id, f.sha256, f.local_path) for f in landed])
            await store.mark_landed(landed)
        finally:
            await store.close()

    asyncio.run(go())


def db(env: Env) -> sqlite3.Connection:
    return sqlite3.connect(env.state_dir / "state.db")


def landed_files(env: Env) -> list[tuple[str, str, str]]:
    if not (env.state_dir / "state.db").exists():
        return []
    with db(env) as c:
        try:
            rows = c.execute(
                "SELECT remote, rel, sha256 FROM files WHERE local_path IS NOT NULL "
                "AND state IN ('landed', 'processed', 'purged')"
            ).fetchall()
        except sqlite3.OperationalError:  # the daemon has created the file but not yet its tables
            return []
    # One (remote, path, sha256) per version: a file listed between its write and its `utime` (settle 0s)
    # lands twice with the same bytes, two rows here and one upserted row in PostgreSQL.
    return sorted({(str(a), str(b), str(s)) for a, b, s in rows})


def log_ids(env: Env, sink: str) -> set[int]:
    with db(env) as c:
        return {r[0] for r in c.execute("SELECT id FROM events WHERE sink IS NULL OR sink = ?", (sink,))}


def pg_rows(pg: Pg) -> list[tuple[str, str, str]]:
    try:
        rows = pg.query("SELECT remote, path, sha256 FROM mediasyncd_files")
    except RuntimeError:  # the tables are not there yet
        return []
    return sorted((r[0], r[1], r[2]) for r in rows)


def pg_count(pg: Pg) -> int:
    try:
        return int(pg.query("SELECT count(*) FROM mediasyncd_events")[0][0])
    except RuntimeError:  # the tables are not there yet
        return 0


def assert_complete(env: Env, pg: Pg, parked: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """Every landed file's row once with its sha256; every event id (but parked ones) once."""
    rows = pg_rows(pg)
    assert len(rows) == len(set(rows))
    assert rows == landed_files(env)
    ids = [int(r[0]) for r in pg.query("SELECT id FROM mediasyncd_events")]
    assert len(ids) == len(set(ids))
    assert set(ids) == log_ids(env, "db") - parked


def wait_delivered(env: Env, pg: Pg, timeout: float = 60, parked: int = 0) -> None:
    wait_for(lambda: pg_count(pg) + parked >= len(log_ids(env, "db")), timeout=timeout, interval=0.2)


@pytest.fixture
def env(tmp_path: Path, sshd: SshServer) -> Iterator[Env]:
    e = make_env(tmp_path, sshd, settle="0s", poll_interval="0.5s")
    (e.library / ".mediasyncd").mkdir(parents=True, exist_ok=True)
    yield e


def events_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIASYNCD, "events", "--config", str(env.config_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


# ---------------------------------------------------------------------------------------- scenarios


def test_kill_9_mid_delivery_loses_and_duplicates_nothing(env: Env, pg: Pg, tmp_path: Path) -> None:
    """Three kill -9 while PostgreSQL is being filled; after the last restart it is complete."""
    seed_landed(env, 1500)
    add_sink(env, pg_sink(pg, batch=5))
    total = len(log_ids(env, "db"))
    seen = []
    for round_ in range(3):
        before = pg_count(pg)
        if before == total:
            break
        proc = start_daemon(env.config_path, tmp_path / f"d{round_}.log")
        try:
            wait_for(lambda b=before: pg_count(pg) > b, timeout=30, interval=0.05)  # type: ignore[misc]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        seen.append(pg_count(pg))
    assert seen[0] < total, "the first kill came after the whole backlog was delivered"
    proc = start_daemon(env.config_path, tmp_path / "last.log")
    try:
        wait_delivered(env, pg)
    finally:
        assert stop(proc) == 0
    assert_complete(env, pg)


def test_postgres_down_then_up_and_transfers_never_wait(env: Env, pg: Pg, tmp_path: Path) -> None:
    """PostgreSQL stopped: files still land, the sink says backoff; restarted: every row arrives."""
    add_sink(env, pg_sink(pg))
    env.write("a/1.png", b"one" * 100)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: len(pg_rows(pg)) == 1, timeout=30)
        pg.server.stop()
        for i in range(2, 6):
            env.write(f"a/{i}.png", bytes([i]) * 300)
        wait_for(lambda: len(landed_files(env)) == 5, timeout=30)  # landing did not wait for the sink
        wait_for(lambda: sinks_status(env).get("db", {}).get("state") == "backoff", timeout=30)
        status = sinks_status(env)["db"]
        assert status["lag_events"] > 0 and status["last_error"] and pg.dsn not in json.dumps(status)
        shown = json.loads(events_cli(env, "status", "--json").stdout)
        assert shown["daemon_running"] and shown["sinks"][0]["state"] == "backoff"
        pg.server.start()
        wait_delivered(env, pg)
        wait_for(lambda: sinks_status(env)["db"]["state"] == "ok", timeout=30)
    finally:
        assert stop(proc) == 0
    assert_complete(env, pg)


def test_receiver_down_then_up_gets_every_event_signed(env: Env, tmp_path: Path) -> None:
    """The webhook receiver is down while files land; back up on its port, it gets every event, each
    with a valid signature."""
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    receiver = Receiver(SECRET)
    receiver.start()
    add_sink(env, f'name = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\nsecret_file = "{secret}"\n')
    env.write("x/1.png", b"1" * 100)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: len(receiver.ids) >= 1, timeout=30)
        receiver.stop()
        for i in range(2, 5):
            env.write(f"x/{i}.png", bytes([i]) * 100)
        wait_for(lambda: len(landed_files(env)) == 4, timeout=30)
        wait_for(lambda: sinks_status(env).get("hook", {}).get("state") == "backoff", timeout=30)
        receiver.start()
        wait_for(lambda: set(receiver.ids) == log_ids(env, "hook"), timeout=60, interval=0.2)
    finally:
        assert stop(proc) == 0
        receiver.stop()
    assert receiver.bad_signatures == 0
    with db(env) as c:
        synced = {r[0] for r in c.execute("SELECT id FROM events WHERE type = 'file_synced'")}
    assert synced <= set(receiver.ids)


def test_a_poison_event_is_parked_and_retry_requeues_it(env: Env, pg: Pg, tmp_path: Path) -> None:
    """An event PostgreSQL refuses (a NUL in its JSON) is parked after max_attempts; the events behind
    it go on; `events status` shows it; `events retry` re-queues it (refused again, it is parked again)."""
    seed_landed(env, 3)

    async def poison() -> None:
        store = Store(env.state_dir / "state.db")
        await store.open()
        await store.append([NewEvent(EventType.SYNC_COMPLETE, "r1", None, None, {"note": "nul \x00 here"})])
        await store.close()

    asyncio.run(poison())
    env.write("after.png", b"after" * 50)
    add_sink(env, pg_sink(pg, max_attempts=2))
    with db(env) as c:
        (bad,) = c.execute("SELECT id FROM events WHERE type = 'sync_complete'").fetchone()
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: sinks_status(env).get("db", {}).get("parked") == 1, timeout=60)
        wait_delivered(env, pg, parked=1)
        shown = json.loads(events_cli(env, "status", "--json").stdout)["sinks"][0]
        assert shown["parked"] == 1 and "22P05" in shown["last_error"]
        retry = events_cli(env, "retry", "--sink", "db")
        assert retry.returncode == 0 and "1 parked event(s) re-queued" in retry.stdout
        wait_for(lambda: _attempts(env, bad) == 1, timeout=30)  # tried again once...
        wait_for(lambda: sinks_status(env)["db"]["parked"] == 1, timeout=30)  # ...and parked again
    finally:
        assert stop(proc) == 0
    assert_complete(env, pg, parked={bad})


def _attempts(env: Env, event_id: int) -> int:
    with db(env) as c:
        r = c.execute("SELECT attempts FROM sink_rejects WHERE event_id = ?", (event_id,)).fetchone()
    return int(r[0]) if r else -1


def test_backfill_of_thousands_of_landed_files(env: Env, pg: Pg, tmp_path: Path) -> None:
    """2,000 landed files, half of whose events the retention dropped: a new sink gets every file, from
    the log where it holds them and as synthetic back-fill events (to it only) otherwise."""
    seed_landed(env, 2000)
    with db(env) as c:
        c.execute("DELETE FROM events WHERE id <= 1000")
    add_sink(env, pg_sink(pg))
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_delivered(env, pg, timeout=90)
    finally:
        assert stop(proc) == 0
    assert_complete(env, pg)
    with db(env) as c:
        synthetic = c.execute("SELECT COUNT(*) FROM events WHERE sink = 'db'").fetchone()[0]
        assert synthetic == 1000
    backfilled = pg.query(
        "SELECT count(*) FROM mediasyncd_events WHERE payload->'data'->>'backfill' = 'true'"
    )
    assert backfilled == [["1000"]]
    listing = events_cli(env, "--json")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 1000  # others never see them


def test_a_sink_added_by_sighup_is_back_filled_then_follows(env: Env, pg: Pg, tmp_path: Path) -> None:
    """A running daemon without sinks gets one by SIGHUP: every landed file, then what lands next."""
    env.write("first.png", b"first" * 40)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: len(landed_files(env)) == 1, timeout=30)
        add_sink(env, pg_sink(pg))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(pg_rows(pg)) == 1, timeout=30)
        env.write("second.png", b"second" * 40)
        wait_for(lambda: len(pg_rows(pg)) == 2, timeout=30)
        wait_delivered(env, pg)
        replay = events_cli(env, "replay", "--sink", "db", "--since", "0")
        assert replay.returncode == 0, replay.stderr
        wait_for(lambda: "sink replays the log" in (tmp_path / "d.log").read_text(), timeout=30)
        wait_delivered(env, pg)
    finally:
        assert stop(proc) == 0
    assert_complete(env, pg)
