"""A library that is not there yet (a NAS that mounts late at boot) does not kill the daemon: it stays up,
says why in /status and the log, and starts when the library appears. An empty mount point where files
landed before (no `.mediasyncd` folder) counts as not there, so nothing fills the root disk."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from mediasyncd.daemon import Daemon
from mediasyncd.errors import LibraryUnavailable
from tests.helpers import Env, make_env, once, until
from tests.sshd import SshServer

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 3000


def status(env: Env) -> dict[str, Any]:
    port = env.config().daemon.status_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


async def serve_until_landed(env: Env, appear: Path) -> list[MutableMapping[str, Any]]:
    """Run the daemon with the library missing: check /status while it waits, make `appear`, wait for
    the file to land; the log lines captured meanwhile."""
    daemon = Daemon(env.config(), library_check_every=0.2)
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(daemon.run())
        try:
            await until(lambda: daemon.started.is_set() and daemon.library_problem is not None)
            waiting = await asyncio.to_thread(status, env)
            assert waiting["library"]["available"] is False
            assert "is the NAS mounted?" in waiting["library"]["reason"]
            [remote] = waiting["remotes"]
            assert remote["paused"] == waiting["library"]["reason"]
            assert env.landed() == {}
            await asyncio.to_thread(appear.mkdir)
            await until(lambda: env.landed().get("a.png") == PNG)
            assert (await asyncio.to_thread(status, env))["library"] == {
                "path": str(env.library),
                "available": True,
                "reason": None,
            }
        finally:
            daemon.stop.set()
            await running
    return logs


async def test_the_daemon_waits_for_a_missing_library_and_starts_when_it_appears(
    tmp_path: Path, sshd: SshServer
) -> None:
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    env.write("a.png", PNG)
    env.library.rmdir()
    logs = await serve_until_landed(env, env.library)
    events = [e["event"] for e in logs]
    assert events.count("library unavailable; waiting for it, nothing is transferred") == 1
    assert "library available; starting" in events


async def test_an_empty_mount_point_where_files_landed_before_is_not_the_library(
    tmp_path: Path, sshd: SshServer
) -> None:
    """The NAS is unmounted: its mount point is an empty folder. Files landed before, so the daemon
    waits for the `.mediasyncd` folder (the NAS mounted) rather than writing to the root disk."""
    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    env.write("old.png", PNG)
    assert await asyncio.to_thread(once, env) == 0
    shutil.rmtree(env.library)
    env.library.mkdir()  # the bare mount point
    env.write("a.png", PNG)
    try:
        await asyncio.to_thread(once, env)
    except LibraryUnavailable as exc:
        assert "has no .mediasyncd folder, though 1 file(s) landed" in str(exc)
    else:
        raise AssertionError("sync --once wrote into a bare mount point")
    logs = await serve_until_landed(env, env.library / ".mediasyncd")
    assert any(e["event"] == "library available; starting" for e in logs)
