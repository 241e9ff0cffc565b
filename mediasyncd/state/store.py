"""The state database: the only owner of SQLite.

One file `<state_dir>/state.db` in WAL mode, a versioned schema with migrations (`schema`), typed
queries. All work runs on one dedicated thread so the event loop never blocks and the connection is
never shared. Every lifecycle change writes its event (`events`) in the same transaction; `appended` is
signalled (`follow`), on the event loop, after each commit that wrote events, to consumers of the log.

A row of `files` is one *version* of one remote path: when a landed path shows up with a different size
or mtime, the old row stops being `current` and a new row starts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from mediasyncd.state.events import Event, EventType, NewEvent, file_data, insert_events, select_events
from mediasyncd.state.known import Key, KnownFiles, select_known_files
from mediasyncd.state.lifecycle import LANDED, UNLANDED, WAITING, FileState, sql_set
from mediasyncd.state.rows import ROW_COLUMNS, FileRow, to_row
from mediasyncd.state.thread import StateThread

P = ParamSpec("P")
T = TypeVar("T")
C = ParamSpec("C")


_LANDED_SET = (
    "UPDATE files SET state = ?, sha256 = ?, local_path = ?, landing_path = NULL, landed_at = ?, "
    "last_error = NULL, next_attempt = NULL WHERE id = ? AND state IN "
)
_LAND = _LANDED_SET + sql_set(frozenset({FileState.TRANSFERRING}))  # a pulled file: from 'transferring'
_LAND_ADOPTED = _LANDED_SET + sql_set(WAITING)  # an adopted file: from waiting


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


@dataclass(frozen=True)
class LandedFile:
    """A file renamed into the library (or `adopted`: found there already, with the remote's SHA-256):
    what its `file_synced` event says."""

    row: FileRow
    sha256: str
    local_path: str
    sync_id: str | None = None
    adopted: bool = False


def last_shared_id(conn: sqlite3.Connection) -> int:
    """The newest event for every consumer (back-filled events for one sink only do not count)."""
    r = conn.execute("SELECT id FROM events WHERE sink IS NULL ORDER BY id DESC LIMIT 1").fetchone()
    return int(r[0]) if r else 0


class EventLogQueries(StateThread):
    """The event log's typed queries: append, read since an id, consumers' positions, retention."""

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Events that go with no row change (a pass completed, a remote failed or recovered)."""
        await self._write(lambda c: insert_events(c, events))

    async def events(self, since: int = 0, types: Sequence[str] = (), limit: int = 1000) -> list[Event]:
        return await self._run(lambda: select_events(self.conn, since, types, limit))

    async def last_event_id(self) -> int:
        return await self._run(lambda: last_shared_id(self.conn))

    async def acked(self, consumer: str) -> int:
        """The last event id `consumer` acknowledged (0 when it never did)."""

        def q() -> int:
            r = self.conn.execute("SELECT acked_id FROM consumers WHERE name = ?", (consumer,)).fetchone()
            return int(r[0]) if r else 0

        return await self._run(q)

    async def enable_consumers(self, names: Sequence[str]) -> None:
        """Consumers of the current config hold events back from the retention; others no longer do."""

        def q(c: sqlite3.Connection) -> None:
            c.execute("UPDATE consumers SET enabled = 0")
            c.executemany(
                "INSERT INTO consumers (name, acked_id, updated_at) VALUES (?, 0, ?) "
                "ON CONFLICT(name) DO UPDATE SET enabled = 1",
                [(n, time.time()) for n in names],
            )

        await self._run(self._in_tx, q)

    async def ack(self, consumer: str, event_id: int) -> None:
        await self._run(
            self._tx,
            [
                (
                    "INSERT INTO consumers (name, acked_id, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET acked_id = MAX(acked_id, excluded.acked_id), "
                    "updated_at = excluded.updated_at",
                    (consumer, event_id, time.time()),
                )
            ],
        )

    async def prune_events(self, older_than: float) -> int:
        """Drop events written before `older_than` that every enabled consumer has acknowledged."""

        def q(c: sqlite3.Connection) -> int:
            floor = c.execute("SELECT MIN(acked_id) FROM consumers WHERE enabled = 1").fetchone()[0]
            if floor is None:
                cur = c.execute("DELETE FROM events WHERE time < ?", (older_than,))
            else:
                cur = c.execute("DELETE FROM events WHERE time < ? AND id <= ?", (older_than, floor))
            return cur.rowcount

        return await self._run(self._in_tx, q)


Gone = Callable[[Sequence[tuple[Key, int]]], None]  # ((root, rel), id) of files purged


class Store(EventLogQueries):
    """Typed access to the state DB; every public coroutine runs its query on the store's own thread."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        self._purged_watchers: dict[str, Gone] = {}

    # --------------------------------------------------------- files purged while a diff base is held

    def watch_purged(self, remote: str, told: Gone) -> None:
        """`told` hears of `remote`'s files marked purged from now on (after their commit): the holder of
        the remote's diff base drops them, which it would otherwise keep until the daemon restarts."""
        self._purged_watchers[remote] = told

    def unwatch_purged(self, remote: str, told: Gone) -> None:
        if self._purged_watchers.get(remote) == told:
            del self._purged_watchers[remote]

    def tell_purged(self, remote: str, files: Sequence[tuple[Key, int]]) -> None:
        told = self._purged_watchers.get(remote)
        if told is not None and files:
            told(files)

    async def current_files(self, remote: str) -> KnownFiles:
        """Every current, not purged file of `remote`, by (root, rel): the watcher's diff base (a landed
        file as its id, size and mtime; state/known.py). Purged rows stay out of memory: their remote
        files are gone, and a remote that grows to millions of purged rows must not make each pass slower
        or the daemon larger."""
        return await self._run(lambda: select_known_files(self.conn, remote))

    async def get(self, file_id: int) -> FileRow | None:
        def q() -> FileRow | None:
            r = self.conn.execute(f"SELECT {ROW_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            return to_row(r) if r else None

        return await self._run(q)

    async def add_seen(
        self, remote: str, files: Sequence[NewFile], supersede: Sequence[int] = ()
    ) -> list[FileRow]:
        """Record newly seen files (and retire the rows they replace) in one transaction."""

        def q(c: sqlite3.Connection) -> list[FileRow]:
            now = time.time()
            out: list[FileRow] = []
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
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (remote, f.root, f.rel, f.size, f.mtime, FileState.SEEN, now),
                )
                assert cur.lastrowid is not None
                out.append(FileRow(cur.lastrowid, remote, f.root, f.rel, f.size, f.mtime, FileState.SEEN))
            return out

        return await self._run(self._in_tx, q)

    async def forget(self, ids: Sequence[int]) -> None:
        """Drop rows of files that vanished from the remote before they landed."""
        await self._run(
            self._tx,
            [(f"DELETE FROM files WHERE id = ? AND state IN {sql_set(UNLANDED)}", (i,)) for i in ids],
        )

    async def set_state(self, file_id: int, state: FileState) -> None:
        await self._run(self._tx, [("UPDATE files SET state = ? WHERE id = ?", (state, file_id))])

    async def set_landing_intents(self, intents: Sequence[tuple[int, str, str]]) -> None:
        """(id, sha256, landing_path) per file, written before the renames so that a crash between a
        rename and `mark_landed` is recoverable by checking the hash."""
        await self._run(
            self._tx,
            [
                (
                    "UPDATE files SET state = ?, sha256 = ?, landing_path = ? WHERE id = ?",
                    (FileState.TRANSFERRING, sha256, landing_path, file_id),
                )
                for file_id, sha256, landing_path in intents
            ],
        )

    async def mark_landed(self, landed: Sequence[LandedFile], also: Sequence[NewEvent] = ()) -> set[int]:
        """Files renamed into place (or adopted): their state and their `file_synced` events (and `also`),
        in one transaction. Returns the ids it landed (a row no longer 'transferring', or for an adopted
        file no longer waiting, is left alone)."""
        now = time.time()

        def q(c: sqlite3.Connection) -> set[int]:
            done = []
            for f in landed:  # only from 'transferring' (or waiting): a file is landed (and announced) once
                cur = c.execute(
                    _LAND_ADOPTED if f.adopted else _LAND,
                    (FileState.LANDED, f.sha256, f.local_path, now, f.row.id),
                )
                if cur.rowcount:
                    done.append(f)
            insert_events(c, [*(_synced(f) for f in done), *also], now)
            return {f.row.id for f in done}

        return await self._write(q)

    async def mark_failed(
        self,
        row: FileRow,
        error: str,
        next_attempt: float,
        sync_id: str | None = None,
        also: Sequence[NewEvent] = (),
    ) -> int:
        """Record a failed attempt and its `file_failed` event; returns the attempt count."""

        def q(c: sqlite3.Connection) -> int:
            c.execute(
                "UPDATE files SET state = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt = ?, landing_path = NULL WHERE id = ?",
                (FileState.FAILED, error[:2000], next_attempt, row.id),
            )
            r = c.execute("SELECT attempts FROM files WHERE id = ?", (row.id,)).fetchone()
            attempts = int(r[0]) if r else 0
            data = file_data(row.id, None, None, error=error[:2000], attempts=attempts, size=row.size)
            insert_events(c, [NewEvent(EventType.FILE_FAILED, row.remote, row.rel, sync_id, data), *also])
            return attempts

        return await self._write(q)

    async def interrupted(self, remote: str) -> list[FileRow]:
        """Rows a crash left in 'transferring' (their partial may be resumable)."""

        def q() -> list[FileRow]:
            rows = self.conn.execute(
                f"SELECT {ROW_COLUMNS} FROM files WHERE remote = ? AND state = ?",
                (remote, FileState.TRANSFERRING),
            ).fetchall()
            return [to_row(r) for r in rows]

        return await self._run(q)

    async def totals(self, remote: str | None = None) -> Totals:
        def q() -> Totals:
            where, params = ("AND remote = ?", (remote,)) if remote else ("", ())
            landed = self.conn.execute(
                f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE state IN {sql_set(LANDED)} {where}",
                params,
            ).fetchone()
            failed = self.conn.execute(
                f"SELECT COUNT(*) FROM files WHERE state = ? AND current = 1 {where}",
                (FileState.FAILED, *params),
            ).fetchone()
            return Totals(int(landed[0]), int(landed[1]), int(failed[0]))

        return await self._run(q)

    async def landed_unprocessed(self, ids: Sequence[int] | None = None) -> list[FileRow]:
        """Landed files whose library copy is there and that the media pipeline has not finished, whatever
        became of them on the remote since (purged too); of `ids` only, when given."""

        def q() -> list[FileRow]:
            sql = (
                f"SELECT {ROW_COLUMNS} FROM files WHERE local_path IS NOT NULL AND processed_at IS NULL "
                f"AND library_expired_at IS NULL AND state IN {sql_set(LANDED)}"
            )
            if ids is None:
                rows = self.conn.execute(f"{sql} ORDER BY id").fetchall()
            else:
                marks = ", ".join("?" for _ in ids)
                rows = self.conn.execute(f"{sql} AND id IN ({marks}) ORDER BY id", tuple(ids)).fetchall()
            return [to_row(r) for r in rows]

        return await self._run(q)

    async def mark_processed(self, row: FileRow, summary: dict[str, Any] | None = None) -> None:
        """The media pipeline is done with a landed file: its state and `file_processed` event."""

        def q(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE files SET processed_at = ?, state = CASE WHEN state = ? THEN ? ELSE state END "
                "WHERE id = ? AND processed_at IS NULL",
                (time.time(), FileState.LANDED, FileState.PROCESSED, row.id),
            )
            if cur.rowcount:
                data = file_data(row.id, row.sha256, row.local_path, **(summary or {}))
                insert_events(c, [NewEvent(EventType.FILE_PROCESSED, row.remote, row.rel, None, data)])

        await self._write(q)

    async def landed_paths(self) -> set[str]:
        """Library-relative paths of every landed file (used to keep conflict names unique)."""

        def q() -> set[str]:
            rows = self.conn.execute("SELECT local_path FROM files WHERE local_path IS NOT NULL").fetchall()
            return {r[0] for r in rows}

        return await self._run(q)


def _synced(f: LandedFile) -> NewEvent:
    data = file_data(f.row.id, f.sha256, f.local_path, size=f.row.size, mtime=f.row.mtime)
    if f.adopted:
        data["adopted"] = True
    return NewEvent(EventType.FILE_SYNCED, f.row.remote, f.row.rel, f.sync_id, data)
