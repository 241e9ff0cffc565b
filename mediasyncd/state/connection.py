"""Opening the state DB: WAL, the pragmas, and the migrations (`schema`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mediasyncd.state.schema import MIGRATIONS


def open_connection(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the state DB; read-only ones take no lock and never write (`mediasyncd events`)."""
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
