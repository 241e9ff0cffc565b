"""Faults on the transfer path, against the real sshd: a cut link, a library disk that fills, a remote
whose sessions keep failing, a connection that fails half-open. None of them may count against a file."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mediasyncd.backoff import Backoff
from mediasyncd.config import Config
from mediasyncd.errors import RemoteError
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import Listing, Source
from mediasyncd.sources.local import LocalSource
from mediasyncd.sources.ssh.source import SshSource
from mediasyncd.state import Store
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.puller import Opener, Puller
from tests.helpers import Env, make_env, small_filesystem, until
from tests.sshd import SshServer, cut_link, session_pids, start_sshd

MiB = 1 << 20


@asynccontextmanager
async def running(
    config: Config, status: RemoteStatus, space: SpaceGate | None = None, opener: Opener | None = None
) -> AsyncIterator[Puller]:
    """A Puller of the config's first remote running in this loop, as the daemon runs it."""
    store = Store(config.daemon.db_path)
    await store.open()
    library = Library(config.daemon.library)
    library.check_available()
    gate = space or SpaceGate(library.free_bytes, 0)
    with ThreadPoolExecutor(4) as pool:
        puller = Puller(
            config.remotes[0], config.transfer, library=library, store=store, status=status,
            state_dir=config.daemon.state_dir, executor=pool, landing_lock=asyncio.Lock(), space=gate,
            opener=opener,
        )  # fmt: skip
        task = asyncio.create_task(puller.run())
        try:
            yield puller
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()


def moved(status: RemoteStatus) -> int:
    return sum(f.bytes_done for f in status.in_flight.values())


def reconnected(status: RemoteStatus, before: int) -> Callable[[], bool]:
    """True once the cut shows: the session ended, or a new one restarted its transfers."""
    return lambda: status.state != "connected" or moved(status) < before


def slow_env(tmp_path: Path, sshd: SshServer, rate: str, batch_below: str = "1MiB") -> Env:
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    extra = f'concurrency = 4\nbwlimit = "{rate}"\nbatch_below = "{batch_below}"'
    text = env.config_path.read_text().replace("concurrency = 4", extra)
    env.config_path.write_text(text)
    return env


class _Recording(SshSource):
    """The real SSH source, noting how much of each partial was already there when its pull started."""

    starts: ClassVar[list[tuple[str, int]]] = []
    first_reports: ClassVar[list[int]] = []  # each pull's first progress report: where its bytes began

    async def pull(self, path: str, partial: Path, **kwargs: Any) -> str:
        self.starts.append((path, await asyncio.to_thread(_size_or_zero, partial)))
        report = kwargs.get("progress")
        reported = False

        def first(done: int) -> None:
            nonlocal reported
            if not reported:
                reported = True
                self.first_reports.append(done)
            if report is not None:
                report(done)

        return await super().pull(path, partial, **(kwargs | {"progress": first}))


def _size_or_zero(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_three_cuts_of_the_link_fail_no_file_and_resume_from_partials(
    tmp_path: Path, sshd: SshServer
) -> None:
    """The link is cut three times during large transfers: every file lands verified, none is marked
    failed or loses an attempt, the interrupted ones continue from their partials, and no task error is
    left unretrieved."""
    unretrieved: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))
    env = slow_env(tmp_path, sshd, "12MiB")
    data = {f"big{i}.mp4": os.urandom(12 * MiB) for i in range(3)}
    for rel, blob in data.items():
        env.write(rel, blob)
    config = env.config()
    _Recording.starts, _Recording.first_reports = [], []
    status = RemoteStatus("r1")

    async def opener() -> Source:
        return await _Recording.open(config.remotes[0], config.daemon.state_dir, config.transfer)

    async with running(config, status, opener=opener):
        for _ in range(3):
            await until(lambda: status.state == "connected" and moved(status) > 3 * MiB)
            before = moved(status)
            assert cut_link(sshd) > 0
            await until(reconnected(status, before), within=10)
        await until(lambda: env.landed() == data, within=60)
    gc.collect()
    await asyncio.sleep(0)
    assert env.landed() == data
    assert env.rows("SELECT state, attempts, last_error FROM files") == [("landed", 0, None)] * 3
    assert status.failed_files == 0
    resumed = [start for _, start in _Recording.starts if start > 0]
    assert len(_Recording.starts) > len(data) and resumed, _Recording.starts
    # what /status shows: the pulls whose bytes began past 0 (a pull cut before it reached its partial
    # was recorded above but never began)
    began = [done for done in _Recording.first_reports if done > 0]
    assert began and (status.resumed_files, status.resumed_bytes) == (len(began), sum(began))
    assert not [c for c in unretrieved if "never retrieved" in str(c.get("message"))], unretrieved


def fill(path: Path) -> None:
    """Write `path` until the filesystem is full (as another program would)."""
    with path.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * MiB)
                fh.flush()
        except OSError:
            pass


