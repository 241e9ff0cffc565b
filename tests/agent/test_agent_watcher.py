"""AgentWatcher over the real sshd with agents that misbehave (error-injecting scripts), and the pure
protocol parser."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediasyncd.config import RemoteConfig
from mediasyncd.sources import RemoteEntry
from mediasyncd.sources.ssh.source import SshSource
from mediasyncd.watchers.agent import AgentWatcher, read_batch
from mediasyncd.watchers.agent_protocol import (
    Bad,
    Failed,
    FileDone,
    Heartbeat,
    Hello,
    Rescan,
    check_answer,
    check_command,
    parse_line,
)
from mediasyncd.watchers.base import Sighting
from tests.sshd import SshServer, connect

ROOTS = ["/r/out"]


def test_parse_file_event() -> None:
    """A file event becomes a RemoteEntry under the root it names."""
    msg = parse_line(b'{"t":"file","root":0,"path":"a/b.png","size":3,"mtime":1.5}', ROOTS)
    assert msg == FileDone(RemoteEntry("/r/out", "a/b.png", 3, 1.5), False)
    assert parse_line(b'{"t":"hb","ts":1}', ROOTS) == Heartbeat()
    assert parse_line(b'{"t":"rescan","reason":"x"}', ROOTS) == Rescan("x")
    assert parse_line(b'{"t":"hello","v":"1","pid":5,"python":"3.8.1","missing":[]}', ROOTS) == Hello(
        5, "1", "3.8.1", ()
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"Traceback (most recent call last):", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"t":"file","root":0,"path":"../../etc/passwd","size":1,"mtime":1}', "unsafe path"),
        (b'{"t":"file","root":0,"path":"/etc/passwd","size":1,"mtime":1}', "unsafe path"),
        (b'{"t":"file","root":0,"path":"a\\u0007b.png","size":1,"mtime":1}', "unsafe path"),
        (b'{"t":"file","root":0,"path":"caf\\udce9.png","size":1,"mtime":1}', "unsafe path"),
        (b'{"t":"file","root":3,"path":"a.png","size":1,"mtime":1}', "unknown root"),
        (b'{"t":"file","root":0,"path":"a.png","size":-1,"mtime":1}', "malformed"),
        (b'{"t":"file","root":0,"path":"a.png","size":1,"mtime":"NaN"}', "malformed"),
        (b'{"t":"launch","x":1}', "unknown message"),
    ],
)
def test_untrusted_lines_are_bad(line: bytes, kind: str) -> None:
    """Lines the daemon cannot trust are `Bad`, with the kind it logs once."""
    msg = parse_line(line, ROOTS)
    assert isinstance(msg, Bad) and msg.kind == kind


def test_read_batch_filters_dedupes_and_collects_requests() -> None:
    """Files the globs refuse cost nothing; the last event per file wins; rescans and fatal errors are
    picked out; untrusted lines are kept for logging."""
    e1, e2 = RemoteEntry("/r/out", "a.png", 1, 1.0), RemoteEntry("/r/out", "a.png", 2, 2.0)
    reading = read_batch(
        [
            FileDone(e1, False),
            FileDone(RemoteEntry("/r/out", "a.png.tmp", 1, 1.0), False),
            FileDone(e2, False),
            Rescan("inotify queue overflow"),
            Heartbeat(),
            Bad("malformed", "x"),
            Failed("inotify watch limit reached", fatal=True, retry=True),
        ],
        lambda rel: rel.endswith(".png"),
    )
    assert list(reading.entries.values()) == [e2]
    assert reading.rescan == "inotify queue overflow"
    assert reading.failed is not None and reading.failed.retry
    assert [b.kind for b in reading.bad] == ["malformed"]


def test_check_command_in_a_real_shell(tmp_path: Path) -> None:
    """The install check says `no-python` where sh finds no python3, and `upload` where it does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "cat"):
        (bin_dir / tool).symlink_to(
            subprocess.check_output(["sh", "-c", f"command -v {tool}"]).strip().decode()
        )
    env = {"PATH": str(bin_dir), "XDG_RUNTIME_DIR": str(tmp_path)}
    out = subprocess.run(["/bin/sh", "-c", check_command(b"x")], capture_output=True, env=env, check=True)
    assert check_answer(out.stdout) == "no-python"
    env["PATH"] = "/usr/bin:/bin"
    out = subprocess.run(["/bin/sh", "-c", check_command(b"x")], capture_output=True, env=env, check=True)
    assert check_answer(out.stdout) == "upload"


# ------------------------------------------------------------------------------ misbehaving agents

LIAR = r"""
import json, sys, time, select
def say(**m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
say(t="hello", v="liar", pid=1, python="3", missing=[])
say(t="file", root=0, path="../../escape.png", size=1, mtime=1)
say(t="file", root=0, path="/etc/passwd.png", size=1, mtime=1)
say(t="file", root=7, path="a.png", size=1, mtime=1)
say(t="file", root=0, path="good.png", size=4, mtime=1)
for i in range(40):
    sys.stdout.write("garbage %d\n" % i)
sys.stdout.flush()
while select.select([sys.stdin], [], [], 1)[0] == [] or sys.stdin.read(1):
    say(t="hb", ts=time.time())
"""

SILENT = r"""
import json, sys
sys.stdout.write(json.dumps({"t": "hello", "v": "mute", "pid": 1, "python": "3", "missing": []}) + "\n")
sys.stdout.flush()
sys.stdin.read()
"""


def remote_for(root: Path) -> RemoteConfig:
    return RemoteConfig(name="r1", host="x", roots=(str(root),), settle=0.0, poll_interval=0.2)


@pytest.fixture
async def source(sshd: SshServer) -> AsyncIterator[SshSource]:
    src = await SshSource.start(await connect(sshd))
    try:
        yield src
    finally:
        await src.close()


async def collect(watcher: AgentWatcher, until: str, limit: float = 30.0) -> list[Sighting]:
    """Sightings until the watcher's mode is `until`."""
    seen: list[Sighting] = []
    gen = watcher.sightings()
    try:
        async with asyncio.timeout(limit):
            async for s in gen:
                seen.append(s)
                if watcher.mode == until:
                    return seen
    finally:
        await gen.aclose()  # type: ignore[attr-defined]
    return seen


async def test_malformed_agent_output_falls_back_to_poll(tmp_path: Path, source: SshSource) -> None:
    """Lies and garbage from an agent: nothing unsafe reaches a sighting; too much of it and we poll."""
    root = tmp_path / "out"
    root.mkdir()
    (root / "good.png").write_bytes(b"good")
    watcher = AgentWatcher(source, remote_for(root), list, script=LIAR.encode())
    seen = await collect(watcher, until="poll")
    assert watcher.mode == "poll" and watcher.reason and "cannot be trusted" in watcher.reason
    rels = {e.rel for s in seen for e in s.entries}
    assert rels == {"good.png"}
    assert all(e.root == str(root) for s in seen for e in s.entries)


async def test_missing_heartbeat_is_a_lost_agent(tmp_path: Path, source: SshSource) -> None:
    """An agent that says hello and then nothing is dropped after the heartbeat timeout: poll."""
    root = tmp_path / "out"
    root.mkdir()
    watcher = AgentWatcher(source, remote_for(root), list, script=SILENT.encode(), heartbeat=0.5)
    await collect(watcher, until="poll", limit=20)
    assert watcher.reason is not None and "no heartbeat" in watcher.reason
