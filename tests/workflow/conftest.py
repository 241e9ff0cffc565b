"""Helpers for workflow tests: a world with a `local` source, a library, a state DB and an archive
destination on a second real path."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from mediasyncd.config import Config, load_config
from mediasyncd.sync_once import sync_once
from mediasyncd.workflow_cli import run_main
from tests.helpers import write_config

OLD = time.time() - 3600


def set_workflow(config_path: Path, workflow: dict[str, Any], pipeline: dict[str, Any] | None = None) -> None:
    """Give the config at `config_path` this `[workflow]` (and `[pipeline]`) table."""
    doc = tomllib.loads(config_path.read_text())
    doc["workflow"] = workflow
    if pipeline is not None:
        doc["pipeline"] = pipeline
    config_path.write_text(tomli_w.dumps(doc))


@dataclass
class World:
    tmp: Path
    source: Path
    library: Path
    state_dir: Path
    nas: Path
    config_path: Path

    def write(self, rel: str, data: bytes) -> Path:
        path = self.source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (OLD, OLD))
        return path

    def config(self) -> Config:
        return load_config(self.config_path)

    def sync(self) -> int:
        config = self.config()
        return asyncio.run(sync_once(config, config.remotes, show_progress=False))

    def run(self, *paths: str, dry_run: bool = False) -> int:
        return run_main(self.config(), first=None, last=None, dry_run=dry_run, paths=paths)

    def stages(self) -> dict[str, tuple[str, str | None]]:
        """rel -> (archive state, last error)."""
        with sqlite3.connect(self.state_dir / "state.db") as db:
            rows = db.execute(
                "SELECT f.rel, s.state, s.last_error FROM file_stages s JOIN files f ON f.id = s.file_id "
                "WHERE s.stage = 'archive'"
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def staged_events(self) -> list[str]:
        with sqlite3.connect(self.state_dir / "state.db") as db:
            rows = db.execute("SELECT path FROM events WHERE type = 'file_staged' ORDER BY id").fetchall()
        return [r[0] for r in rows]


def make_world(tmp: Path, *, pipeline: dict[str, Any] | None = None, **archive: Any) -> World:
    source = tmp / "source" / "outputs"
    source.mkdir(parents=True)
    library = tmp / "library"
    library.mkdir()
    nas = tmp / "nas"
    nas.mkdir()
    table: dict[str, Any] = {
        "name": "r1",
        "transport": "local",
        "roots": [str(source)],
        "settle": "1s",
        "include": ["*.png"],
    }
    table["purge"] = {"older_than": "30m"}
    config = write_config(tmp / "config.toml", library, tmp / "state", [table])
    workflow = {"stages": ["archive"], "purge_after": ["archive"], "archive": {"dest": str(nas)} | archive}
    set_workflow(config, workflow, pipeline)
    return World(tmp, source, library, tmp / "state", nas, config)
