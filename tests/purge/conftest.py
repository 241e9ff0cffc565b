"""Helpers for purge tests: a synced world (remote tree, library, state DB) on the real OpenSSH sshd."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from mediasyncd.purge.commands import purge_main
from tests.helpers import Env, remote_table, write_config
from tests.sshd import SshServer


def purge_env(tmp: Path, server: SshServer, *, purge: dict[str, Any] | None = None, **remote: Any) -> Env:
    """A one-remote world ("r1") whose remote purge table is `purge` (older_than 30m unless given)."""
    remote_root = tmp / "remote" / "outputs"
    remote_root.mkdir(parents=True)
    library = tmp / "library"
    library.mkdir()
    state_dir = tmp / "state"
    table = remote_table(server, "r1", remote_root, **remote)
    table["purge"] = {"older_than": "30m"} | (purge or {})
    config_path = write_config(tmp / "config.toml", library, state_dir, [table])
    return Env(tmp, server, remote_root, library, state_dir, config_path)


def purge(env: Env, *, dry_run: bool = False, include_deleted_locally: bool = False) -> int:
    """`mediasyncd purge` in-process, as the CLI calls it."""
    return purge_main(env.config(), [], dry_run=dry_run, include_deleted_locally=include_deleted_locally)


def on_remote(env: Env) -> set[str]:
    """Files under the remote root, relative to it."""
    return {str(p.relative_to(env.remote_root)) for p in env.remote_root.rglob("*") if p.is_file()}


def reasons(env: Env) -> dict[str, str | None]:
    """rel -> the state, or the recorded purge reason of a kept file."""
    with sqlite3.connect(env.state_dir / "state.db") as db:
        rows = db.execute("SELECT rel, state, purge_reason FROM files WHERE current = 1").fetchall()
    return {rel: ("purged" if state == "purged" else reason) for rel, state, reason in rows}


def listed(output: str, verb: str) -> set[str]:
    """Remote paths the CLI printed after `<remote>: <verb> `."""
    out = set()
    for line in output.splitlines():
        _, sep, rest = line.partition(f": {verb} ")
        if sep and rest.startswith("/"):
            out.add(rest.split(" (", 1)[0])
    return out
