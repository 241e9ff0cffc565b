"""The remote agent over an exec transport: the shell behind the command (`sh` here, `docker exec -i …
sh` in life) runs it as it runs over SSH — sub-second arrivals, and no agent left once the daemon stops."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import start_daemon, stop, wait_for
from tests.procs import processes
from tests.sources.test_transports_e2e import make_world


def _status(config: Path) -> dict[str, Any]:
    port = next(line for line in config.read_text().splitlines() if line.startswith("status_listen"))
    with urllib.request.urlopen(f"http://{port.split('=')[1].strip().strip(chr(34))}/status", timeout=5) as r:
        result: dict[str, Any] = json.load(r)
        return result


def _watch_mode(config: Path) -> str | None:
    try:
        mode: str | None = _status(config)["remotes"][0]["watch_mode"]
        return mode
    except (OSError, IndexError):  # not serving yet, or serving before the remote is registered
        return None


def _agents_for(root: Path) -> list[int]:
    """PIDs of agent processes watching `root` (this test's own)."""
    return processes(
        lambda argv: (
            any(b"mediasyncd-agent" in a for a in argv) and any(str(root).encode() in a for a in argv)
        )
    )


def test_the_agent_runs_over_an_exec_shell(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    world = make_world(request, tmp_path, "exec-sh", poll_interval="30s", watch="agent")
    proc = start_daemon(world.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: _watch_mode(world.config_path) == "agent", timeout=30)
        started = time.monotonic()
        world.write("new/a.png", os.urandom(50_000), mtime=time.time())
        wait_for(lambda: "new/a.png" in world.landed(), timeout=10)
        assert time.monotonic() - started < 5  # the poll interval is 30 s: only the agent is this quick
        assert _agents_for(world.root)
    finally:
        assert stop(proc) == 0
    wait_for(lambda: not _agents_for(world.root), timeout=10)


def test_the_agent_runs_inside_a_docker_container_that_has_python3(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """`docker exec -i <container> sh` into a container with python3 (Debian's, bound in): the daemon
    installs and runs the agent there — sub-second arrivals although the poll interval is 30 s — and the
    agent ends with the daemon. (A container without python3 polls, with the reason in /status.)"""
    world = make_world(request, tmp_path, "docker-python", poll_interval="30s", watch="auto")
    proc = start_daemon(world.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: _watch_mode(world.config_path) == "agent", timeout=40)
        started = time.monotonic()
        world.write("new/b.png", os.urandom(80_000), mtime=time.time())
        wait_for(lambda: "new/b.png" in world.landed(), timeout=10)
        assert time.monotonic() - started < 5
        assert world.landed()["new/b.png"] == (world.root / "new/b.png").read_bytes()
        assert _agents_for(world.root)  # running inside the container, seen from the host's /proc
    finally:
        assert stop(proc) == 0
    wait_for(lambda: not _agents_for(world.root), timeout=10)
