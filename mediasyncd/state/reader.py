"""Reading the state DB from another process: read-only, no lock, beside a running daemon (the event log;
the files a dry run compares a listing with)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from mediasyncd.errors import MediasyncError
from mediasyncd.state.connection import open_connection
from mediasyncd.state.events import Event, select_events
from mediasyncd.state.known import KnownFiles, select_known_files


class EventReader:
    """The state DB's event log, opened read-only (it never writes, migrates or locks)."""

    def __init__(self, db_path: Path) -> None:
        if not db_path.is_file():
            raise MediasyncError(f"no state DB at {db_path} (has the daemon or `sync --once` run yet?)")
        self.conn = open_connection(db_path, read_only=True)
        has_log = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()
        if has_log is None:
            self.conn.close()
            raise MediasyncError(
                f"the state DB {db_path} predates the event log: run `mediasyncd run` or `sync --once` once"
            )

    def since(self, event_id: int, types: Sequence[str] = (), limit: int = 1000) -> list[Event]:
        try:
            return select_events(self.conn, event_id, types, limit)
        except sqlite3.OperationalError as exc:  # e.g. the DB is being replaced under us
            raise MediasyncError(f"cannot read the event log: {exc}") from None

    def close(self) -> None:
        self.conn.close()


def current_files(db_path: Path, remote: str) -> KnownFiles:
    """The diff base of `remote`, read without writing anything (empty when there is no state DB yet)."""
    if not db_path.is_file():
        return KnownFiles(remote)
    conn = open_connection(db_path, read_only=True)
    try:
        return select_known_files(conn, remote)
    except sqlite3.OperationalError as exc:
        raise MediasyncError(f"cannot read the state DB {db_path}: {exc}") from None
    finally:
        conn.close()
