"""The long-lived remote shell over the real sshd: output far larger than the SSH channel window (a
listing of a big tree) comes through whole, and the channel stays in step for the next command; a shell
that stops answering (over SSH or an exec command) is given up."""

from __future__ import annotations

import fcntl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediasyncd.errors import RemoteError
from mediasyncd.sources import framed
from mediasyncd.sources.exec.process import PIPE_SIZE, STDERR_KEPT, ByteProcess, ShellProcess
from mediasyncd.sources.framed import ShellHung
from mediasyncd.sources.ssh.source import SshSource
from tests.sshd import SshServer, connect

WINDOW = 2 * 1024 * 1024  # asyncssh's default channel window: what a single readuntil could buffer


@pytest.fixture
async def host(sshd: SshServer) -> AsyncIterator[SshSource]:
    conn = await connect(sshd)
    remote = await SshSource.start(conn)
    yield remote
    await remote.close()


async def test_output_larger_than_the_channel_window_arrives_whole(host: SshSource) -> None:
    assert host.shell is not None
    big = 3 * WINDOW + 12_345
    result = await host.shell.run(
        f"head -c {big} /dev/zero | tr '\\0' o; head -c {WINDOW + 7} /dev/zero >&2; (exit 3)"
    )
    assert result.exit_status == 3
    assert result.stdout == b"o" * big
    assert result.stderr == b"\0" * (WINDOW + 7)
    after = await host.shell.run("printf 'still %s' in-step")
    assert (after.exit_status, after.stdout, after.stderr) == (0, b"still in-step", b"")


async def test_a_tree_whose_listing_exceeds_the_channel_window_is_listed(
    tmp_path: Path, host: SshSource
) -> None:
    root = tmp_path / "outputs"
    names = [f"2026-11-{day:02d}/ComfyUI_{n:05d}_.png" for day in range(1, 11) for n in range(2_500)]
    for day in range(1, 11):
        (root / f"2026-11-{day:02d}").mkdir(parents=True)
    for name in names:
        (root / name).touch()
    assert len(names) * len(str(root) + names[0]) > WINDOW  # find prints the full path of each
    listing = await host.list_roots([str(root)])
    assert listing.method == "find"
    assert sorted(e.rel for e in listing.entries) == sorted(names)
    assert all(e.size == 0 for e in listing.entries)


@pytest.mark.parametrize("carrier", ["ssh", "exec"])
async def test_a_flood_on_a_commands_stderr_is_read_past_not_kept(carrier: str, sshd: SshServer) -> None:
    """A command that writes more than 16 MiB on stderr (a remote's flood of messages) answers as any
    other: its stdout whole, the start of its stderr, the channel in step for the next command; memory
    for the rest is not taken."""
    if carrier == "ssh":
        source = await SshSource.start(await connect(sshd))
        assert source.shell is not None
        run, close = source.shell.run, source.close
    else:
        shell, _ = await ShellProcess.start(["sh"])
        run, close = shell.run, shell.aclose
    flood = framed.STDERR_KEPT + 3 * WINDOW
    try:
        result = await run(f"printf first >&2; head -c {flood} /dev/zero | tr '\\0' e >&2; printf answer")
        assert (result.exit_status, result.stdout) == (0, b"answer")
        assert result.stderr.startswith(b"first" + b"e" * 1000)
        assert (
            framed.STDERR_KEPT
            <= len(result.stderr)
            <= framed.STDERR_KEPT + framed.READ_CHUNK + framed.SENTINEL_SPAN
        )
        after = await run("printf still; printf quiet >&2")
        assert (after.stdout, after.stderr) == (b"still", b"quiet")
    finally:
        await close()


@pytest.mark.parametrize("carrier", ["ssh", "exec"])
async def test_a_shell_that_stops_answering_is_closed_and_never_answers_the_next_command(
    carrier: str, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command whose shell sends nothing for the idle limit (a wedged container) fails as a RemoteError
    instead of holding the remote forever; the shell is closed, so its late output cannot be taken as the
    answer to a later command."""
    if carrier == "ssh":
        conn = await connect(sshd)
        source = await SshSource.start(conn)
        assert source.shell is not None
        run, close = source.shell.run, source.close
    else:
        shell, _ = await ShellProcess.start(["sh"])
        run, close = shell.run, shell.aclose
    monkeypatch.setattr(framed, "IDLE_TIMEOUT", 0.5)  # after the start: its probe may be slow on a busy box
    try:
        assert (await run("printf ok")).stdout == b"ok"
        started = time.monotonic()
        with pytest.raises(ShellHung, match="stopped answering"):
            await run("sleep 3; printf late")
        assert time.monotonic() - started < 2.5
        with pytest.raises(RemoteError):
            await run("printf next")
    finally:
        await close()


async def test_an_exec_commands_stdout_pipe_is_grown_and_its_stderr_kept_as_asked() -> None:
    """A byte stream's pipe holds 1 MiB (a wake-up reads up to 256 KiB, not 64 KiB); its stderr is kept
    to `keep` bytes: whole where the script answers there (a stream's hashes), and an answer longer than
    `keep` (a hostile remote's endless stderr) is no answer: the memory it may take is bounded."""
    script = "head -c 3000000 /dev/zero; head -c 10000 /dev/zero | tr '\\0' e >&2"
    for keep, said in ((STDERR_KEPT, None), (10_000, b"e" * 10_000)):
        reader = await ByteProcess.start(["sh"], script, keep=keep)
        pipe = reader.process._transport.get_pipe_transport(1).get_extra_info("pipe")  # type: ignore[attr-defined]
        assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_SIZE
        got = 0
        while chunk := await reader.read(1 << 22):
            got += len(chunk)
        assert got == 3_000_000
        assert await reader.said() == said
        assert len(reader.stderr) <= keep + 1
        await reader.close()
    failing = await ByteProcess.start(["sh"], "echo why >&2; exit 3", keep=1000)
    assert await failing.read() == b""
    assert await failing.said() is None  # a failed command's stderr is not an answer
    await failing.close()