@pytest.mark.parametrize("batch_below", ["0", "8MiB"], ids=["sftp", "tar"])  # "0": no streams at all
async def test_a_library_disk_that_fills_pauses_transfers_and_fails_nothing(
    tmp_path: Path, sshd: SshServer, capsys: pytest.CaptureFixture[str], batch_below: str
) -> None:
    """Another program fills the library's disk mid-transfer: the files that meet ENOSPC wait (none is
    marked failed), the pause is logged once, /status says what waits and why, and everything lands
    once space returns."""
    env = slow_env(tmp_path, sshd, "8MiB", batch_below)
    data = {f"v{i}.mp4": os.urandom(6 * MiB) for i in range(4)}
    for rel, blob in data.items():
        env.write(rel, blob)
    with small_filesystem(env.library, "64m"):
        config = env.config()
        status = RemoteStatus("r1")
        space = SpaceGate(Library(env.library).free_bytes, 0, check_every=0.3)
        filler = env.library / "filler.bin"
        async with running(config, status, space):
            await until(lambda: moved(status) > MiB)
            await asyncio.to_thread(fill, filler)
            await until(lambda: status.paused is not None and status.queued > 0)
            snapshot = status.snapshot()
            assert snapshot["paused"].startswith("library disk") and snapshot["queued"] > 0
            # Every file has landed or waits at the gate: had ENOSPC failed one, it would show by now.
            await until(lambda: not status.in_flight and status.queued > 0)
            assert env.rows("SELECT COUNT(*) FROM files WHERE state = 'failed'") == [(0,)]
            filler.unlink()
            await until(lambda: env.landed() == data, within=60)
        logged = capsys.readouterr().out
    assert env.rows("SELECT DISTINCT state, attempts FROM files") == [("landed", 0)]
    assert logged.count('"event": "transfers paused: library disk low"') == 1
    assert status.paused is None


class _FailingListings(LocalSource):
    """A source whose listings fail after `good` successful ones, as an unreadable root would."""

    def __init__(self, roots: list[str], good: int) -> None:
        super().__init__(roots)
        self.good = good

    async def list_roots(self, roots: Any) -> Listing:
        if self.good <= 0:
            raise RemoteError("cannot stat root: permission denied")
        self.good -= 1
        return await super().list_roots(roots)


async def test_reconnect_backoff_grows_until_a_session_works(tmp_path: Path, sshd: SshServer) -> None:
    """Sessions that fail early back off further each time, even one that completed a single quick pass;
    one that kept working (here: longer than `healthy_after`) starts the backoff over."""
    env = make_env(tmp_path, sshd, poll_interval="0.05s")
    config = env.config()
    plan: list[int] = [0, 0, 0, 1, 0, 8, 0]  # good listings per session: the sixth lasts ~0.4 s
    opened: list[int] = []

    async def opener() -> Source:
        opened.append(len(opened))
        return _FailingListings([str(env.remote_root)], plan[min(len(opened) - 1, len(plan) - 1)])

    status = RemoteStatus("r1")
    store = Store(config.daemon.db_path)
    await store.open()
    delays: list[float] = []
    with ThreadPoolExecutor(2) as pool:
        puller = Puller(
            config.remotes[0], config.transfer, library=Library(env.library), store=store, status=status,
            state_dir=env.state_dir, executor=pool, landing_lock=asyncio.Lock(),
            space=SpaceGate(lambda: 1 << 40, 0), opener=opener, reconnect=Backoff(base=0.01, cap=60),
            healthy_after=0.3,
        )  # fmt: skip

        async def no_sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) >= 7:
                raise asyncio.CancelledError

        puller._sleep = no_sleep  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await puller.run()
    await store.close()
    ceilings = [0.01 * 2**n for n in range(5)]
    assert [d >= c / 2 for d, c in zip(delays, ceilings, strict=False)] == [True] * 5
    assert delays[4] >= 0.08  # the fifth in a row waits 16x the first: one quick pass did not reset it
    assert delays[5] <= 0.01  # the sixth session kept working: back to the first step
    assert status.state == "backoff" and "permission denied" in (status.last_error or "")


async def test_a_connection_that_fails_after_connecting_is_closed(tmp_path: Path) -> None:
    """When the SFTP session cannot start on a remote without a shell (SFTP is started at once there:
    everything needs it), the SSH connection just made is closed, every time (a retry loop must not leak
    one connection per attempt). With a shell, SFTP starts on first use:
    tests/sources/test_ssh_sftp_session.py."""
    config = "Subsystem sftp /bin/false\nForceCommand /bin/false\n"
    with start_sshd(tmp_path / "sshd", extra_config=config) as server:
        env = make_env(tmp_path, server)
        remote = env.config().remotes[0]
        for _ in range(3):
            with pytest.raises(RemoteError, match="SFTP unavailable"):
                await SshSource.open(remote, env.state_dir)
        await until(lambda: session_pids(server) == [], within=10)


async def test_requests_after_a_cut_are_a_lost_connection_not_a_file_failure(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Once the link is cut, every operation says RemoteError (the session ends, nothing counts against
    a file), whether it was in flight or started after the cut (asyncssh's "connection not open")."""
    env = make_env(tmp_path, sshd)
    env.write("a.png", b"a" * 5000)
    source = await SshSource.open(env.config().remotes[0], env.state_dir)
    try:
        cut_link(sshd)
        await until(source.conn.is_closed, within=10)
        with ThreadPoolExecutor(1) as pool, pytest.raises(RemoteError):
            await source.pull(
                str(env.remote_root / "a.png"), tmp_path / "a.part", size=5000, mtime=0.0, executor=pool
            )
        with pytest.raises(RemoteError):
            await source.still_same([(str(env.remote_root / "a.png"), 5000, 0.0)])
        with pytest.raises(RemoteError):
            await source.list_roots([str(env.remote_root)])
    finally:
        await source.close()


async def test_a_silent_connection_is_lost_after_the_configured_keepalives(
    tmp_path: Path, sshd: SshServer
) -> None:
    """A peer that stops answering (its session frozen, as behind a dead route: no FIN, no RST) is
    declared lost after keepalive_interval x keepalive_count_max, here 0.5 s x 2, not the default 60 s."""
    env = make_env(tmp_path, sshd, keepalive_interval="0.5s", keepalive_count_max=2)
    source = await SshSource.open(env.config().remotes[0], env.state_dir)
    frozen = session_pids(sshd)
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
        await until(source.conn.is_closed, within=10)
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        await source.close()
