"""A remote that lies or races: an `exec` shell remote (a local `sh`) whose PATH starts with wrappers
around real tools (`rm`, `mv`, `stat`, `find`, `sha256sum`, …) that do something first, once or always.

Used by the purge race tests and the fault harness (bench/faults). Everything is real: the wrappers are
shell scripts that run the real tool after their hook; nothing in mediasyncd is replaced.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from mediasyncd.config import Config, load_config
from mediasyncd.purge.commands import purge_main
from mediasyncd.sync_once import sync_once
from tests.helpers import OLD, free_port, shm_swept


def wrap(bin_dir: Path, tool: str, hook: str, *, once: bool = True, when: str = "*") -> Path:
    """Put a `tool` on `bin_dir` that runs the sh snippet `hook` (with the tool's arguments in "$@")
    and then the real tool. With `once`, the hook runs on the first call only; `when` is a `case`
    pattern the arguments must match (e.g. '*"-cf -"*' for tar's streams, not its probe)."""
    real = shutil.which(tool, path="/usr/bin:/bin")
    if real is None:
        raise FileNotFoundError(tool)
    bin_dir.mkdir(parents=True, exist_ok=True)
    marker = bin_dir / f".{tool}.done"
    guard = f'if [ ! -e "{marker}" ]; then : > "{marker}"; {hook}\nfi' if once else hook
    path = bin_dir / tool
    path.write_text(f'#!/bin/sh\ncase "$*" in {when})\n{guard}\n;; esac\nexec {real} "$@"\n')
    path.chmod(0o755)
    return path


def replace_tool(bin_dir: Path, tool: str, script: str) -> Path:
    """Put a `tool` on `bin_dir` that is `script` (sh) alone: a liar."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / tool
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@dataclass
class ExecWorld:
    """One remote ("r1") reached through `env PATH=<bin>:… sh`, a library, a state dir and a config."""

    tmp: Path
    bin_dir: Path
    remote_root: Path
    library: Path
    state_dir: Path
    config_path: Path

    def write(self, rel: str, data: bytes, mtime: float = OLD) -> Path:
        path = self.remote_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def config(self) -> Config:
        return load_config(self.config_path)

    def landed(self) -> dict[str, bytes]:
        base = self.library / "r1"
        if not base.exists():
            return {}
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    def on_remote(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.remote_root)): p.read_bytes()
            for p in sorted(self.remote_root.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }

    def sync(self) -> int:
        config = self.config()
        return asyncio.run(sync_once(config, config.remotes, show_progress=False))

    def purge(self) -> int:
        return purge_main(self.config(), [], dry_run=False, include_deleted_locally=False)

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state_dir / "state.db") as db:
            return db.execute(query, args).fetchall()

    def reasons(self) -> dict[str, str | None]:
        rows = self.sql("SELECT rel, state, purge_reason FROM files WHERE current = 1")
        return {rel: ("purged" if state == "purged" else reason) for rel, state, reason in rows}


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime_shell(tmp: Path, offset: str) -> list[str]:
    """An exec remote's command: `exec_world`'s shell with its clock `offset` off (Debian's libfaketime,
    preloaded). Not the `faketime` wrapper: it makes a POSIX semaphore named after its PID, and one left
    in /dev/shm by a wrapper that was killed makes a later wrapper with that PID fail to start."""
    return [
        "env",
        f"LD_PRELOAD={LIBFAKETIME}",
        f"FAKETIME={offset}",
        f"PATH={tmp / 'bin'}:/usr/bin:/bin",
        "sh",
    ]


def _dead_faketime_litter(name: str) -> bool:
    """libfaketime's shared memory or semaphore, named after a PID that no longer runs."""
    prefix = next((p for p in ("faketime_shm_", "sem.faketime_sem_") if name.startswith(p)), None)
    if prefix is None or not name[len(prefix) :].isdigit():
        return False
    try:
        os.kill(int(name[len(prefix) :]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def faketime_swept() -> AbstractContextManager[None]:
    """Remove what libfaketime left in /dev/shm during the block. Preloaded (not through its wrapper),
    Debian's 0.9.10 makes a segment and a semaphore named after the first PID that loads it and never
    removes them, even on a clean exit: two files per remote shell."""
    return shm_swept(_dead_faketime_litter, wait=3.0)


def exec_world(tmp: Path, *, purge: dict[str, Any] | None = None, **remote: Any) -> ExecWorld:
    """A world whose remote is a local `sh` with `tmp/bin` first on its PATH (empty until wrapped)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    remote_root = tmp / "remote" / "outputs"
    remote_root.mkdir(parents=True)
    library = tmp / "library"
    library.mkdir()
    state_dir = tmp / "state"
    table: dict[str, Any] = {
        "name": "r1",
        "transport": "exec",
        "command": ["env", f"PATH={bin_dir}:/usr/bin:/bin", "sh"],
        "kind": "generic",
        "roots": [str(remote_root)],
        "poll_interval": "1s",
        "settle": "1s",
        "purge": {"older_than": "30m"} | (purge or {}),
    } | remote
    doc = {
        "daemon": {
            "library": str(library),
            "state_dir": str(state_dir),
            "status_listen": f"127.0.0.1:{free_port()}",
            "library_min_free": "0",
        },
        "transfer": {"concurrency": 4},
        "pipeline": {"enabled": False},
        "remotes": [table],
    }
    config_path = tmp / "config.toml"
    config_path.write_text(tomli_w.dumps(doc))
    return ExecWorld(tmp, bin_dir, remote_root, library, state_dir, config_path)
