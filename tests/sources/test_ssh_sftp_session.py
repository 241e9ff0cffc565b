"""The SSH source starts its SFTP session only when something needs it (sources/ssh/sftp_session.py),
against the real sshd whose sftp-server logs each session it serves."""

from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.errors import RemoteError
from mediasyncd.sources.ssh.source import SshSource
from tests.helpers import sftp_log, until
from tests.sshd import SshServer, connect, session_pids, start_sshd


def sftp_sessions(server: SshServer) -> int:
    """How many SFTP sessions the server's sftp-server started (one log line each)."""
    return sftp_log(server).count("session opened for local user")


async def test_listing_and_hashing_start_no_sftp_session(sshd_logged: SshServer, tmp_path: Path) -> None:
    """A remote with a shell is listed and hashed through its command channel: a nothing-new pass opens
    no SFTP session on the remote (each costs the login shell's start-up there)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.png").write_bytes(b"a" * 1000)
    source = await SshSource.start(await connect(sshd_logged))
    try:
        listing = await source.list_roots([str(root)])
        hashes = await source.sha256([str(root / "a.png")])
    finally:
        await source.close()
    assert [e.rel for e in listing.entries] == ["a.png"]
    assert hashes == {str(root / "a.png"): hashlib.sha256(b"a" * 1000).hexdigest()}
    assert sftp_sessions(sshd_logged) == 0


async def test_pulls_share_one_sftp_session_started_on_the_first(
    sshd_logged: SshServer, tmp_path: Path
) -> None:
    """Pulls that need SFTP, even several at once, start one session between them, and get their bytes."""
    data = {f"{i}.png": os.urandom(5000 + i) for i in range(4)}
    for name, body in data.items():
        (tmp_path / name).write_bytes(body)
    source = await SshSource.start(await connect(sshd_logged))
    try:
        with ThreadPoolExecutor(2) as pool:
            digests = await asyncio.gather(
                *(
                    source.pull(
                        str(tmp_path / n), tmp_path / f"{n}.part", size=len(b), mtime=0.0, executor=pool
                    )
                    for n, b in data.items()
                )
            )
    finally:
        await source.close()
    assert digests == [hashlib.sha256(b).hexdigest() for b in data.values()]
    await until(lambda: "session closed" in sftp_log(sshd_logged), within=10)
    assert sftp_sessions(sshd_logged) == 1


async def test_a_refused_sftp_session_fails_the_pull_and_leaves_no_session(tmp_path: Path) -> None:
    """Where the SFTP subsystem cannot start, what needs it fails with RemoteError (the connection's
    problem: the session ends and is retried), every time, and closing leaves no session on the server."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.png").write_bytes(b"a" * 5000)
    with start_sshd(tmp_path / "sshd", extra_config="Subsystem sftp /bin/false\n") as server:
        for _ in range(3):
            source = await SshSource.start(await connect(server))
            try:
                listing = await source.list_roots([str(root)])
                with ThreadPoolExecutor(1) as pool, pytest.raises(RemoteError, match="SFTP unavailable"):
                    await source.pull(str(root / "a.png"), tmp_path / "a.part", size=5000, mtime=0.0,
                                      executor=pool)  # fmt: skip
            finally:
                await source.close()
            assert [e.rel for e in listing.entries] == ["a.png"]
        await until(lambda: session_pids(server) == [], within=10)
