"""Purge's part of the state DB: runs in `purge_runs`, per-file `purge_reason`, `purge_run` (a delete in
flight), `purged_at` and `library_expired_at` (local retention) in `files`. Every query runs on the
state DB's thread, in the Store's transactions; purged and expired files get their events in the same
transaction, and each recorded run its `purge_complete`.

A delete is recorded in three steps so that a crash at any point leaves the DB consistent with the
remote: mark the batch `purge_run = <run>` (intent), delete on the remote, then mark the files that are
gone `purged`. A later run resolves leftover intents against its listing (`Planner.confirmed_gone`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mediasyncd.state.events import EventType, NewEvent, file_data, insert_events
from mediasyncd.state.known import Key
from mediasyncd.state.lifecycle import FileState
from mediasyncd.state.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Tracked:
    """A remote file as the state DB knows it (the current row of its remote path)."""

    id: int
    root: str
    rel: str
    size: int
    mtime: float
    state: FileState
    sha256: str | None
    local_path: str | None
    purge_run: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.root, self.rel)

    @property
    def remote_path(self) -> str:
        return f"{self.root.rstrip('/')}/{self.rel}"


@dataclass(frozen=True)
class Landed:
    """A purged file whose library copy is still recorded as present."""

    id: int
    rel: str  # under the remote root: what `preserve` globs match
    local_path: str  # library-relative
    size: int
    mtime: float
    sha256: str | None
    landed_at: float
    library_sha256: str | None = None  # a workflow stage replaced the library file with these bytes


@dataclass(frozen=True)
class RunRecord:
    """One purge run of one remote, as stored."""

    id: int
    remote: str
    source: str
    dry_run: bool
    started_at: float
    finished_at: float | None
    outcome: str | None  # 'ok' | 'error'; None while running or when the run was killed
    error: str | None
    deleted_files: int
    freed_bytes: int
    kept: dict[str, int] = field(default_factory=dict)
    deleted_locally: int = 0
    library_deleted_files: int = 0
    library_freed_bytes: int = 0
    library_kept: dict[str, int] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return self.outcome or ("running" if self.finished_at is None else "unknown")


_RUN_COLUMNS = (
    "id, remote, source, dry_run, started_at, finished_at, outcome, error, deleted_files, freed_bytes, "
    "kept, deleted_locally, library_deleted_files, library_freed_bytes, library_kept"
)


def _run(r: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], json.loads(r[10]), r[11], r[12],
        r[13], json.loads(r[14]),
    )  # fmt: skip


@dataclass(frozen=True)
class LibraryTotals:
    """A run's local retention: library copies deleted, bytes freed, old copies held by reason."""

    deleted_files: int = 0
    freed_bytes: int = 0
    kept: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionView:
    """What local retention needs from the DB for one remote."""

    due: list[Landed]  # purged, library copy recorded as present, landed before the cutoff
    in_use: frozenset[str]  # their local paths that other, not expiring, landed rows also use
    live_by_sha: dict[str, frozenset[int]]  # their hashes -> every row whose library copy counts as present
    # What the media pipeline recorded for each due local path: (sidecar, thumbnail), library-relative.
    outputs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    shared_sidecars: frozenset[str] = frozenset()  # their sidecars that other library files also record


