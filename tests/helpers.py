"""Shared test helpers: configs pointing at the test sshd, remote trees, reading the sshd log."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from mediasyncd.config import Config, load_config
from mediasyncd.sync_once import sync_once
from tests.sshd import SshServer

VENV_BIN = Path(sys.executable).parent
MEDIASYNCD = str(VENV_BIN / "mediasyncd")
OLD = time.time() - 3600


@dataclass
class Env:
    """One test's world: a remote tree served by sshd, a library, a state dir and a config file."""

    tmp: Path
    server: SshServer
    remote_root: Path
    library: Path
    state_dir: Path
    config_path: Path

    def write(self, rel: str, data: bytes, mtime: float = OLD, root: Path | None = None) -> Path:
        path = (root or self.remote_root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def landed(self, remote: str = "r1") -> dict[str, bytes]:
        base = self.library / remote
        if not base.exists():
            return {}
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    def config(self) -> Config:
        return load_config(self.config_path)

    def rows(
        self, sql: str = "SELECT rel, state, local_path FROM files ORDER BY id"
    ) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state_dir / "state.db") as db:
            return db.execute(sql).fetchall()


def remote_table(server: SshServer, name: str, root: Path, **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": name,
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "identity_file": str(server.client_key),
        "known_hosts": str(server.known_hosts),
        "kind": "generic",
        "roots": [str(root)],
        "poll_interval": "1s",
        "settle": "2s",
    }
    table.update(extra)
    return table


def write_config(
    path: Path,
    library: Path,
    state_dir: Path,
    remotes: Sequence[dict[str, Any]],
    *,
    transfer: dict[str, Any] | None = None,
    daemon: dict[str, Any] | None = None,
) -> Path:
    doc: dict[str, Any] = {
        "daemon": {
            "library": str(library),
            "state_dir": str(state_dir),
            "status_listen": f"127.0.0.1:{free_port()}",
            "library_min_free": "0",
        }
        | (daemon or {}),
        "transfer": {"concurrency": 4} | (transfer or {}),
        "pipeline": {"enabled": False},
        "remotes": list(remotes),
    }
    path.write_text(tomli_w.dumps(doc))
    return path


def make_env(tmp: Path, server: SshServer, **remote_extra: Any) -> Env:
    remote_root = tmp / "remote" / "outputs"
    remote_root.mkdir(parents=True)
    library = tmp / "library"
    library.mkdir()
    state_dir = tmp / "state"
    config_path = write_config(
        tmp / "config.toml", library, state_dir, [remote_table(server, "r1", remote_root, **remote_extra)]
    )
    return Env(tmp, server, remote_root, library, state_dir, config_path)


def once(env: Env, *names: str) -> int:
    """Run `sync --once` in-process, as the CLI does."""
    config = env.config()
    remotes = [r for r in config.remotes if not names or r.name in names]
    return asyncio.run(sync_once(config, remotes, show_progress=False))


def sftp_log(server: SshServer) -> str:
    """The SFTP server's own log (from the `sshd_logged` fixture)."""
    path = server.log.parent / "sftp.log"
    return path.read_text(errors="replace") if path.exists() else ""


def opens_of(server: SshServer, path: Path) -> int:
    """How many times the SFTP server opened `path` for reading."""
    return len(re.findall(rf'open "{re.escape(str(path))}" flags READ', sftp_log(server)))


def bytes_read_of(server: SshServer, path: Path) -> list[int]:
    """Bytes read from `path` per SFTP open/close, from the server's log."""
    return [int(n) for n in re.findall(rf'close "{re.escape(str(path))}" bytes read (\d+)', sftp_log(server))]


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


async def until(predicate: Callable[[], object], within: float = 30.0, every: float = 0.02) -> float:
    """Await until `predicate()` holds (state other tasks change, which has no event to await) and return
    the seconds it took; AssertionError after `within` seconds (generous: a loaded 2-core box)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > within:
            raise AssertionError(f"condition not met within {within:g} s")
        await asyncio.sleep(every)
    return loop.time() - started


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(config_path: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`mediasyncd run` as a real child process, logging JSON lines to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [MEDIASYNCD, "run", "--config", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def shm_swept(litter: Callable[[str], bool], wait: float = 0.0) -> Iterator[None]:
    """Remove the /dev/shm names that appear during the block and `litter(name)` calls ours and dead:
    what a process killed with SIGKILL (or a library that never cleans up) leaves in shared memory.
    `wait`: seconds to look again for names whose process is still ending (an sshd session's shell)."""
    shm = Path("/dev/shm")
    before = set(os.listdir(shm))
    try:
        yield
    finally:
        deadline = time.monotonic() + wait
        while True:
            left = set(os.listdir(shm)) - before
            for name in [n for n in left if litter(n)]:
                (shm / name).unlink(missing_ok=True)
                left.discard(name)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.1)


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted over `path` (the tests run as root, as CI does): its free space is the
    test's own, whatever else writes to the machine's disks meanwhile."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


class SlowDisk(ThreadPoolExecutor):
    """An executor whose every task waits `delay` seconds first: a library disk slower than the link."""

    def __init__(self, delay: float, workers: int = 2) -> None:
        super().__init__(workers)
        self.delay = delay

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def late() -> Any:
            time.sleep(self.delay)
            return fn(*args, **kwargs)

        return super().submit(late)


@contextmanager
def peak_python_memory() -> Iterator[list[int]]:
    """The most bytes Python objects held at once inside the block (tracemalloc), in the list yielded."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
