"""A replacing workflow stage's part of the state DB (`compress` with `keep_original = false`): its plan
recorded before it touches the library, the one-transaction switch of the file row, catalog record,
search entry and pipeline progress to the replacement, and, for purge, the archived originals."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mediasyncd.state.lifecycle import StageState
from mediasyncd.state.store import Store


@dataclass(frozen=True)
class Intent:
    """A replacing stage's plan for one file, recorded before it touches the library: `output` (absolute)
    with `sha256` takes the place of the library path `replaced`; `library_sha256` is the file row's
    (set once the switch is recorded)."""

    output: str
    sha256: str
    replaced: str
    library_sha256: str | None


@dataclass(frozen=True)
class Switch:
    """The library copy of a file becomes `new_path` (library-relative) with `sha256`, size and mtime;
    its catalog record follows, with `sidecar` (library-relative) as its XMP sidecar."""

    file_id: int
    old_path: str
    new_path: str
    sha256: str
    size: int
    mtime_ns: int
    sidecar: str | None


class Replacements:
    """The replacing stage's queries over the shared `Store` (StageLedger has them all)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def intend(self, file_id: int, stage: str, output: str, sha256: str, replaced: str) -> None:
        """Record the plan of a replacing stage (see `Intent`) before it writes into the library."""

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE file_stages SET output_path = ?, output_sha256 = ?, replaced_path = ?, updated_at = ? "
                "WHERE file_id = ? AND stage = ?",
                (output, sha256, replaced, time.time(), file_id, stage),
            )

        await self.store._transaction(q)

    async def intent(self, file_id: int, stage: str) -> Intent | None:
        """The recorded plan of an unfinished replacing stage, if one was made."""

        def q(c: sqlite3.Connection) -> Intent | None:
            r = c.execute(
                "SELECT s.output_path, s.output_sha256, s.replaced_path, f.library_sha256 FROM file_stages s "
                "JOIN files f ON f.id = s.file_id WHERE s.file_id = ? AND s.stage = ? AND s.state != ? "
                "AND s.replaced_path IS NOT NULL AND s.output_path IS NOT NULL AND s.output_sha256 IS NOT NULL",
                (file_id, stage, StageState.DONE),
            ).fetchone()
            return Intent(r[0], r[1], r[2], r[3]) if r else None

        return await self.store._read(q)

    async def switch(self, change: Switch) -> None:
        """In one transaction: the file row's library copy, and its catalog record, search index entry and
        pipeline progress, move to the replacement."""
        s = change

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE files SET local_path = ?, library_sha256 = ? WHERE id = ?",
                (s.new_path, s.sha256, s.file_id),
            )
            if s.new_path != s.old_path:
                c.execute("DELETE FROM media_fts WHERE path = ?", (s.new_path,))
                c.execute("DELETE FROM media WHERE path = ?", (s.new_path,))
                c.execute("DELETE FROM pipeline_stages WHERE path = ?", (s.new_path,))
            c.execute(
                "UPDATE media SET path = ?, sha256 = ?, sidecar = ?, file_size = ?, file_mtime_ns = ?, "
                "record = CASE WHEN json_valid(record) AND json_type(record) = 'object' "
                "THEN json_set(record, '$.path', ?) ELSE record END WHERE path = ?",
                (s.new_path, s.sha256, s.sidecar, s.size, s.mtime_ns, s.new_path, s.old_path),
            )
            c.execute("UPDATE media_fts SET path = ? WHERE path = ?", (s.new_path, s.old_path))
            c.execute(
                "UPDATE pipeline_stages SET path = ?, sha256 = ? WHERE path = ?",
                (s.new_path, s.sha256, s.old_path),
            )

        await self.store._transaction(q)

    async def archived_originals(self, file_ids: Sequence[int]) -> dict[int, str | None]:
        """For purge: each of `file_ids` whose library copy a workflow stage replaced -> the archive copy
        that holds its landed version (recorded with the landed SHA-256), or None when there is none."""
        if not file_ids:
            return {}

        def q(c: sqlite3.Connection) -> dict[int, str | None]:
            out: dict[int, str | None] = {}
            ids = list(file_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for file_id, path in c.execute(
                    "SELECT f.id, s.output_path FROM files f LEFT JOIN file_stages s ON s.file_id = f.id "
                    "AND s.stage = 'archive' AND s.state = ? AND s.output_sha256 = f.sha256 "
                    f"WHERE f.library_sha256 IS NOT NULL AND f.id IN ({marks})",
                    (StageState.DONE, *chunk),
                ):
                    out[file_id] = path
            return out

        return await self.store._read(q)