class PurgeLedger:
    """Typed purge queries over the shared `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def tracked(self, remote: str) -> list[Tracked]:
        """Every current, not yet purged row of `remote`."""

        def q(c: sqlite3.Connection) -> list[Tracked]:
            rows = c.execute(
                "SELECT id, root, rel, size, mtime, state, sha256, local_path, purge_run FROM files "
                "WHERE remote = ? AND current = 1 AND state != ?",
                (remote, FileState.PURGED),
            ).fetchall()
            return [Tracked(r[0], r[1], r[2], r[3], r[4], FileState(r[5]), r[6], r[7], r[8]) for r in rows]

        return await self.store._read(q)

    async def start_run(self, remote: str, source: str, dry_run: bool) -> int:
        def q(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO purge_runs (remote, source, dry_run, started_at) VALUES (?, ?, ?, ?)",
                (remote, source, int(dry_run), time.time()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.store._transaction(q)

    async def finish_run(
        self,
        run_id: int,
        *,
        error: str | None = None,
        deleted_files: int = 0,
        freed_bytes: int = 0,
        kept: dict[str, int] | None = None,
        deleted_locally: int = 0,
        library: LibraryTotals | None = None,
    ) -> None:
        lib = library or LibraryTotals()
        params = (
            time.time(),
            "error" if error else "ok",
            error,
            deleted_files,
            freed_bytes,
            json.dumps(kept or {}, sort_keys=True),
            deleted_locally,
            lib.deleted_files,
            lib.freed_bytes,
            json.dumps(lib.kept, sort_keys=True),
            run_id,
        )

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE purge_runs SET finished_at = ?, outcome = ?, error = ?, deleted_files = ?, "
                "freed_bytes = ?, kept = ?, deleted_locally = ?, library_deleted_files = ?, "
                "library_freed_bytes = ?, library_kept = ? WHERE id = ?",
                params,
            )
            run = c.execute(f"SELECT {_RUN_COLUMNS} FROM purge_runs WHERE id = ?", (run_id,)).fetchone()
            if run is not None:
                insert_events(c, [_purge_complete(_run(run))])

        await self.store._transaction(q)

    async def record_kept(self, kept: Iterable[tuple[Tracked, str]]) -> None:
        """Remember why each file stayed (shown by status tools; overwritten by the next run)."""
        params = [(str(reason), row.id) for row, reason in kept]
        await self.store._transaction(
            lambda c: _many(c, "UPDATE files SET purge_reason = ? WHERE id = ?", params)
        )

    async def mark_intent(self, run_id: int, ids: Sequence[int]) -> None:
        """Written before the remote delete: `purge_run` says "may be gone; check the listing"."""
        params = [(run_id, i) for i in ids]
        await self.store._transaction(
            lambda c: _many(c, "UPDATE files SET purge_run = ? WHERE id = ?", params)
        )

    async def mark_purged(self, ids: Sequence[int], when: float | None = None) -> None:
        """Files gone from the remote: state `purged` and a `file_purged` event each, in one transaction."""
        at = time.time() if when is None else when

        def q(c: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = _rows_of(c, ids, "state != ?", FileState.PURGED)
            c.executemany(
                "UPDATE files SET state = ?, purged_at = ?, purge_run = NULL, purge_reason = NULL WHERE id = ?",
                [(FileState.PURGED, at, r[0]) for r in rows],
            )
            insert_events(c, [_file_event(EventType.FILE_PURGED, r) for r in rows], at)
            return rows

        by_remote: dict[str, list[tuple[Key, int]]] = {}
        for r in await self.store._transaction(q):
            by_remote.setdefault(r[1], []).append(((r[6], r[2]), r[0]))
        for remote, files in by_remote.items():
            self.store.tell_purged(remote, files)

    async def clear_intent(self, ids: Sequence[int], reason: str | None = None) -> None:
        params = [(str(reason) if reason else None, i) for i in ids]
        await self.store._transaction(
            lambda c: _many(
                c,
                "UPDATE files SET purge_run = NULL, purge_reason = COALESCE(?, purge_reason) WHERE id = ?",
                params,
            )
        )

    async def last_runs(self, source: str | None = None) -> dict[str, RunRecord]:
        """The latest run of each remote (of `source` only, when given)."""

        def q(c: sqlite3.Connection) -> dict[str, RunRecord]:
            where, params = ("WHERE source = ?", (source,)) if source else ("", ())
            rows = c.execute(
                f"SELECT {_RUN_COLUMNS} FROM purge_runs WHERE id IN "
                f"(SELECT MAX(id) FROM purge_runs {where} GROUP BY remote)",
                params,
            ).fetchall()
            return {r[1]: _run(r) for r in rows}

        return await self.store._read(q)

    async def close_abandoned(self) -> int:
        """Runs a crash left open are marked as errors (their deletes are resolved by the next run)."""

        def q(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "UPDATE purge_runs SET outcome = 'error', error = 'interrupted (process ended mid-run)' "
                "WHERE finished_at IS NULL AND outcome IS NULL"
            )
            return cur.rowcount

        return await self.store._transaction(q)

    async def retention_view(self, remote: str, landed_before: float) -> RetentionView:
        """Purged files of `remote` landed before `landed_before` whose library copy is still recorded."""

        def q(c: sqlite3.Connection) -> RetentionView:
            due = [
                Landed(*r)
                for r in c.execute(
                    "SELECT id, rel, local_path, size, mtime, sha256, landed_at, library_sha256 FROM files "
                    "WHERE remote = ? AND state = ? AND library_expired_at IS NULL "
                    "AND local_path IS NOT NULL AND landed_at IS NOT NULL AND landed_at <= ? "
                    "ORDER BY landed_at, id",
                    (remote, FileState.PURGED, landed_before),
                )
            ]
            if not due:
                return RetentionView([], frozenset(), {})
            ids = json.dumps([r.id for r in due])
            paths = json.dumps(sorted({r.local_path for r in due}))
            in_use = c.execute(
                "SELECT DISTINCT local_path FROM files WHERE library_expired_at IS NULL "
                "AND local_path IN (SELECT value FROM json_each(?)) "
                "AND id NOT IN (SELECT value FROM json_each(?))",
                (paths, ids),
            ).fetchall()
            live: dict[str, set[int]] = {}
            for sha, row_id in c.execute(
                "SELECT sha256, id FROM files WHERE library_expired_at IS NULL AND local_path IS NOT NULL "
                "AND sha256 IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted({r.sha256 for r in due if r.sha256})),),
            ):
                live.setdefault(sha, set()).add(row_id)
            outputs = {
                path: (sidecar, thumbnail)
                for path, sidecar, thumbnail in c.execute(
                    "SELECT path, sidecar, thumbnail FROM media WHERE path IN (SELECT value FROM json_each(?))",
                    (paths,),
                )
            }
            sidecars = json.dumps(sorted({s for s, _ in outputs.values() if s}))
            # ... that other library files still present (not among these due copies) record too
            shared = c.execute(
                "SELECT DISTINCT m.sidecar FROM media AS m WHERE m.sidecar IN (SELECT value FROM json_each(?)) "
                "AND m.path NOT IN (SELECT value FROM json_each(?)) AND EXISTS (SELECT 1 FROM files AS f "
                "WHERE f.local_path = m.path AND f.library_expired_at IS NULL)",
                (sidecars, paths),
            ).fetchall()
            return RetentionView(
                due,
                frozenset(p for (p,) in in_use),
                {k: frozenset(v) for k, v in live.items()},
                outputs,
                frozenset(s for (s,) in shared),
            )

        return await self.store._read(q)

    async def mark_expired(self, ids: Sequence[int], when: float | None = None) -> None:
        """Library copies local retention deleted: never fetched again, never counted "deleted locally";
        a `file_expired` event each, in the same transaction."""
        at = time.time() if when is None else when

        def q(c: sqlite3.Connection) -> None:
            rows = _rows_of(c, ids, "library_expired_at IS NULL")
            c.executemany("UPDATE files SET library_expired_at = ? WHERE id = ?", [(at, r[0]) for r in rows])
            insert_events(c, [_file_event(EventType.FILE_EXPIRED, r) for r in rows], at)

        await self.store._transaction(q)


def _purge_complete(run: RunRecord) -> NewEvent:
    data = {
        "run_id": run.id, "source": run.source, "dry_run": run.dry_run, "outcome": run.outcome,
        "error": run.error, "deleted_files": run.deleted_files, "freed_bytes": run.freed_bytes,
        "kept": run.kept, "deleted_locally": run.deleted_locally,
        "library_deleted_files": run.library_deleted_files, "library_freed_bytes": run.library_freed_bytes,
        "seconds": round((run.finished_at or run.started_at) - run.started_at, 3),
    }  # fmt: skip
    return NewEvent(EventType.PURGE_COMPLETE, run.remote, None, None, data)


def _many(c: sqlite3.Connection, sql: str, params: Iterable[Sequence[Any]]) -> None:
    """`executemany` without handing its cursor back (a cursor must stay on the store's thread)."""
    c.executemany(sql, params).close()


def _rows_of(
    c: sqlite3.Connection, ids: Sequence[int], condition: str, *params: Any
) -> list[tuple[Any, ...]]:
    """(id, remote, rel, sha256, local_path, size, root) of the rows `ids` that meet `condition`."""
    if not ids:
        return []
    rows = c.execute(
        "SELECT id, remote, rel, sha256, local_path, size, root FROM files "
        f"WHERE id IN (SELECT value FROM json_each(?)) AND {condition} ORDER BY id",
        (json.dumps(list(ids)), *params),
    ).fetchall()
    return [tuple(r) for r in rows]


def _file_event(kind: EventType, r: tuple[Any, ...]) -> NewEvent:
    return NewEvent(kind, r[1], r[2], None, file_data(r[0], r[3], r[4], size=r[5]))
