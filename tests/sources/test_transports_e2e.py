"""`sync --once` and `purge` end to end through every new transport: a local folder, a shell behind a
command (`sh`, busybox `sh`) and Docker containers on a real dockerd, through their shell (busybox and
full userland, `files_via = "exec"`) and read from this machine (`docker-host`, the default for a local
engine)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.config import Config, load_config
from mediasyncd.purge.commands import purge_main
from mediasyncd.sync_once import sync_once
from tests.docker_engine import Engine
from tests.helpers import MEDIASYNCD, write_config

OLD = time.time() - 3600
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3 << 20)  # one by one (above batch_below)
SMALL = {f"many/{i:03d}.png": os.urandom(2000 + i) for i in range(60)}  # one tar stream
AWKWARD = {"odd/$(touch PWNED);x.png": b"1", "odd/a b'c\".png": b"2", "odd/-dash.png": b"3"}
TRANSPORTS = ["local", "exec-sh", "exec-busybox", "docker-busybox", "docker-full", "docker-host"]


@dataclass
class World:
    tmp: Path
    root: Path
    library: Path
    state_dir: Path
    config_path: Path

    def write(self, rel: str, data: bytes, mtime: float = OLD) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))

    def landed(self) -> dict[str, bytes]:
        base = self.library / "r1"
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}

    def on_source(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()}

    def config(self) -> Config:
        return load_config(self.config_path)

    def sync(self) -> int:
        config = load_config(self.config_path)
        return asyncio.run(sync_once(config, config.remotes, show_progress=False))

    def purge(self) -> int:
        return purge_main(load_config(self.config_path), [], dry_run=False, include_deleted_locally=False)

    def states(self) -> dict[str, str]:
        with sqlite3.connect(self.state_dir / "state.db") as db:
            return dict(db.execute("SELECT rel, state FROM files WHERE current = 1").fetchall())


def remote_for(request: pytest.FixtureRequest, transport: str, root: Path) -> dict[str, Any]:
    table: dict[str, Any] = {"name": "r1", "roots": [str(root)], "settle": "1s", "include": ["*.png"]}
    table["purge"] = {"older_than": "30m"}
    if transport == "local":
        return table | {"transport": "local"}
    if transport.startswith("exec-"):
        command = ["sh"] if transport == "exec-sh" else ["busybox", "sh"]
        return table | {"transport": "exec", "command": command}
    engine: Engine = request.getfixturevalue("docker_engine")
    containers: dict[str, str] = request.getfixturevalue("docker_containers")
    image = transport.removeprefix("docker-")
    table |= {"transport": "docker", "docker_host": engine.host}
    if image == "host":  # the full image, its files read from this machine
        return table | {"container": containers["full"]}
    via = {"files_via": "exec"} if image in ("busybox", "full") else {}  # "python": the agent, host path
    return table | {"container": containers[image]} | via


def make_world(request: pytest.FixtureRequest, tmp: Path, transport: str, **extra: Any) -> World:
    root = tmp / "source" / "outputs"
    root.mkdir(parents=True)
    library = tmp / "library"
    library.mkdir()
    table = remote_for(request, transport, root) | extra
    config = write_config(tmp / "config.toml", library, tmp / "state", [table], transfer={"concurrency": 8})
    return World(tmp, root, library, tmp / "state", config)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sync_once_lands_everything_verified_and_purge_deletes_only_verified_copies(
    request: pytest.FixtureRequest, tmp_path: Path, transport: str
) -> None:
    """A large file, many small ones (one stream where the source has tar) and names full of shell
    metacharacters land byte for byte; no command in a name runs; purge then empties the source and
    the library keeps every copy."""
    world = make_world(request, tmp_path, transport)
    files = {"big/00001-1.png": PNG, **SMALL, **AWKWARD}
    for rel, data in files.items():
        world.write(rel, data)
    world.write("young.png", b"y", mtime=time.time() + 60)  # not settled: neither landed nor purged
    assert world.sync() == 0
    assert world.landed() == files
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*"))
    assert not Path("PWNED").exists()
    assert world.purge() == 0
    assert world.on_source() == {"young.png"}
    assert world.landed() == files
    assert {s for rel, s in world.states().items() if rel != "young.png"} == {"purged"}


@pytest.mark.parametrize("transport", ["local", "exec-busybox", "docker-full", "docker-host"])
def test_doctor_checks_every_transport(
    request: pytest.FixtureRequest, tmp_path: Path, transport: str
) -> None:
    """`mediasyncd doctor` reaches each transport the daemon's way, names it, and checks its roots and
    tools (a busybox shell: the stat listing's whole-second mtimes are a warning, not a failure)."""
    world = make_world(request, tmp_path, transport)
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIASYNCD_CONFIG", "JOURNAL_STREAM")}
    done = subprocess.run(
        [MEDIASYNCD, "doctor", "--config", str(world.config_path)],
        capture_output=True, text=True, env=env | {"HOME": str(tmp_path)}, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert f"root {world.root}: a directory" in out, out + done.stderr
    assert "FAIL" not in out, out
    expected = {
        "local": "remote r1 (local)",
        "exec-busybox": "remote r1 (exec: busybox sh)",
        "docker-full": "remote r1 (docker container mst-full-",
        "docker-host": "remote r1 (docker container mst-full-",
    }[transport]
    assert expected in out, out
    if transport == "exec-busybox":
        assert "listings use find -exec stat" in out
    if transport == "docker-full":
        assert "find -printf: one command lists every root" in out and "tar: small files" in out
        assert 'files through docker exec: files_via = "exec"' in out
    if transport == "docker-host":
        assert "files read from this machine through the container's own root" in out
