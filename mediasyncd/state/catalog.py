"""The media pipeline's tables in the state DB: stage progress per file, the records, the search index.

`Catalog` is synchronous and works on the Store's connection, on the Store's thread (`Store.catalog`);
read-only callers (`mediasyncd search`) open their own read-only connection (`Catalog.read_only`). The
tables are part of the state DB's migrations (`schema`). Rows are keyed by the library-relative path and
the SHA-256 verified at landing, so a re-landed, changed file starts afresh. Records are stored as the
pipeline's JSON documents; the pipeline turns them back into its own types.
"""

from __future__ import annotations

import json
import math
import sqlite3
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediasyncd.errors import MediasyncError
from mediasyncd.state.connection import open_connection
from mediasyncd.state.lifecycle import LANDED, sql_set
from mediasyncd.state.query import parse_query, to_sql

_RECORD_COLUMNS = ("generator", "prompt", "negative_prompt", "model", "seed", "steps", "cfg", "sampler",
                   "scheduler", "loras", "width", "height")  # fmt: skip
SNIPPET_CONTEXT = 16  # characters shown either side of a substring match
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # as SQLite's lower()
FINISHED = frozenset({"done", "skipped", "error"})


@dataclass(frozen=True)
class SearchHit:
    path: str
    generator: str | None
    model: str | None
    snippet: str
    thumbnail: str | None


