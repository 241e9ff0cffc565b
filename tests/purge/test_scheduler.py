"""The purge schedule inside the daemon: it fires, never overlaps, catches up once, and shows in /status."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from mediasyncd.progress import StatusView
from mediasyncd.purge.crontab import crontab_trigger
from mediasyncd.purge.scheduler import PURGE_SLOTS, PurgeScheduler, TriggerFactory
from mediasyncd.state import Store
from tests.helpers import Env, once, remote_table, start_daemon, stop, until, wait_for, write_config
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


async def five_remotes(tmp_path: Path, sshd: SshServer) -> tuple[Env, list[str]]:
    """Five synced remotes of 30 files each, whose purge runs are dry (each lists and plans all 30)."""
    env = purge_env(tmp_path, sshd)
    names = [f"r{n}" for n in range(1, 6)]
    for name in names:
        for i in range(30):
            env.write(f"{i}.png", bytes([i]) * 5_000, root=env.remote_root.parent / name)
    tables = [remote_table(sshd, name, env.remote_root.parent / name) for name in names]
    for table in tables:
        table["purge"] = {"older_than": "30m", "dry_run": True}
    write_config(env.config_path, env.library, env.state_dir, tables)
    assert await asyncio.to_thread(once, env) == 0
    return env, names


async def test_at_most_purge_slots_remotes_purge_at_once(tmp_path: Path, sshd: SshServer) -> None:
    """Five remotes due on the same tick run at most PURGE_SLOTS at a time (the default schedule starts
    every remote's run on the same minute; 50 at once held 500 MB). Each remote still gets its runs."""
    env, names = await five_remotes(tmp_path, sshd)
    async with running(env, every(0.05)) as scheduler:
        seen_waiting: set[str] = set()

        def enough() -> bool:
            snapshot = scheduler.snapshot()["remotes"]
            seen_waiting.update(r["name"] for r in snapshot if r["waiting"])
            assert sum(r["running"] for r in snapshot) <= PURGE_SLOTS
            runs = env.rows("SELECT remote FROM purge_runs WHERE finished_at IS NOT NULL")
            return {r for (r,) in runs} == set(names) and len(runs) >= 15

        await until(enough)
    runs = env.rows("SELECT started_at, finished_at FROM purge_runs WHERE finished_at IS NOT NULL")
    edges = sorted([(s, 1) for s, _ in runs] + [(f, -1) for _, f in runs])
    at_once = max(itertools.accumulate(step for _, step in edges))
    assert 1 <= at_once <= PURGE_SLOTS
    assert seen_waiting  # and /status said who waited


async def test_runs_waiting_for_their_turn_when_the_daemon_stops_log_no_error(
    tmp_path: Path, sshd: SshServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping cancels the scheduled runs still waiting for a slot: APScheduler logged each as a job
    that "raised an exception" (50 error lines at every stop of the soak's daemon)."""
    env, _ = await five_remotes(tmp_path, sshd)
    async with running(env, every(0.05)) as scheduler:
        await until(lambda: any(r["waiting"] for r in scheduler.snapshot()["remotes"]))
        jobs = [t for t in asyncio.all_tasks() if "run_coroutine_job" in repr(t.get_coro())]
        assert jobs
        for job in jobs:
            job.cancel()  # as the daemon's stop does with whatever still runs
        await asyncio.gather(*jobs, return_exceptions=True)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_stop_waits_for_the_runs_it_cancels_before_the_state_db_closes(
    tmp_path: Path, sshd: SshServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler's service ends only once its cancelled runs have: the daemon closes the state DB
    right after, and a run still unwinding then raised "state DB is not open" (error lines in a soak
    stopped while 50 remotes' runs were going or waiting)."""
    env, _ = await five_remotes(tmp_path, sshd)
    store = Store(env.state_dir / "state.db")
    await store.open()
    scheduler = PurgeScheduler(env.config(), store, StatusView("test", None), trigger_for=every(0.05))
    service = asyncio.create_task(scheduler.run())
    await until(lambda: any(r["waiting"] for r in scheduler.snapshot()["remotes"]))
    jobs = [t for t in asyncio.all_tasks() if "run_coroutine_job" in repr(t.get_coro())]
    service.cancel()
    await asyncio.gather(service, return_exceptions=True)
    assert jobs and all(job.done() for job in jobs)
    await store.close()  # as the daemon does next
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


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
