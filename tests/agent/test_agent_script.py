"""The agent script on its own: its pure parts imported, and the script run locally as the remote runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mediasyncd.agent import mediasyncd_agent as agent
from mediasyncd.agent import script

AGENT = Path(agent.__file__)


def raw_event(wd: int, mask: int, name: bytes = b"", cookie: int = 0, pad: int = 16) -> bytes:
    padded = name + b"\0" * (pad - len(name)) if name else b""
    return agent.HEADER.pack(wd, mask, cookie, len(padded)) + padded


def test_decode_events_strips_padding() -> None:
    """A raw inotify buffer decodes into (wd, mask, cookie, name) with the NUL padding removed."""
    buf = (
        raw_event(1, agent.IN_CLOSE_WRITE, b"a.png")
        + raw_event(2, agent.IN_Q_OVERFLOW)
        + raw_event(3, agent.IN_MOVED_TO | agent.IN_ISDIR, b"dir", cookie=7, pad=32)
    )
    assert agent.decode_events(buf) == [
        (1, agent.IN_CLOSE_WRITE, 0, b"a.png"),
        (2, agent.IN_Q_OVERFLOW, 0, b""),
        (3, agent.IN_MOVED_TO | agent.IN_ISDIR, 7, b"dir"),
    ]


def test_decode_events_ignores_a_truncated_tail() -> None:
    """A buffer cut inside a header yields the complete events only."""
    buf = raw_event(1, agent.IN_CLOSE_WRITE, b"a.png") + b"\x01\x00"
    assert [e[3] for e in agent.decode_events(buf)] == [b"a.png"]


def test_message_is_one_json_line() -> None:
    """Messages are compact JSON lines; non-UTF-8 names travel as surrogate escapes."""
    line = agent.message("rescan", reason="inotify queue overflow")
    assert line == b'{"t":"rescan","reason":"inotify queue overflow"}\n'
    st = os.stat_result((0o100644, 0, 0, 1, 0, 0, 12, 0, 1700000000, 0))
    decoded = json.loads(agent.file_message(2, b"d/caf\xe9.png", st, found=True))
    assert decoded == {
        "t": "file",
        "root": 2,
        "path": "d/caf\udce9.png",
        "size": 12,
        "mtime": 1700000000,
        "found": True,
    }
    assert os.fsencode(decoded["path"]) == b"d/caf\xe9.png"


def test_blind_filesystems_are_named() -> None:
    """A root on NFS or FUSE is refused (inotify misses remote writes); ext4 and overlay are fine."""
    mountinfo = (
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "40 22 0:40 / /workspace rw - overlay overlay rw\n"
        "41 22 0:41 / /mnt/nas rw - nfs4 nas:/x rw\n"
        "42 22 0:42 / /mnt/my\\040fuse rw - fuse.sshfs host: rw\n"
    )
    assert agent.blind_fstype("/workspace/out", mountinfo) is None
    assert agent.blind_fstype("/srv", mountinfo) is None
    assert agent.blind_fstype("/mnt/nas/out", mountinfo) == "nfs4"
    assert agent.blind_fstype("/mnt/my fuse/a", mountinfo) == "fuse.sshfs"
    assert agent.blind_fstype("/mnt/nasty", mountinfo) is None


def test_script_is_the_package_data() -> None:
    """What the daemon uploads is this very file."""
    assert script() == AGENT.read_bytes()


# ------------------------------------------------------------------------------------ run locally


class Running:
    def __init__(self, *roots: Path, settle: float = 0.3) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(AGENT),
                "--heartbeat",
                "0.5",
                "--settle",
                str(settle),
                "--",
                *map(str, roots),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.hello = self.next()
        assert self.hello["t"] == "hello"

    def next(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "agent exited"
        return dict(json.loads(line))

    def until(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` messages other than heartbeats."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            m = self.next()
            if m["t"] != "hb":
                got.append(m)
        return got

    def until_path(self, path: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Messages other than heartbeats, up to the one reporting `path`."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.next()
            if m["t"] != "hb":
                got.append(m)
                if m.get("path") == path:
                    return got
        raise AssertionError(f"{path} not reported: {got}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def test_close_write_and_rename_into_place_are_complete(tmp_path: Path) -> None:
    """A file closed after writing and a file renamed into place are reported; creation alone is not."""
    run = Running(tmp_path)
    try:
        (tmp_path / "a.png").write_bytes(b"x" * 10)
        tmp = tmp_path / "b.png.tmp"
        tmp.write_bytes(b"y" * 5)
        tmp.rename(tmp_path / "b.png")
        held = (tmp_path / "c.png").open("wb")  # created, still open: not complete
        before = run.until_path("b.png")
        held.close()
        after = run.until_path("c.png")
        assert [(m["path"], m["size"]) for m in before if m["path"] != "b.png.tmp"] == [
            ("a.png", 10),
            ("b.png", 5),
        ]
        assert [(m["path"], m["size"]) for m in after] == [("c.png", 0)]
    finally:
        run.stop()


def test_new_directories_are_watched_race_free(tmp_path: Path) -> None:
    """Files written into directories created in a burst all show up, listed or seen closing."""
    run = Running(tmp_path)
    try:
        for d in range(5):
            sub = tmp_path / f"d{d}" / "deeper"
            sub.mkdir(parents=True)
            for f in range(4):
                (sub / f"{f}.png").write_bytes(b"z")
        msgs = run.until(20)
        assert sorted(m["path"] for m in msgs) == sorted(
            f"d{d}/deeper/{f}.png" for d in range(5) for f in range(4)
        )
    finally:
        run.stop()


def test_exits_at_eof_on_stdin(tmp_path: Path) -> None:
    """Closing the agent's stdin (the channel) ends it at once."""
    run = Running(tmp_path)
    assert run.proc.stdin is not None
    run.proc.stdin.close()
    try:
        assert run.proc.wait(timeout=5) == 0
    finally:
        run.stop()


def test_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """Its parent gone (the sshd session killed), the agent exits within a heartbeat or two."""
    shell = subprocess.Popen(
        [
            "sh",
            "-c",
            f"{sys.executable} {AGENT} --heartbeat 0.5 -- {tmp_path} </dev/zero >/dev/null & echo $!; wait",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert shell.stdout is not None
    pid = int(shell.stdout.readline())
    time.sleep(0.5)
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    shell.stdout.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    alive = Path(f"/proc/{pid}").exists()
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive


def test_missing_root_reported_and_watched_once_it_appears(tmp_path: Path) -> None:
    """A root missing at start is named in hello; files in it are reported once it exists."""
    root = tmp_path / "later"
    run = Running(root, settle=0.2)
    try:
        assert run.hello["missing"] == [0]
        root.mkdir()
        (root / "a.png").write_bytes(b"a")
        [m] = run.until(1)
        assert (m["root"], m["path"]) == (0, "a.png")
    finally:
        run.stop()


def test_script_parses_as_python_3_8() -> None:
    """The remote may have Python 3.8: the script uses no newer syntax."""
    import ast

    ast.parse(script(), feature_version=(3, 8))
