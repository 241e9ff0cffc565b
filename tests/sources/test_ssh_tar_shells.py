"""Tar streams on reused shells (sources/tar_shells.py), against the real sshd and GNU tar: a shell
takes stream after stream, stops exactly at each archive's end, and is dropped when anything is off; on
a fast link a stream borrows the command channel's shell when none of its own is idle. The same shells
carry an exec source's streams: `sh` here, and OpenSSH's `ssh` to the real sshd."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.errors import RemoteError
from mediasyncd.sources import tar
from mediasyncd.sources.exec.process import PipeShell
from mediasyncd.sources.exec.source import ExecSource
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.ssh.source import SshSource
from mediasyncd.sources.tar import Member, unpack_stream
from tests.helpers import peak_python_memory, until
from tests.sshd import SshServer, connect


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def make_files(root: Path, names: list[str], size: int = 30_000) -> dict[str, bytes]:
    files = {name: os.urandom(size) for name in names}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


async def stream(
    source: SshSource | ExecSource, root: Path, names: list[str], parts: Path, executor: ThreadPoolExecutor
) -> dict[str, Member]:
    got: dict[str, Member] = {}
    partials = {name: parts / f"{i}.part" for i, name in enumerate(names)}
    await source.pull_batch(
        str(root), partials, executor=executor, on_member=lambda m: got.update({m.rel: m})
    )
    await asyncio.sleep(0)  # on_member comes through call_soon_threadsafe
    for name, member in got.items():
        assert member.sha256 == hashlib.sha256(partials[name].read_bytes()).hexdigest()
    return got


def openssh_argv(sshd: SshServer) -> list[str]:
    """OpenSSH's client to the test sshd, its shell on stdin: an exec source's `command`."""
    return [
        *("ssh", "-F", "/dev/null", "-i", str(sshd.client_key), "-p", str(sshd.port)),
        *("-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
        *("-o", f"UserKnownHostsFile={sshd.known_hosts}", "-o", "LogLevel=ERROR"),
        f"{sshd.user}@{sshd.host}", "sh",
    ]  # fmt: skip


def record_shells(exec_source: ExecSource) -> list[PipeShell]:
    """The shells the source starts for its streams from now on, in order."""
    started: list[PipeShell] = []
    start = exec_source.tar_shells.start

    async def recorded() -> PipeShell:
        shell = await start()
        assert isinstance(shell, PipeShell)
        started.append(shell)
        return shell

    exec_source.tar_shells.start = recorded
    return started


@pytest.fixture(params=["ssh", "exec-sh", "exec-openssh"])
async def shells(request: pytest.FixtureRequest, sshd: SshServer) -> AsyncIterator[SshSource | ExecSource]:
    """A source whose streams reuse their shells, without borrowing (as over a slow link)."""
    if request.param == "ssh":
        ssh = await SshSource.start(await connect(sshd))
        ssh.tar_shells.lender = None
        try:
            yield ssh
        finally:
            await ssh.close()
        return
    exec_source = await ExecSource.open(["sh"] if request.param == "exec-sh" else openssh_argv(sshd))
    assert exec_source.gnu_tar and exec_source.caps.hashes_in_stream
    started = record_shells(exec_source)
    try:
        yield exec_source
    finally:
        await exec_source.close()
        assert started
        assert all(shell.exit_status is not None for shell in started)  # every stream's shell reaped


async def test_one_shell_takes_stream_after_stream(
    shells: SshSource | ExecSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """Three streams in a row (names with quotes, spaces, a newline, a leading dash) run on one shell:
    one exec (one process of an exec source's command), every member whole."""
    root = tmp_path / "root"
    names = ["a.png", "it's a $HOME `x`.png", "-dash.png", "line\nbreak.png", "sub dir/b.png"]
    files = make_files(root, names)
    for i, batch in enumerate([names[:2], names[2:4], names[4:]]):
        parts = tmp_path / f"parts{i}"
        got = await stream(shells, root, batch, parts, executor)
        assert {n: m.sha256 for n, m in got.items()} == {
            n: hashlib.sha256(files[n]).hexdigest() for n in batch
        }
    assert shells.tar_shells.started == 1


async def test_a_failed_tar_ends_its_shell_and_the_next_stream_gets_a_new_one(
    shells: SshSource | ExecSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """A listed file that vanished makes tar fail: the files it could send still arrive, that shell
    ends, and the next stream runs on a new one."""
    root = tmp_path / "root"
    make_files(root, ["a.png", "b.png"])
    got = await stream(shells, root, ["a.png", "gone.png", "b.png"], tmp_path / "p1", executor)
    assert sorted(got) == ["a.png", "b.png"]
    got = await stream(shells, root, ["a.png"], tmp_path / "p2", executor)
    assert sorted(got) == ["a.png"]
    assert shells.tar_shells.started == 2


async def test_a_shell_that_says_without_end_after_its_archive_is_not_heard_out(
    shells: SshSource | ExecSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """What a stream's shell prints after the archive (its hashes) is bounded by what was asked: a remote
    that prints on without end (`yes`) gives no answer and its shell is dropped, in bounded time and
    memory, and the archive's files have arrived."""
    root = tmp_path / "root"
    files = make_files(root, ["a.png"])
    got: list[Member] = []
    said = await asyncio.wait_for(
        shells.tar_shells.stream(
            str(root), {"a.png": tmp_path / "a.part"}, executor=executor, on_member=got.append, after="yes"
        ),
        20,
    )
    await asyncio.sleep(0)
    assert said is None
    assert [m.sha256 for m in got] == [hashlib.sha256(files["a.png"]).hexdigest()]
    await stream(shells, root, ["a.png"], tmp_path / "p2", executor)
    assert shells.tar_shells.started == 2  # the first shell was not kept


async def test_the_remotes_tar_options_do_not_change_the_archive(
    tmp_path: Path, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote whose environment sets TAR_OPTIONS (larger records, gzip) still sends plain archives of
    10240-byte records: stream after stream on one shell, every file arrives (with larger records the
    first archive's padding was read as the second stream's empty archive)."""
    monkeypatch.setenv("TAR_OPTIONS", "--blocking-factor=64")
    root = tmp_path / "root"
    files = make_files(root, ["a.png", "b.png", "c.png"])
    exec_source = await ExecSource.open(["sh"])
    try:
        for i, name in enumerate(files):
            got = await asyncio.wait_for(stream(exec_source, root, [name], tmp_path / f"p{i}", executor), 20)
            assert list(got) == [name]  # before: the second stream never ended
        assert exec_source.tar_shells.started == 1
    finally:
        await exec_source.close()


async def test_a_command_that_no_longer_gives_a_shell_is_the_sessions_error(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """The command gave the source its shell, then gives none (a container that stopped: `docker exec`
    says why on stderr and exits): the stream is a RemoteError with the command's words, not an archive
    that came empty (which left every file "not delivered", pass after pass, with no error shown)."""
    root = tmp_path / "root"
    make_files(root, ["a.png"])
    count = tmp_path / "count"
    command = tmp_path / "docker-ish"
    command.write_text(
        f"#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        'if [ "$n" -ge 1 ]; then echo "Error response from daemon: container 4f2a is not running" >&2; '
        "exit 1; fi\nexec sh\n"
    )
    command.chmod(0o755)
    exec_source = await ExecSource.open([str(command)])
    try:
        with pytest.raises(RemoteError, match="unreachable: Error response from daemon: container 4f2a"):
            await stream(exec_source, root, ["a.png"], tmp_path / "p", executor)
    finally:
        await exec_source.close()
    assert count.read_text() == "2\n"


async def test_a_stream_shell_cancelled_while_it_starts_is_ended(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """The session ends while a new stream shell is still starting (a slow `ssh` login): that process
    and what it started are ended with it, not left to the garbage collector."""
    root = tmp_path / "root"
    make_files(root, ["a.png"])
    count, pid = tmp_path / "count", tmp_path / "pid"
    command = tmp_path / "slow-login"
    command.write_text(
        f"#!/bin/sh\nn=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        f'if [ "$n" -ge 1 ]; then echo $$ > {pid}; sleep 60; fi\nexec sh\n'
    )
    command.chmod(0o755)
    exec_source = await ExecSource.open([str(command)])
    try:
        pulling = asyncio.create_task(stream(exec_source, root, ["a.png"], tmp_path / "p", executor))
        await until(lambda: pid.exists() and pid.read_text().strip(), within=10)
        # The login runs: let spawn() return and the probe start (a cancel inside asyncio's own spawn
        # kills only the process it started, not what that one started: a window of a few ms).
        await asyncio.sleep(0.3)
        pulling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pulling
        await group_gone(int(pid.read_text()))  # the login and its sleep: before, the sleep ran on
    finally:
        await exec_source.close()


async def group_gone(group: int, within: float = 5.0) -> None:
    """Every process of `group` has ended and been reaped (an orphan is reaped by init a moment later)."""

    def gone() -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        return False

    await until(gone, within=within)


async def test_a_stream_given_up_mid_archive_leaves_no_process_behind(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """A pull cancelled while tar still writes (its pipe full, nobody reading): closing the source ends
    the stream's whole process group, the tar that `sh` started too, not the shell alone."""
    root = tmp_path / "root"
    make_files(root, ["big.bin"], size=16 << 20)
    exec_source = await ExecSource.open(["sh"])
    shells = record_shells(exec_source)
    arrived = asyncio.Event()

    def slow(piece: int) -> None:
        arrived.set()

    pulling = asyncio.create_task(
        exec_source.pull_batch(
            str(root), {"big.bin": tmp_path / "big.part"}, executor=executor, on_member=lambda m: None,
            progress=slow, limiter=RateLimiter(1 << 20),
        )
    )  # fmt: skip
    await asyncio.wait_for(arrived.wait(), 10)
    await asyncio.sleep(0.3)  # tar has filled the pipe by now
    pulling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pulling
    await exec_source.close()
    assert len(shells) == 1
    stdout = shells[0].process._transport.get_pipe_transport(1)  # type: ignore[attr-defined]
    await until(lambda: stdout is None or stdout.is_closing(), within=5)  # paused, it never saw its end
    await group_gone(shells[0].process.pid)


@pytest.fixture
async def source(sshd: SshServer) -> AsyncIterator[SshSource]:
    """An SshSource over loopback (a fast link: streams may borrow the command channel's shell)."""
    started = await SshSource.start(await connect(sshd))
    try:
        yield started
    finally:
        await started.close()


async def test_on_a_fast_link_streams_borrow_the_command_channels_shell(
    source: SshSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """Over loopback, streams with no tar shell idle run on the command channel's shell (no exec), and
    commands run on it between them as before."""
    root = tmp_path / "root"
    names = ["a.png", "it's b.png", "c d.png"]
    files = make_files(root, names)
    assert source.tar_shells.lender is not None
    for i, name in enumerate(names):
        got = await stream(source, root, [name], tmp_path / f"p{i}", executor)
        assert got[name].sha256 == hashlib.sha256(files[name]).hexdigest()
        listing = await source.list_roots([str(root)])
        assert sorted(e.rel for e in listing.entries) == sorted(names)
    assert (source.tar_shells.started, source.tar_shells.borrowed) == (0, 3)
    assert source.shell is not None and source.shell.restarts == 0


async def test_a_stream_borrows_the_free_command_channel_rather_than_start_a_second_shell(
    source: SshSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """A shell of the connection's own is busy (another stream), none idle, the command channel free: the
    next stream runs on the command channel's shell, not on a new exec (each costs the remote its login
    shell: a +50 PNG pull on loopback 1.03 -> 0.88 s)."""
    root = tmp_path / "root"
    files = make_files(root, ["a.png"])
    busy = await source.tar_shells._shell()  # held, as by a stream still running
    try:
        got = await stream(source, root, ["a.png"], tmp_path / "p", executor)
    finally:
        busy.close()
    assert got["a.png"].sha256 == hashlib.sha256(files["a.png"]).hexdigest()
    assert (source.tar_shells.started, source.tar_shells.borrowed) == (1, 1)


async def test_a_failed_stream_on_the_borrowed_shell_leaves_the_channel_working(
    source: SshSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """tar fails on the borrowed shell (a listed file vanished) and that shell ends: the files it could
    send arrive, and the next command starts the channel a new shell and answers."""
    root = tmp_path / "root"
    make_files(root, ["a.png", "b.png"])
    got = await stream(source, root, ["a.png", "gone.png", "b.png"], tmp_path / "p1", executor)
    assert sorted(got) == ["a.png", "b.png"] and source.tar_shells.borrowed == 1
    listing = await source.list_roots([str(root)])
    assert sorted(e.rel for e in listing.entries) == ["a.png", "b.png"]
    assert source.shell is not None and source.shell.restarts == 1


async def test_a_stream_does_not_wait_for_a_busy_command_channel(
    source: SshSource, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """While a command runs on the channel, a stream starts a shell of its own rather than wait; the
    command's answer is its own."""
    root = tmp_path / "root"
    files = make_files(root, ["a.png"])
    assert source.shell is not None
    command = asyncio.create_task(source.shell.run("sleep 1; echo slept"))
    await asyncio.sleep(0.2)
    got = await asyncio.wait_for(stream(source, root, ["a.png"], tmp_path / "p", executor), 0.9)
    assert got["a.png"].sha256 == hashlib.sha256(files["a.png"]).hexdigest()
    assert (source.tar_shells.started, source.tar_shells.borrowed) == (1, 0)
    assert (await command).stdout == b"slept\n"


class Endless:
    """`data`, then nothing more and no end: a shell that waits for its next command."""

    def __init__(self, data: bytes, piece: int = 4096) -> None:
        self.data = io.BytesIO(data)
        self.piece = piece

    async def read(self, n: int = -1) -> bytes:
        chunk = self.data.read(min(n, self.piece))
        if not chunk:
            await asyncio.Event().wait()
        return chunk


def gnu_archive(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(("extra", "clean"), [(b"", True), (b"surplus", False)])
async def test_an_exact_read_stops_at_the_archives_end(
    tmp_path: Path, executor: ThreadPoolExecutor, extra: bytes, clean: bool
) -> None:
    """On a stream that does not end, reading stops at the archive's last record (it does not wait for
    more); bytes after it mean the shell is not to be reused."""
    data = gnu_archive({"a.png": b"a" * 3000, "b.png": b"b" * 20_000})
    got: list[Member] = []
    partials = {"a.png": tmp_path / "1", "b.png": tmp_path / "2"}
    result = await asyncio.wait_for(
        unpack_stream(Endless(data + extra, 4096 if not extra else len(data) + len(extra)), "/r", partials,
                      executor=executor, on_member=got.append, exact=True),
        10,
    )  # fmt: skip
    await asyncio.sleep(0)
    assert result is clean
    assert sorted(m.rel for m in got) == ["a.png", "b.png"]
    assert (tmp_path / "2").read_bytes() == b"b" * 20_000


async def test_a_thousand_long_names_fit_in_one_command(
    sshd: SshServer, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """The file list travels in the shell command (~230 KB for 1,000 names of 200 characters): the
    remote shell reads it whole and every file arrives."""
    root = tmp_path / "root"
    names = [f"{'n' * 190}-{i:05d}.png" for i in range(1000)]
    files = make_files(root, names, size=100)
    source = await SshSource.start(await connect(sshd))
    try:
        got = await stream(source, root, names, tmp_path / "parts", executor)
    finally:
        await source.close()
    assert {n: m.sha256 for n, m in got.items()} == {
        n: hashlib.sha256(d).hexdigest() for n, d in files.items()
    }


async def test_bwlimit_paces_a_tar_stream(
    sshd: SshServer, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """`bwlimit` holds for small files too: 2.5 MiB through one stream at 1 MiB/s (a 1 MiB burst allowed)
    take at least 1.5 s, and every member still arrives whole."""
    root = tmp_path / "root"
    names = [f"f{i}.png" for i in range(10)]
    files = make_files(root, names, size=256 << 10)
    partials = {name: tmp_path / "parts" / f"{i}.part" for i, name in enumerate(names)}
    got: list[Member] = []
    source = await SshSource.start(await connect(sshd))
    try:
        started = asyncio.get_running_loop().time()
        await source.pull_batch(
            str(root), partials, executor=executor, on_member=got.append, limiter=RateLimiter(1 << 20)
        )
        took = asyncio.get_running_loop().time() - started
    finally:
        await source.close()
    await asyncio.sleep(0)
    assert took >= 1.4
    assert {m.rel: m.sha256 for m in got} == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}


class _SlowWrites:
    """tar.py's `os`, with every write late: a library disk slower than the link."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: memoryview) -> int:
        time.sleep(0.003)
        return os.write(fd, data)


async def test_a_disk_slower_than_the_link_holds_the_stream_back_not_memory(
    sshd: SshServer, tmp_path: Path, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unpacking falls behind the link: what waits in this process stays within a few channel windows
    and the writer's queue. (Read 256 KB at a time, asyncssh's paused channel took a new window per
    read and held 34 MiB of these 40 MiB.)"""
    root = tmp_path / "root"
    names = [f"{i:02d}.png" for i in range(40)]
    make_files(root, names, size=1 << 20)
    monkeypatch.setattr(tar, "os", _SlowWrites())
    source = await SshSource.start(await connect(sshd))
    try:
        with peak_python_memory() as peak:
            got = await stream(source, root, names, tmp_path / "parts", executor)
    finally:
        await source.close()
    assert sorted(got) == names
    assert peak[0] < 14 << 20, f"{peak[0] / (1 << 20):.1f} MiB held at once"
