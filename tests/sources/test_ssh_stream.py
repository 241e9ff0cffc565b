"""Large files over an exec channel (`transfer.stream_above`), against the real sshd: what the Source
contract does not already cover for that path (tests/sources/test_contract.py runs it as `ssh-stream`)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.config import TransferConfig
from mediasyncd.errors import RemoteError, RemoteFileChanged
from mediasyncd.sources.ssh import stream as ssh_stream
from mediasyncd.sources.ssh.source import SshSource
from mediasyncd.sources.ssh.stream import read_command
from tests.helpers import SlowDisk, opens_of, peak_python_memory
from tests.sshd import SshServer, connect, cut_link, start_sshd

MB = 1 << 20
EXEC = TransferConfig(stream_above=MB, large_files="exec")


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def test_the_read_command_quotes_the_path_and_resumes_past_the_offset() -> None:
    """The path is one shell word whatever it holds; a resume starts at the byte after the offset."""
    assert read_command("/r/a b'c.png", 0) == (
        "[ -f '/r/a b'\"'\"'c.png' ] || exit 44; exec cat -- '/r/a b'\"'\"'c.png' 2>/dev/null"
    )
    assert "tail -c +1025 -- /r/x.png" in read_command("/r/x.png", 1024)


async def test_a_name_with_quotes_and_spaces_arrives_whole(
    sshd: SshServer, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """A file whose name needs quoting in a shell comes over the exec channel byte for byte."""
    data = os.urandom(2 * MB + 7)
    remote = tmp_path / "root" / "it's a $HOME `x`.png"
    remote.parent.mkdir()
    remote.write_bytes(data)
    source = await SshSource.start(await connect(sshd), EXEC)
    try:
        partial = tmp_path / "p.part"
        digest = await source.pull(str(remote), partial, size=len(data), mtime=0.0, executor=executor)
    finally:
        await source.close()
    assert partial.read_bytes() == data and digest == hashlib.sha256(data).hexdigest()


async def test_a_file_that_grew_is_a_change_and_its_partial_is_dropped(
    sshd: SshServer, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """More bytes than listed means another version: RemoteFileChanged, and no partial is kept."""
    remote = tmp_path / "grown.bin"
    remote.write_bytes(os.urandom(3 * MB))
    source = await SshSource.start(await connect(sshd), EXEC)
    partial = tmp_path / "grown.part"
    try:
        with pytest.raises(RemoteFileChanged):
            await source.pull(str(remote), partial, size=2 * MB, mtime=0.0, executor=executor)
    finally:
        await source.close()
    assert not partial.exists()


async def test_a_connection_lost_mid_file_ends_the_session_and_keeps_the_partial(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """The remote's sshd dies during the read: a RemoteError (the session's, not the file's), and the
    bytes already written stay in the partial for a resume."""
    remote = tmp_path / "big.bin"
    remote.write_bytes(os.urandom(64 * MB))
    with start_sshd(tmp_path / "sshd") as server:
        source = await SshSource.start(await connect(server), EXEC)
        partial = tmp_path / "big.part"
        killed = False

        def progress(done: int) -> None:
            nonlocal killed
            if done >= 4 * MB and not killed:
                killed = cut_link(server) > 0

        try:
            with pytest.raises(RemoteError):
                await source.pull(
                    str(remote), partial, size=64 * MB, mtime=0.0, executor=executor, progress=progress
                )
        finally:
            await source.close()
    assert killed and 0 < partial.stat().st_size < 64 * MB


async def test_a_remote_without_a_shell_still_pulls_over_sftp(
    sshd_sftp_only: SshServer, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    """`stream_above` needs a shell and a hasher on the remote: an SFTP-only host pulls over SFTP."""
    data = os.urandom(2 * MB)
    remote = tmp_path / "f.bin"
    remote.write_bytes(data)
    source = await SshSource.start(
        await connect(sshd_sftp_only), TransferConfig(stream_above=1, large_files="exec")
    )
    try:
        assert source.shell is None
        digest = await source.pull(
            str(remote),
            tmp_path / "f.part",
            size=len(data),
            mtime=os.stat(remote).st_mtime,
            executor=executor,
        )
    finally:
        await source.close()
    assert digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("large_files", "fast_link", "over_sftp"),
    [
        ("auto", 0.005, False),
        ("auto", 0.0, True),
        ("sftp", 0.005, True),
        ("exec", 0.0, False),
        (None, 0.005, False),  # the default is "auto"
        (None, 0.0, True),
    ],
)
async def test_auto_takes_the_exec_channel_on_a_fast_link_only(
    sshd_logged: SshServer,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
    large_files: str | None,
    fast_link: float,
    over_sftp: bool,
) -> None:
    """`large_files = "auto"` pulls a large file over the exec channel when the measured round trip is
    within FAST_LINK (loopback is; with a limit of 0 it is not), else over SFTP; "sftp" and "exec" force
    one way; unset, it is "auto". Small files always come over SFTP."""
    monkeypatch.setattr(ssh_stream, "FAST_LINK", fast_link)
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(2 * MB))
    small.write_bytes(os.urandom(MB // 2))
    transfer = TransferConfig(stream_above=MB)
    if large_files is not None:
        transfer = dataclasses.replace(transfer, large_files=large_files)  # type: ignore[arg-type]
    source = await SshSource.start(await connect(sshd_logged), transfer)
    try:
        for path in (big, small):
            mtime = os.stat(path).st_mtime
            await source.pull(str(path), tmp_path / f"{path.name}.part", size=path.stat().st_size, mtime=mtime,
                              executor=executor)  # fmt: skip
    finally:
        await source.close()
    assert (tmp_path / "big.bin.part").read_bytes() == big.read_bytes()
    assert opens_of(sshd_logged, big) == (1 if over_sftp else 0)
    assert opens_of(sshd_logged, small) == 1


async def test_a_disk_slower_than_the_link_holds_the_remote_back_not_memory(
    sshd: SshServer, tmp_path: Path
) -> None:
    """The library's disk takes each write late: what waits in this process stays within a few channel
    windows. (asyncssh grants the sender a whole new window each time reading resumes, whatever it still
    holds unread: reading 1 MiB at a time let 23 MiB of this 40 MiB file pile up here.)"""
    remote = tmp_path / "root" / "big.mp4"
    remote.parent.mkdir()
    remote.write_bytes(os.urandom(40 * MB))
    source = await SshSource.start(await connect(sshd), EXEC)
    try:
        with SlowDisk(0.03) as disk, peak_python_memory() as peak:
            digest = await source.pull(
                str(remote), tmp_path / "p.part", size=40 * MB, mtime=0.0, executor=disk
            )
    finally:
        await source.close()
    assert digest == hashlib.sha256(remote.read_bytes()).hexdigest()
    assert peak[0] < 14 * MB, f"{peak[0] / MB:.1f} MiB held at once"