@dataclass(frozen=True)
class MediaRow:
    path: str
    sha256: str
    remote: str | None
    rel: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Catalog:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

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

    # -- search ---------------------------------------------------------------------------------------------

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

    def search(self, query: str, limit: int) -> list[SearchHit]:
        """Best matches first (BM25) for the search language of `mediasyncd.state.query`: words and
        phrases, `field:value` filters, `-` negation. Words in scripts without spaces between words
        (Japanese, Chinese, Korean) are found by substring in the prompt, negative prompt, model and path.
        Without words, the newest files matching the filters come first."""
        parsed = parse_query(query)
        if parsed.empty:
            return []
        sql = to_sql(parsed)
        ranked = sql.match is not None
        select = (
            "SELECT m.path, m.generator, m.model, snippet(media_fts, -1, '[', ']', '…', 16), m.thumbnail,"
            " m.prompt, m.negative_prompt FROM media_fts JOIN media AS m ON m.rowid = media_fts.rowid"
            if ranked
            else "SELECT m.path, m.generator, m.model, NULL, m.thumbnail, m.prompt, m.negative_prompt"
            " FROM media AS m"
        )
        where = list(sql.where)
        params = list(sql.params)
        if ranked:
            where[0] = "media_fts MATCH ?"  # the first condition is the ranked MATCH itself
        order = "bm25(media_fts, 2.0, 10.0, 1.0, 3.0, 2.0), m.path" if ranked else "m.updated_at DESC, m.path"
        try:
            rows = self.conn.execute(
                f"{select} LEFT JOIN files AS f ON f.local_path = m.path AND COALESCE(f.library_sha256, f.sha256) = m.sha256"
                f" WHERE {' AND '.join(where) or '1'} ORDER BY {order} LIMIT ?",
                [*params, limit],
            ).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error) or "no such column" in str(error):
                raise MediasyncError(str(error)) from None
            raise
        needle = next((t.text.translate(_ASCII_LOWER) for t in parsed.terms if not t.negated), "")
        return [
            SearchHit(
                path, generator, model, snippet or _snippet((prompt, negative, model, path), needle), thumb
            )
            for path, generator, model, snippet, thumb, prompt, negative in rows
        ]

    # -- the library's files, for the control API ------------------------------------------------------------

    def files(self, query: FileQuery) -> tuple[list[dict[str, Any]], str | None]:
        """Landed files still in the library, newest first, with what the pipeline found; and the cursor
        of the next page (None on the last)."""
        # `+f.state`: not through files_state, so that files_newest gives the order (and LIMIT stops early)
        where = [f"+f.state IN {sql_set(LANDED)}", "f.local_path IS NOT NULL", "f.library_expired_at IS NULL"]
        params: list[Any] = []
        for column, value in (
            ("f.remote", query.remote),
            ("m.generator", query.generator),
            ("m.model", query.model),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            where.append("COALESCE(f.landed_at, f.first_seen) >= ?")
            params.append(query.since)
        if query.cursor is not None:
            at, file_id = query.cursor
            where.append("(COALESCE(f.landed_at, f.first_seen), f.id) < (?, ?)")
            params += [at, file_id]
        if query.q and query.q.split():
            sql = to_sql(parse_query(query.q))
            where += sql.where
            params += sql.params
        rows = self.conn.execute(
            f"{_FILE_SELECT} WHERE {' AND '.join(where)}"
            " ORDER BY COALESCE(f.landed_at, f.first_seen) DESC, f.id DESC LIMIT ?",
            [*params, query.limit + 1],
        ).fetchall()
        page = [_file_row(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        last = rows[query.limit - 1] if more else None
        return page, (f"{last[-1]!r}:{last[0]}" if last is not None else None)

    def file(self, file_id: int) -> dict[str, Any] | None:
        """One landed file still in the library, with the pipeline's full record as `metadata`."""
        row = self.conn.execute(
            f"{_FILE_SELECT} WHERE f.id = ? AND f.state IN {sql_set(LANDED)} AND f.local_path IS NOT NULL"
            " AND f.library_expired_at IS NULL",
            (file_id,),
        ).fetchone()
        if row is None:
            return None
        found = _file_row(row)
        record = self.conn.execute(
            "SELECT m.record FROM files AS f JOIN media AS m ON m.path = f.local_path"
            " AND m.sha256 = COALESCE(f.library_sha256, f.sha256) WHERE f.id = ?",
            (file_id,),
        ).fetchone()
        return found | {"metadata": json.loads(record[0]) if record else None}

    def thumbnail_of(self, file_id: int) -> str | None:
        """The library-relative thumbnail of a landed file's current version, if the pipeline made one."""
        found = self.conn.execute(
            "SELECT m.thumbnail FROM files AS f JOIN media AS m ON m.path = f.local_path AND m.sha256 = COALESCE(f.library_sha256, f.sha256)"
            " WHERE f.id = ?",
            (file_id,),
        ).fetchone()
        return found[0] if found else None

    def record_json(self, path: str) -> dict[str, Any] | None:
        found = self.conn.execute("SELECT record FROM media WHERE path = ?", (path,)).fetchone()
        return json.loads(found[0]) if found else None


@dataclass(frozen=True)
class FileQuery:
    q: str | None = None
    remote: str | None = None
    generator: str | None = None
    model: str | None = None
    since: float | None = None  # landed at or after (epoch seconds)
    limit: int = 50
    cursor: tuple[float, int] | None = None  # (landed_at, id) of the last file of the page before


_FILE_SELECT = (
    "SELECT f.id, f.remote, f.rel, f.local_path, f.size, f.sha256, f.landed_at, f.state,"
    " m.generator, m.model, m.prompt, m.thumbnail, COALESCE(f.landed_at, f.first_seen)"
    " FROM files AS f LEFT JOIN media AS m ON m.path = f.local_path AND m.sha256 = COALESCE(f.library_sha256, f.sha256)"
)


def _file_row(row: Sequence[Any]) -> dict[str, Any]:
    file_id, remote, rel, local, size, sha256, landed_at, state, generator, model, prompt, thumb, _ = row
    return {
        "id": file_id, "remote": remote, "path": rel, "library_path": local, "size": size, "sha256": sha256,
        "landed_at": _iso(landed_at), "state": state, "generator": generator, "model": model,
        "prompt": prompt, "thumbnail": thumb is not None,
    }  # fmt: skip


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_cursor(text: str) -> tuple[float, int]:
    """The cursor `files` returned; ValueError when it is not one."""
    at, _, file_id = text.rpartition(":")
    cursor = float(at), int(file_id)
    if not math.isfinite(cursor[0]) or not 0 <= cursor[1] < 2**63:  # SQLite's integers are 64-bit
        raise ValueError(f"not a cursor: {text!r}")
    return cursor


def _snippet(texts: Sequence[str | None], term: str) -> str:
    """The first text containing `term` (case-insensitively), cut around it, the match in brackets; the
    start of the first text when there is no term."""
    if not term:
        first = next((text for text in texts if text), "")
        return first[: 2 * SNIPPET_CONTEXT] + ("…" if len(first) > 2 * SNIPPET_CONTEXT else "")
    for text in texts:
        at = (text or "").translate(_ASCII_LOWER).find(term)
        if text and at >= 0:
            start, end = max(0, at - SNIPPET_CONTEXT), min(len(text), at + len(term) + SNIPPET_CONTEXT)
            before = ("…" if start else "") + text[start:at]
            after = text[at + len(term) : end] + ("…" if end < len(text) else "")
            return f"{before}[{text[at : at + len(term)]}]{after}"
    return ""
