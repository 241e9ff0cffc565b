"""The state database: the only owner of SQLite.

One file `<state_dir>/state.db` in WAL mode, a versioned schema with migrations, typed queries. All work
runs on one dedicated thread so the event loop never blocks and the connection is never shared.

File lifecycle (column `state`): seen -> transferring -> landed -> processed -> purged, or failed (with
attempts, last_error, next_attempt). A row is one *version* of one remote path: when a landed path shows
up with a different size or mtime, the old row stops being `current` and a new row starts.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MIGRATIONS: Sequence[str] = (
    # 1: files and their lifecycle
    """
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        remote TEXT NOT NULL,
        root TEXT NOT NULL,
        rel TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        state TEXT NOT NULL,
        first_seen REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt REAL,
        sha256 TEXT,
        local_path TEXT,
        landing_path TEXT,
        landed_at REAL,
        purged_at REAL,
        current INTEGER NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX files_current ON files(remote, root, rel) WHERE current = 1;
    CREATE INDEX files_state ON files(state, remote);
    """,
    # 2: purge runs and per-file purge bookkeeping (mediasyncd.purge)
    """
    CREATE TABLE purge_runs (
        id INTEGER PRIMARY KEY,
        remote TEXT NOT NULL,
        source TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT,
        error TEXT,
        deleted_files INTEGER NOT NULL DEFAULT 0,
        freed_bytes INTEGER NOT NULL DEFAULT 0,
        kept TEXT NOT NULL DEFAULT '{}',
        deleted_locally INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX purge_runs_remote ON purge_runs(remote, source, started_at);
    ALTER TABLE files ADD COLUMN purge_reason TEXT;
    ALTER TABLE files ADD COLUMN purge_run INTEGER;
    CREATE INDEX files_purge_run ON files(purge_run) WHERE purge_run IS NOT NULL;
    """,
    # 3: local retention (mediasyncd.purge): library copies removed by `[purge] local_retention`, per run
    """
    ALTER TABLE files ADD COLUMN library_expired_at REAL;
    CREATE INDEX files_retention ON files(remote, landed_at)
        WHERE state = 'purged' AND library_expired_at IS NULL;
    CREATE INDEX files_local_path ON files(local_path) WHERE local_path IS NOT NULL;
    CREATE INDEX files_sha256 ON files(sha256) WHERE local_path IS NOT NULL;
    ALTER TABLE purge_runs ADD COLUMN library_deleted_files INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE purge_runs ADD COLUMN library_freed_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE purge_runs ADD COLUMN library_kept TEXT NOT NULL DEFAULT '{}';
    """,
)

ACTIVE_STATES = ("seen", "transferring", "failed")
LANDED_STATES = ("landed", "processed", "purged")


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    remote: str
    root: str
    rel: str
    size: int
    mtime: float
    state: str
    attempts: int = 0
    next_attempt: float | None = None
    sha256: str | None = None
    local_path: str | None = None
    landing_path: str | None = None
    landed_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.root, self.rel)


@dataclass(frozen=True)
class NewFile:
    root: str
    rel: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Totals:
    landed_files: int = 0
    landed_bytes: int = 0
    failed_files: int = 0


_COLUMNS = (
    "id, remote, root, rel, size, mtime, state, attempts, next_attempt, sha256, local_path, "
    "landing_path, landed_at"
)


def _row(r: sqlite3.Row | tuple[Any, ...]) -> FileRow:
    return FileRow(*r)


class Store:
    """Typed access to the state DB; every public coroutine runs its query on the store's own thread."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-db")
        self._conn: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self._run(self._open)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        self._conn = conn

    def _close(self) -> None:
        assert self._conn is not None
        self._conn.close()
        self._conn = None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("state DB is not open")
        return self._conn

    def _tx(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                c.execute(sql, params)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ queries

    async def current_files(self, remote: str) -> dict[tuple[str, str], FileRow]:
        """Every current, not purged row of `remote`, keyed by (root, rel): the watcher's diff base.
        Purged rows stay out of memory: their remote files are gone, and a remote that grows to
        millions of purged rows must not make each pass slower or the daemon larger."""

        def q() -> dict[tuple[str, str], FileRow]:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE remote = ? AND current = 1 AND state != 'purged'",
                (remote,),
            ).fetchall()
            return {(r[2], r[3]): _row(r) for r in rows}

        return await self._run(q)

    async def get(self, file_id: int) -> FileRow | None:
        def q() -> FileRow | None:
            r = self.conn.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            return _row(r) if r else None

        return await self._run(q)

    async def add_seen(
        self, remote: str, files: Sequence[NewFile], supersede: Sequence[int] = ()
    ) -> list[FileRow]:
        """Record newly seen files (and retire the rows they replace) in one transaction."""

        def q() -> list[FileRow]:
            c = self.conn
            now = time.time()
            out: list[FileRow] = []
            c.execute("BEGIN IMMEDIATE")
            try:
                if supersede:
                    c.executemany("UPDATE files SET current = 0 WHERE id = ?", [(i,) for i in supersede])
                # A path can come back after its purged row left the diff base: retire that row too.
                c.executemany(
                    "UPDATE files SET current = 0 WHERE remote = ? AND root = ? AND rel = ? AND current = 1",
                    [(remote, f.root, f.rel) for f in files],
                )
                for f in files:
                    cur = c.execute(
                        "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen) "
                        "VALUES (?, ?, ?, ?, ?, 'seen', ?)",
                        (remote, f.root, f.rel, f.size, f.mtime, now),
                    )
                    assert cur.lastrowid is not None
                    out.append(FileRow(cur.lastrowid, remote, f.root, f.rel, f.size, f.mtime, "seen"))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return out

        return await self._run(q)

    async def forget(self, ids: Sequence[int]) -> None:
        """Drop rows of files that vanished from the remote before they landed."""
        await self._run(
            self._tx,
            [
                ("DELETE FROM files WHERE id = ? AND state IN ('seen', 'transferring', 'failed')", (i,))
                for i in ids
            ],
        )

    async def set_state(self, file_id: int, state: str) -> None:
        await self._run(self._tx, [("UPDATE files SET state = ? WHERE id = ?", (state, file_id))])

    async def set_landing_intents(self, intents: Sequence[tuple[int, str, str]]) -> None:
        """(id, sha256, landing_path) per file, written before the renames so that a crash between a
        rename and `mark_landed` is recoverable by checking the hash."""
        await self._run(
            self._tx,
            [
                (
                    "UPDATE files SET state = 'transferring', sha256 = ?, landing_path = ? WHERE id = ?",
                    (sha256, landing_path, file_id),
                )
                for file_id, sha256, landing_path in intents
            ],
        )

    async def mark_landed(self, file_id: int, sha256: str, local_path: str) -> None:
        await self.mark_landed_many([(file_id, sha256, local_path)])

    async def mark_landed_many(self, landed: Sequence[tuple[int, str, str]]) -> None:
        """(id, sha256, local_path) per landed file, in one transaction."""
        now = time.time()
        await self._run(
            self._tx,
            [
                (
                    "UPDATE files SET state = 'landed', sha256 = ?, local_path = ?, landing_path = NULL, "
                    "landed_at = ?, last_error = NULL, next_attempt = NULL WHERE id = ?",
                    (sha256, local_path, now, file_id),
                )
                for file_id, sha256, local_path in landed
            ],
        )

    async def mark_failed(self, file_id: int, error: str, next_attempt: float) -> int:
        """Record a failed attempt; returns the attempt count."""

        def q() -> int:
            c = self.conn
            c.execute(
                "UPDATE files SET state = 'failed', attempts = attempts + 1, last_error = ?, "
                "next_attempt = ?, landing_path = NULL WHERE id = ?",
                (error[:2000], next_attempt, file_id),
            )
            r = c.execute("SELECT attempts FROM files WHERE id = ?", (file_id,)).fetchone()
            return int(r[0]) if r else 0

        return await self._run(q)

    async def interrupted(self, remote: str) -> list[FileRow]:
        """Rows a crash left in 'transferring' (their partial may be resumable)."""

        def q() -> list[FileRow]:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE remote = ? AND state = 'transferring'", (remote,)
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(q)

    async def totals(self, remote: str | None = None) -> Totals:
        def q() -> Totals:
            where, params = ("AND remote = ?", (remote,)) if remote else ("", ())
            landed = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files "
                f"WHERE state IN ('landed', 'processed', 'purged') {where}",
                params,
            ).fetchone()
            failed = self.conn.execute(
                f"SELECT COUNT(*) FROM files WHERE state = 'failed' AND current = 1 {where}", params
            ).fetchone()
            return Totals(int(landed[0]), int(landed[1]), int(failed[0]))

        return await self._run(q)

    async def landed_unprocessed(self) -> list[FileRow]:
        """Landed files the media pipeline has not finished (after a crash or a restart)."""

        def q() -> list[FileRow]:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE state = 'landed' AND local_path IS NOT NULL ORDER BY id"
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(q)

    async def mark_processed(self, file_id: int) -> None:
        await self._run(
            self._tx, [("UPDATE files SET state = 'processed' WHERE id = ? AND state = 'landed'", (file_id,))]
        )

    async def landed_paths(self) -> set[str]:
        """Library-relative paths of every landed file (used to keep conflict names unique)."""

        def q() -> set[str]:
            rows = self.conn.execute("SELECT local_path FROM files WHERE local_path IS NOT NULL").fetchall()
            return {r[0] for r in rows}

        return await self._run(q)

    async def execute(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the store's thread: the seam for other components' own tables."""
        return await self._run(lambda: fn(self.conn))
