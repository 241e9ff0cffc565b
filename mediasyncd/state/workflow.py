"""The workflow's part of the state DB (SPEC §3.8): one `file_stages` row per landed file version and
stage. A stage that finishes records its verified output and its `file_staged` event in one transaction.

States: `pending` (not tried yet, or interrupted: a `running` row left by a kill -9 is due again),
`waiting` (its destination or peer is not there: retried, never failed), `running`, `done`, `failed`
(with the last error; retried on `workflow run`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mediasyncd.state.events import EventType, NewEvent, file_data, insert_events
from mediasyncd.state.lifecycle import LANDED, sql_set
from mediasyncd.state.lifecycle import StageState as StageState
from mediasyncd.state.replacements import Intent as Intent
from mediasyncd.state.replacements import Replacements
from mediasyncd.state.replacements import Switch as Switch
from mediasyncd.state.rows import ROW_COLUMNS, FileRow, to_row


@dataclass(frozen=True)
class StageCounts:
    counts: dict[str, int]
    oldest_waiting: float | None
    failures: list[tuple[str, str, str | None]]  # (remote, path, last error)


class StageLedger(Replacements):
    """Typed workflow queries over the shared `Store`."""

    async def due(
        self,
        stages: Sequence[str],
        *,
        processed: bool,
        retry_failed: bool = False,
        after: int = 0,
        limit: int = 256,
    ) -> list[FileRow]:
        """Landed files whose library copy is there and which some of `stages` has not finished (nor
        failed, unless `retry_failed`), with ids above `after`; only those the media pipeline is done with, when `processed`."""
        if not stages:
            return []
        skip = (StageState.DONE,) if retry_failed else (StageState.DONE, StageState.FAILED)
        marks = ", ".join("?" for _ in stages)
        skips = ", ".join("?" for _ in skip)
        sql = (
            f"SELECT {ROW_COLUMNS} FROM files f WHERE local_path IS NOT NULL AND sha256 IS NOT NULL "
            f"AND library_expired_at IS NULL AND state IN {sql_set(LANDED)} "
            f"{'AND processed_at IS NOT NULL ' if processed else ''}"
            f"AND (SELECT COUNT(*) FROM file_stages s WHERE s.file_id = f.id AND s.stage IN ({marks}) "
            f"AND s.state IN ({skips})) < ? AND id > ? ORDER BY id LIMIT ?"
        )

        def q(c: sqlite3.Connection) -> list[FileRow]:
            rows = c.execute(sql, (*stages, *skip, len(stages), after, limit)).fetchall()
            return [to_row(r) for r in rows]

        return await self.store._read(q)

    async def states(self, file_id: int) -> dict[str, StageState]:
        def q(c: sqlite3.Connection) -> dict[str, StageState]:
            rows = c.execute("SELECT stage, state FROM file_stages WHERE file_id = ?", (file_id,))
            return {r[0]: StageState(r[1]) for r in rows}

        return await self.store._read(q)

    async def output(self, file_id: int, stage: str) -> tuple[str, str] | None:
        """A done stage's output path and SHA-256."""

        def q(c: sqlite3.Connection) -> tuple[str, str] | None:
            r = c.execute(
                "SELECT output_path, output_sha256 FROM file_stages WHERE file_id = ? AND stage = ? "
                "AND state = ?",
                (file_id, stage, StageState.DONE),
            ).fetchone()
            return (r[0], r[1]) if r and r[0] and r[1] else None

        return await self.store._read(q)

    async def used(self, stage: str, prefix: str) -> bool:
        """Whether `stage` has put any output under the directory `prefix` (a destination in use)."""
        like = prefix.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"

        def q(c: sqlite3.Connection) -> bool:
            r = c.execute(
                "SELECT 1 FROM file_stages WHERE stage = ? AND state = ? AND output_path LIKE ? ESCAPE '\\' "
                "LIMIT 1",
                (stage, StageState.DONE, like),
            ).fetchone()
            return r is not None

        return await self.store._read(q)

    async def begin(self, file_id: int, stage: str) -> None:
        """The stage starts on the file (one more attempt)."""
        now = time.time()

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO file_stages (file_id, stage, state, attempts, started_at, updated_at) "
                "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (file_id, stage) DO UPDATE SET "
                "state = excluded.state, attempts = attempts + 1, started_at = excluded.started_at, "
                "updated_at = excluded.updated_at",
                (file_id, stage, StageState.RUNNING, now, now),
            )

        await self.store._transaction(q)

    async def finish(
        self, row: FileRow, stage: str, output: str | None, sha256: str | None, note: str | None = None
    ) -> None:
        """The stage is done and verified for the file: its output and `file_staged` event."""
        now = time.time()

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE file_stages SET state = ?, output_path = ?, output_sha256 = ?, last_error = NULL, "
                "finished_at = ?, updated_at = ? WHERE file_id = ? AND stage = ?",
                (StageState.DONE, output, sha256, now, now, row.id, stage),
            )
            # the library path as it is now: a replacing stage (compress, keep_original = false) moved it
            local_path, library_sha256 = c.execute(
                "SELECT local_path, library_sha256 FROM files WHERE id = ?", (row.id,)
            ).fetchone()
            data = file_data(row.id, row.sha256, local_path, stage=stage, output_path=output,
                             output_sha256=sha256)  # fmt: skip
            if library_sha256:
                data["library_sha256"] = library_sha256
            if note:
                data["note"] = note
            insert_events(c, [NewEvent(EventType.FILE_STAGED, row.remote, row.rel, None, data)], now)

        await self.store._transaction(q)

    async def set_back(self, file_id: int, stage: str, state: StageState, error: str) -> None:
        """The stage did not finish: `waiting` (try again later) or `failed` (with the reason)."""

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO file_stages (file_id, stage, state, last_error, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (file_id, stage) DO UPDATE SET state = excluded.state, "
                "last_error = excluded.last_error, updated_at = excluded.updated_at",
                (file_id, stage, state, error, time.time()),
            )

        await self.store._transaction(q)

    async def summary(self, stages: Sequence[str]) -> dict[str, StageCounts]:
        """Per stage: how many landed files are in each state (files without a row are pending), the
        oldest waiting file's landing time and the failures."""

        def q(c: sqlite3.Connection) -> dict[str, StageCounts]:
            landed = c.execute(
                f"SELECT COUNT(*) FROM files WHERE local_path IS NOT NULL AND sha256 IS NOT NULL "
                f"AND library_expired_at IS NULL AND state IN {sql_set(LANDED)}"
            ).fetchone()[0]
            out: dict[str, StageCounts] = {}
            for stage in stages:
                counts = {s.value: 0 for s in StageState}
                for state, n in c.execute(
                    "SELECT state, COUNT(*) FROM file_stages WHERE stage = ? GROUP BY state", (stage,)
                ):
                    counts[state] = n
                counts[StageState.PENDING] += max(0, landed - sum(counts.values()))
                oldest = c.execute(
                    "SELECT MIN(f.landed_at) FROM file_stages s JOIN files f ON f.id = s.file_id "
                    "WHERE s.stage = ? AND s.state = ?",
                    (stage, StageState.WAITING),
                ).fetchone()[0]
                failures = c.execute(
                    "SELECT f.remote, f.rel, s.last_error FROM file_stages s JOIN files f ON f.id = s.file_id "
                    "WHERE s.stage = ? AND s.state = ? ORDER BY s.updated_at DESC LIMIT 20",
                    (stage, StageState.FAILED),
                ).fetchall()
                out[stage] = StageCounts(counts, oldest, [(r[0], r[1], r[2]) for r in failures])
            return out

        return await self.store._read(q)

    async def unfinished(self, file_ids: Sequence[int], stages: Sequence[str]) -> Mapping[int, str]:
        """For purge: each of `file_ids` that some of `stages` has not verified yet -> the first such
        stage (in `stages` order)."""
        if not stages or not file_ids:
            return {}

        def q(c: sqlite3.Connection) -> dict[int, str]:
            done: dict[int, set[str]] = {}
            ids = list(file_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for file_id, stage in c.execute(
                    f"SELECT file_id, stage FROM file_stages WHERE state = ? AND file_id IN ({marks})",
                    (StageState.DONE, *chunk),
                ):
                    done.setdefault(file_id, set()).add(stage)
            out: dict[int, str] = {}
            for file_id in ids:
                missing = [s for s in stages if s not in done.get(file_id, set())]
                if missing:
                    out[file_id] = missing[0]
            return out

        return await self.store._read(q)
