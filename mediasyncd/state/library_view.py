"""The read side of the media pipeline's tables: prompt search and the library's files for the control API.

`Catalog` (the pipeline's write side) builds on it; both work on one connection to the state DB.
"""

from __future__ import annotations

import json
import math
import sqlite3
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediasyncd.errors import MediasyncError
from mediasyncd.state.lifecycle import LANDED, sql_set
from mediasyncd.state.query import parse_query, to_sql

SNIPPET_CONTEXT = 16  # characters shown either side of a substring match
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # as SQLite's lower()


@dataclass(frozen=True)
class SearchHit:
    path: str
    generator: str | None
    model: str | None
    snippet: str
    thumbnail: str | None


class LibraryView:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

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
