"""The purge schedule inside the daemon: it fires, never overlaps, catches up once, and shows in /status."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from apscheduler.triggers.interval import IntervalTrigger

from mediasyncd.progress import StatusView
from mediasyncd.purge.crontab import crontab_trigger
from mediasyncd.purge.scheduler import PurgeScheduler, TriggerFactory
from mediasyncd.state import Store
from tests.helpers import Env, once, start_daemon, stop, wait_for
from tests.purge.conftest import on_remote, purge_env
from tests.sshd import SshServer


@asynccontextmanager
async def running(env: Env, trigger_for: TriggerFactory = crontab_trigger) -> AsyncIterator[PurgeScheduler]:
    """A PurgeScheduler served as the daemon serves it, on a real state DB; stopped on exit."""
    store = Store(env.state_dir / "state.db")
    await store.open()
    scheduler = PurgeScheduler(env.config(), store, StatusView("test", None), trigger_for=trigger_for)
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.05)  # let the scheduler's deferred shutdown run
        await store.close()


def scheduled_runs(env: Env) -> list[tuple[float, float | None]]:
    return [
        (s, f)
        for s, f in env.rows("SELECT started_at, finished_at FROM purge_runs WHERE source = 'schedule'")
    ]


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (up to 30 s: a loaded 2-core box) until `predicate()` holds."""
    async with asyncio.timeout(30):
        while not predicate():  # noqa: ASYNC110 - polls the state DB, which has no event to await
            await asyncio.sleep(0.05)


def every(seconds: float) -> TriggerFactory:
    return lambda _schedule: IntervalTrigger(seconds=seconds)


async def test_the_schedule_fires_and_purges(tmp_path: Path, sshd: SshServer) -> None:
    """With a short interval standing in for the cron schedule, the job runs repeatedly and purges."""
    env = purge_env(tmp_path, sshd)
    env.write("old.png", b"old" * 1000)
    assert await asyncio.to_thread(once, env) == 0
    async with running(env, every(0.3)):
        await until(lambda: len(env.rows("SELECT 1 FROM purge_runs WHERE source = 'schedule'")) >= 3)
    assert on_remote(env) == set()


async def test_scheduled_runs_never_overlap(tmp_path: Path, sshd: SshServer) -> None:
    """Runs fired faster than they finish do not overlap: each starts after the previous one ended."""
    env = purge_env(tmp_path, sshd)
    for i in range(200):
        env.write(f"d/{i}.png", bytes([i % 256]) * 20_000)
    assert await asyncio.to_thread(once, env) == 0
    async with running(env, every(0.05)):
        await until(lambda: len(env.rows("SELECT 1 FROM purge_runs WHERE finished_at IS NOT NULL")) >= 4)
    runs = sorted(scheduled_runs(env))
    finished = [(s, f) for s, f in runs if f is not None]
    assert len(finished) >= 4
    for (_, end), (start, _) in itertools.pairwise(finished):
        assert start >= end


async def test_a_run_missed_while_the_daemon_was_down_runs_once_at_start_up(
    tmp_path: Path, sshd: SshServer
) -> None:
    """The last scheduled run was three days ago (three daily runs missed): one run at start-up, not
    three, and the next one waits for the schedule. (Daily, so that the test cannot straddle a due time
    except in the one second before midnight.)"""
    env = purge_env(tmp_path, sshd, purge={"schedule": "0 0 * * *"})
    env.write("old.png", b"old" * 1000)
    assert await asyncio.to_thread(once, env) == 0
    await _record_scheduled_run(env, time.time() - 3 * 86400)
    async with running(env) as scheduler:
        await until(lambda: len(env.rows("SELECT 1 FROM purge_runs WHERE finished_at IS NOT NULL")) == 2)
        await until(lambda: settled(scheduler))  # nothing else is due before the next daily run
        assert len(env.rows("SELECT 1 FROM purge_runs")) == 2
        status = scheduler.snapshot()["remotes"][0]
    assert on_remote(env) == set()
    assert status["next_run_at"].endswith("T00:00:00Z")
    assert status["last_run"]["deleted_files"] == 1 and status["last_run"]["result"] == "ok"


async def test_no_catch_up_run_when_the_last_run_is_recent(tmp_path: Path, sshd: SshServer) -> None:
    """The last scheduled run was a minute ago and the schedule (yearly) is not due since: nothing runs."""
    env = purge_env(tmp_path, sshd, purge={"schedule": "0 0 1 1 *"})
    await _record_scheduled_run(env, time.time() - 60)
    async with running(env) as scheduler:
        await until(lambda: settled(scheduler))  # scheduled, and next due in a year: nothing can run
    assert len(env.rows("SELECT 1 FROM purge_runs")) == 1


def settled(scheduler: PurgeScheduler) -> bool:
    """No purge is running and the next one is scheduled in the future (not the catch-up run, due now)."""
    (remote,) = scheduler.snapshot()["remotes"]
    due = remote["next_run_at"]
    later = due is not None and datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp() > time.time()
    return later and not remote["running"]


async def _record_scheduled_run(env: Env, started_at: float) -> None:
    """A finished scheduled run in the state DB, as an earlier daemon would have left it."""
    store = Store(env.state_dir / "state.db")
    await store.open()  # creates the schema
    await store.close()
    with contextlib.closing(sqlite3.connect(env.state_dir / "state.db")) as db, db:
        db.execute(
            "INSERT INTO purge_runs (remote, source, dry_run, started_at, finished_at, outcome) "
            "VALUES ('r1', 'schedule', 0, ?, ?, 'ok')",
            (started_at, started_at + 1),
        )


def test_the_daemon_status_has_a_purge_object(tmp_path: Path, sshd: SshServer) -> None:
    """`mediasyncd run` serves /status with a purge object: the next scheduled run per remote; SPEC §3.10
    keys are untouched."""
    env = purge_env(tmp_path, sshd)
    port = env.config().daemon.status_port
    proc = start_daemon(env.config_path, tmp_path / "daemon.log")
    try:
        status: dict[str, object] = {}

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1) as resp:
                    status.update(json.load(resp))
                    purge = status.get("purge")
                    return isinstance(purge, dict) and all(r["next_run_at"] for r in purge["remotes"])
            except OSError:
                return False

        wait_for(ready, timeout=20)
    finally:
        assert stop(proc) == 0
    purge_status = status["purge"]
    assert isinstance(purge_status, dict)
    [remote] = purge_status["remotes"]
    assert remote["name"] == "r1" and remote["schedule"] == "0 * * * *" and remote["next_run_at"]
    assert {"version", "uptime_s", "config", "remotes", "totals"} <= set(status)
