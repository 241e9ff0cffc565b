"""The media pipeline's tables in the state DB: stage progress per file, the records, the search index.

`Catalog` is synchronous and works on the Store's connection, on the Store's thread (`Store.catalog`);
read-only callers (`mediasyncd search`) open their own read-only connection (`Catalog.read_only`). The
tables are part of the state DB's migrations (`schema`). Rows are keyed by the library-relative path and
the SHA-256 verified at landing, so a re-landed, changed file starts afresh. Records are stored as the
pipeline's JSON documents; the pipeline turns them back into its own types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediasyncd.errors import MediasyncError
from mediasyncd.state.connection import open_connection
from mediasyncd.state.library_view import (
    SNIPPET_CONTEXT,
    FileQuery,
    LibraryView,
    SearchHit,
    parse_cursor,
)

__all__ = ["FINISHED", "SNIPPET_CONTEXT", "Catalog", "FileQuery", "MediaRow", "SearchHit", "parse_cursor"]

_RECORD_COLUMNS = ("generator", "prompt", "negative_prompt", "model", "seed", "steps", "cfg", "sampler",
                   "scheduler", "loras", "width", "height")  # fmt: skip
FINISHED = frozenset({"done", "skipped", "error"})


@dataclass(frozen=True)
class MediaRow:
    path: str
    sha256: str
    remote: str | None
    rel: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Catalog(LibraryView):
    """The pipeline's write side (stage progress, records, the index) on top of the read side."""

    @classmethod
    def read_only(cls, db_path: Path) -> Catalog:
        """A catalog on its own read-only connection (no lock; beside a running daemon)."""
        if not db_path.is_file():
            raise MediasyncError(f"no state database at {db_path}")
        return cls(open_connection(db_path, read_only=True))

    def close(self) -> None:
        self.conn.close()

    # -- stages ---------------------------------------------------------------------------------------------

    def stage_states(self, path: str, sha256: str) -> dict[str, tuple[str, str | None]]:
        """{stage: (status, detail)} recorded for this version of the file."""
        rows = self.conn.execute(
            "SELECT stage, status, detail FROM pipeline_stages WHERE path = ? AND sha256 = ?", (path, sha256)
        )
        return {stage: (status, detail) for stage, status, detail in rows.fetchall()}

    def stage_rows(self, path: str) -> list[tuple[str, str, str, str | None, int]]:
        """(sha256, stage, status, detail, runs) for every stage row of `path`."""
        rows = self.conn.execute(
            "SELECT sha256, stage, status, detail, runs FROM pipeline_stages WHERE path = ? ORDER BY stage",
            (path,),
        )
        return rows.fetchall()

    def begin(self, path: str, sha256: str, stage: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO pipeline_stages (path, sha256, stage, status, runs, updated_at)"
                " VALUES (?, ?, ?, 'running', 1, ?)"
                " ON CONFLICT (path, sha256, stage) DO UPDATE SET"
                " status = 'running', detail = NULL, runs = runs + 1, updated_at = excluded.updated_at",
                (path, sha256, stage, _now()),
            )

    def finish(self, path: str, sha256: str, stage: str, status: str, detail: str | None) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE pipeline_stages SET status = ?, detail = ?, updated_at = ?"
                " WHERE path = ? AND sha256 = ? AND stage = ?",
                (status, detail, _now(), path, sha256, stage),
            )

    def reset(self, path: str, sha256: str, stages: Iterable[str]) -> None:
        """Mark stages `pending` so the next run redoes them (and rebuilds their outputs)."""
        with self.conn:
            self.conn.executemany(
                "UPDATE pipeline_stages SET status = 'pending', updated_at = ?"
                " WHERE path = ? AND sha256 = ? AND stage = ?",
                [(_now(), path, sha256, stage) for stage in stages],
            )

    def forget_other_versions(self, path: str, sha256: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM pipeline_stages WHERE path = ? AND sha256 != ?", (path, sha256))

    # -- records --------------------------------------------------------------------------------------------

    def save_record(
        self,
        row: MediaRow,
        record: dict[str, Any],
        error: str | None,
        file_stat: tuple[int, int] | None = None,
    ) -> None:
        """Store the pipeline's record document; the search index and filters read its `generator`,
        `prompt`, `negative_prompt`, `model`, `seed`, `steps`, `cfg`, `sampler`, `scheduler`, `loras`,
        `width` and `height` keys."""
        document = json.dumps(record, ensure_ascii=False)
        columns = {name: record.get(name) for name in _RECORD_COLUMNS}
        columns["seed"] = str(record["seed"]) if isinstance(record.get("seed"), int) else None
        loras = [str(item.get("name")) for item in record.get("loras") or [] if isinstance(item, dict)]
        columns["loras"] = "\n".join(loras) or None
        columns["file_size"], columns["file_mtime_ns"] = file_stat or (None, None)
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns)
        with self.conn:
            self.conn.execute(
                f"INSERT INTO media (path, sha256, remote, rel, {names}, record, error, updated_at)"
                f" VALUES (?, ?, ?, ?, {marks}, ?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, remote = excluded.remote,"
                f" rel = excluded.rel, {updates},"
                " record = excluded.record, error = excluded.error, updated_at = excluded.updated_at",
                (row.path, row.sha256, row.remote, row.rel, *columns.values(), document, error, _now()),
            )

    def set_file_stat(self, path: str, size: int, mtime_ns: int) -> None:
        """The library file's size and mtime when its record was made (what the audit compares)."""
        with self.conn:
            self.conn.execute(
                "UPDATE media SET file_size = ?, file_mtime_ns = ? WHERE path = ?", (size, mtime_ns, path)
            )

    def audit_rows(self) -> list[tuple[MediaRow, int | None, int | None]]:
        """Every known file with the size and mtime (ns) recorded for it."""
        rows = self.conn.execute(
            "SELECT path, sha256, remote, rel, file_size, file_mtime_ns FROM media ORDER BY path"
        ).fetchall()
        return [(MediaRow(*row[:4]), row[4], row[5]) for row in rows]

    def forget(self, path: str) -> str | None:
        """Drop `path` from the catalog and the index (its library file is gone); the thumbnail it used,
        when no other file's record shares it, for the caller to delete."""
        with self.conn:
            found = self.conn.execute("SELECT rowid, thumbnail FROM media WHERE path = ?", (path,)).fetchone()
            if found is None:
                return None
            rowid, thumbnail = found
            self.conn.execute("DELETE FROM media_fts WHERE rowid = ?", (rowid,))
            self.conn.execute("DELETE FROM media WHERE rowid = ?", (rowid,))
            self.conn.execute("DELETE FROM pipeline_stages WHERE path = ?", (path,))
            shared = self.conn.execute("SELECT 1 FROM media WHERE thumbnail = ?", (thumbnail,)).fetchone()
        return None if thumbnail is None or shared else str(thumbnail)

    def load_record(self, path: str, sha256: str) -> dict[str, Any] | None:
        found = self.conn.execute(
            "SELECT record FROM media WHERE path = ? AND sha256 = ?", (path, sha256)
        ).fetchone()
        return dict(json.loads(found[0])) if found else None

    def set_output(self, path: str, column: str, value: str | None) -> None:
        if column not in ("sidecar", "thumbnail"):
            raise ValueError(f"not an output column: {column}")
        with self.conn:
            self.conn.execute(f"UPDATE media SET {column} = ? WHERE path = ?", (value, path))

    def media_rows(self, paths: Sequence[str] = ()) -> list[MediaRow]:
        """Known files, all of them or those at `paths` (library-relative), in path order."""
        query = "SELECT path, sha256, remote, rel FROM media"
        if paths:
            marks = ", ".join("?" for _ in paths)
            rows = self.conn.execute(f"{query} WHERE path IN ({marks}) ORDER BY path", list(paths))
        else:
            rows = self.conn.execute(f"{query} ORDER BY path")
        return [MediaRow(*row) for row in rows.fetchall()]

    # -- search index ---------------------------------------------------------------------------------------

    def index(self, path: str) -> bool:
        """(Re)index `path` from its stored record; False when there is no record to index."""
        found = self.conn.execute(
            "SELECT rowid, prompt, negative_prompt, model, generator FROM media WHERE path = ?", (path,)
        ).fetchone()
        if found is None:
            return False
        rowid, prompt, negative, model, generator = found
        with self.conn:
            self.conn.execute("DELETE FROM media_fts WHERE rowid = ?", (rowid,))
            self.conn.execute(
                "INSERT INTO media_fts (rowid, path, prompt, negative_prompt, model, generator)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rowid, path, prompt or "", negative or "", model or "", generator or ""),
            )
        return True
