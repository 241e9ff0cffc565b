"""The daemon's parts are supervised: a crashing service is restarted while transfers go on, and a stop is
bounded even when a part ignores its cancellation (a second SIGTERM cuts it shorter still)."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import pytest
import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.daemon import Daemon
from mediasyncd.housekeeping import EventRetention
from mediasyncd.purge.scheduler import PurgeScheduler
from tests.helpers import make_env, until
from tests.sshd import SshServer


async def test_a_crashing_service_is_restarted_while_transfers_go_on(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge scheduler crashes on start: it is logged and restarted with backoff, and the remote's
    files land meanwhile."""
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    env.write("a.png", b"a" * 1000)
    starts: list[float] = []
    original = PurgeScheduler.run

    async def crash_first(self: PurgeScheduler) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise RuntimeError("scheduler bug")
        await original(self)

    monkeypatch.setattr(PurgeScheduler, "run", crash_first)
    monkeypatch.setattr("mediasyncd.supervision.RESTART", Backoff(base=0.2, cap=1.0))
    daemon = Daemon(env.config())
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(daemon.run())
        await until(lambda: len(starts) >= 2 and env.landed() == {"a.png": b"a" * 1000})
        daemon.stop.set()
        await running
    crashes = [e for e in logs if e["event"] == "part crashed; restarting it"]
    assert [c["part"] for c in crashes] == ["service-PurgeScheduler"]
    assert not daemon.forced


def ran_more_than(entered: list[EventRetention], n: int) -> bool:
    return len(entered) > n


async def test_a_part_that_ignores_its_cancel_cannot_hold_up_the_stop(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part that swallows cancellation for seconds: the stop still ends after the grace period,
    naming the part; a second stop signal ends the wait at once."""
    env = make_env(tmp_path, sshd)
    release = asyncio.Event()
    entered: list[EventRetention] = []

    async def stubborn(self: EventRetention) -> None:
        entered.append(self)  # a part cancelled before its first step never runs: nothing to force
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # a bug: it ignores the stop

    monkeypatch.setattr(EventRetention, "run", stubborn)
    for round_, (grace, second_signal) in enumerate(((0.5, False), (30.0, True))):
        daemon = Daemon(env.config(), grace=grace)
        with structlog.testing.capture_logs() as logs:
            running = asyncio.create_task(daemon.run())
            await until(daemon.started.is_set)
            await until(functools.partial(ran_more_than, entered, round_))
            started = time.monotonic()
            daemon._on_stop_signal()
            if second_signal:
                await asyncio.sleep(0.2)
                daemon._on_stop_signal()
            await running
            took = time.monotonic() - started
        assert daemon.forced and took < 6.0, took  # far below the 30 s grace of the second round
        (report,) = [e for e in logs if e["event"] == "shutdown did not finish in time; stopping anyway"]
        assert report["still_running"] == ["service-EventRetention"]
    release.set()


async def test_idle_passes_are_not_logged_at_info(tmp_path: Path, sshd: SshServer) -> None:
    """A pass that finds, lands and fails nothing logs at debug: an idle daemon stays quiet at info."""
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.1s", watch="poll")
    env.write("a.png", b"a" * 100)
    daemon = Daemon(env.config())
    seen: set[float] = set()

    def passes() -> int:
        remote = daemon.view.remotes.get("r1")
        if remote is not None and remote.last_pass_at is not None:
            seen.add(remote.last_pass_at)
        return len(seen)

    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(daemon.run())
        await until(lambda: passes() >= 6 and env.landed() != {})
        daemon.stop.set()
        await running
    info = [e for e in logs if e["event"] == "pass" and e["log_level"] == "info"]
    assert len(info) == 1 and info[0]["new"] == 1  # the pass that found the file; the idle ones are debug
