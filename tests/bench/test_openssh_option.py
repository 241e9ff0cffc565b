"""The benchmark's `openssh` option (bench/tools.py): mediasyncd reaches the real sshd through OpenSSH's
`ssh` as an exec source's command, and its pull lands every file whole (bench.memory's second row)."""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

from bench.endpoints import loopback_endpoint
from bench.tools import Mediasyncd, MediasyncdOptions


def test_a_pull_through_openssh_lands_every_file_whole(tmp_path: Path) -> None:
    source = tmp_path / "outputs"
    files = {f"day {i // 3}/{i}.png": os.urandom(20_000 + i) for i in range(7)}
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
        os.utime(source / rel, (1_700_000_000, 1_700_000_000))  # settled long ago
    with loopback_endpoint(tmp_path / "sshd") as endpoint:
        tool = Mediasyncd(endpoint, source, tmp_path / "work", MediasyncdOptions(openssh=True))
        remote = tomllib.loads(tool.config.read_text())["remotes"][0]
        assert remote["transport"] == "exec" and remote["command"][0] == "ssh" and "host" not in remote
        stats = tool.pull(120)
    landed = {p.relative_to(tool.dest).as_posix(): p.read_bytes() for p in tool.dest.rglob("*.png")}
    assert {rel: hashlib.sha256(b).digest() for rel, b in landed.items()} == {
        rel: hashlib.sha256(b).digest() for rel, b in files.items()
    }
    assert stats.maxrss_mb > 0
