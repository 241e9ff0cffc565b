"""The PostgreSQL sink's pure part: its schema (versioned migrations), its two statements, and the rows
they take, built from envelopes (SPEC §3.7: `mediasyncd_events`, `mediasyncd_files`).

Each file event's upsert sets only what that event knows: the other columns go as NULL and the upsert
keeps what is there (`COALESCE(EXCLUDED.c, t.c)`), so a late or re-delivered event never clears what
another one wrote, and a re-delivered event changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mediasyncd.sinks.base import Envelope

MIGRATIONS: Sequence[str] = (
    # 1: the contract's two tables, a full-text index of prompts, the usual lookups
    """
    CREATE TABLE {s}.mediasyncd_events (
        id bigint PRIMARY KEY,
        type text NOT NULL,
        remote text,
        path text,
        time timestamptz NOT NULL,
        payload jsonb NOT NULL
    );
    CREATE INDEX mediasyncd_events_type ON {s}.mediasyncd_events (type, id);
    CREATE TABLE {s}.mediasyncd_files (
        remote text NOT NULL,
        path text NOT NULL,
        sha256 text NOT NULL,
        file_id bigint,
        size bigint,
        library_path text,
        mtime timestamptz,
        landed_at timestamptz,
        processed_at timestamptz,
        purged_at timestamptz,
        expired_at timestamptz,
        generator text,
        prompt text,
        negative_prompt text,
        model text,
        seed numeric,
        steps integer,
        cfg double precision,
        width integer,
        height integer,
        metadata jsonb,
        last_event_id bigint NOT NULL,
        prompt_tsv tsvector GENERATED ALWAYS AS
            (to_tsvector('english', coalesce(prompt, '') || ' ' || coalesce(negative_prompt, ''))) STORED,
        PRIMARY KEY (remote, path, sha256)
    );
    CREATE INDEX mediasyncd_files_prompt ON {s}.mediasyncd_files USING gin (prompt_tsv);
    CREATE INDEX mediasyncd_files_model ON {s}.mediasyncd_files (model);
    CREATE INDEX mediasyncd_files_landed ON {s}.mediasyncd_files (landed_at);
    """,
)

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS {s}.mediasyncd_schema (version integer NOT NULL)"

FILE_COLUMNS = (
    "remote", "path", "sha256", "file_id", "size", "library_path", "mtime", "landed_at", "processed_at",
    "purged_at", "expired_at", "generator", "prompt", "negative_prompt", "model", "seed", "steps", "cfg",
    "width", "height", "metadata", "last_event_id",
)  # fmt: skip
KEY = ("remote", "path", "sha256")
SUMMARY_TEXT = ("generator", "prompt", "negative_prompt", "model")
SUMMARY_INT = ("steps", "width", "height")
EVENT_TIME_COLUMN = {
    "file_synced": "landed_at",
    "file_processed": "processed_at",
    "file_purged": "purged_at",
    "file_expired": "expired_at",
}


EVENT_COLUMNS = ("id", "type", "remote", "path", "time", "payload")
FILE_TYPES = {
    "remote": "text", "path": "text", "sha256": "text", "file_id": "bigint", "size": "bigint",
    "library_path": "text", "mtime": "timestamptz", "landed_at": "timestamptz", "processed_at": "timestamptz",
    "purged_at": "timestamptz", "expired_at": "timestamptz", "generator": "text", "prompt": "text",
    "negative_prompt": "text", "model": "text", "seed": "numeric", "steps": "integer", "cfg": "double precision",
    "width": "integer", "height": "integer", "metadata": "jsonb", "last_event_id": "bigint",
}  # fmt: skip

# A batch is copied (COPY, binary) into these per-connection staging tables, then moved in one statement
# each: far fewer round trips and per-row executions than one INSERT per row.
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS mediasyncd_batch_events (id bigint, type text, remote text, path text, "
    "time timestamptz, payload jsonb) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS mediasyncd_batch_files ("
    + ", ".join(f"{c} {FILE_TYPES[c]}" for c in FILE_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)


def insert_events_sql(schema: str) -> str:
    cols = ", ".join(EVENT_COLUMNS)
    return (
        f"INSERT INTO {schema}.mediasyncd_events ({cols}) SELECT {cols} FROM mediasyncd_batch_events "
        "ORDER BY id ON CONFLICT (id) DO NOTHING"
    )


def upsert_files_sql(schema: str) -> str:
    cols = ", ".join(FILE_COLUMNS)
    updates = ", ".join(
        f"{c} = GREATEST(t.{c}, EXCLUDED.{c})"
        if c == "last_event_id"
        else f"{c} = COALESCE(EXCLUDED.{c}, t.{c})"
        for c in FILE_COLUMNS
        if c not in KEY
    )
    return (
        f"INSERT INTO {schema}.mediasyncd_files AS t ({cols}) SELECT {cols} FROM mediasyncd_batch_files "
        f"ON CONFLICT (remote, path, sha256) DO UPDATE SET {updates}"
    )


def merge_file_rows(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per file key (one statement may not update a row twice): the batch's events applied in
    order, as the upsert applies them one after another — a later value wins, a NULL never clears."""
    merged: dict[tuple[Any, ...], list[Any]] = {}
    last = FILE_COLUMNS.index("last_event_id")
    for row in rows:
        key = row[: len(KEY)]
        seen = merged.get(key)
        if seen is None:
            merged[key] = list(row)
            continue
        for i, value in enumerate(row):
            if i == last:
                seen[i] = max(seen[i], value)
            elif value is not None:
                seen[i] = value
    return [tuple(r) for r in merged.values()]


def event_row(env: Envelope) -> tuple[Any, ...]:
    return (
        int(env["id"]),
        str(env["type"]),
        env.get("remote"),
        env.get("path"),
        parse_time(str(env["time"])),
        json.dumps(env, ensure_ascii=False, separators=(",", ":")),
    )


def file_row(env: Envelope) -> tuple[Any, ...] | None:
    """The upsert of `mediasyncd_files` an event implies, or None (not about a landed file)."""
    column = EVENT_TIME_COLUMN.get(str(env["type"]))
    data: Mapping[str, Any] = env.get("data") or {}
    if column is None or env.get("remote") is None or env.get("path") is None or not data.get("sha256"):
        return None
    at: datetime | None = parse_time(str(env["time"]))
    if column == "landed_at" and isinstance(data.get("landed_at"), int | float):
        at = _epoch(data["landed_at"])  # a back-filled file_synced knows when the file really landed
    values: dict[str, Any] = {
        "remote": env["remote"],
        "path": env["path"],
        "sha256": data["sha256"],
        "file_id": _int(data.get("file_id"), 1 << 63),
        "library_path": data.get("library_path"),
        "last_event_id": int(env["id"]),
        column: at,
    }
    if column in ("landed_at",):
        values["size"] = _int(data.get("size"), 1 << 63)
        values["mtime"] = _epoch(data.get("mtime"))
    if column == "processed_at":
        values |= {key: _text(data.get(key)) for key in SUMMARY_TEXT}
        values |= {key: _int(data.get(key), 1 << 31) for key in SUMMARY_INT}
        values["seed"] = _numeric(data.get("seed"))
        values["cfg"] = _float(data.get("cfg"))
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            values["metadata"] = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    return tuple(values.get(c) for c in FILE_COLUMNS)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any, bound: int) -> int | None:
    """An integer that fits the column; anything else is left out rather than failing the batch."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return value if isinstance(value, int) and -bound <= value < bound else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _numeric(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
