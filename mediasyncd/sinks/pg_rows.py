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


def insert_events_sql(schema: str) -> str:
    return (
        f"INSERT INTO {schema}.mediasyncd_events (id, type, remote, path, time, payload) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (id) DO NOTHING"
    )


def upsert_files_sql(schema: str) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(FILE_COLUMNS) + 1))
    updates = ", ".join(
        f"{c} = GREATEST(t.{c}, EXCLUDED.{c})"
        if c == "last_event_id"
        else f"{c} = COALESCE(EXCLUDED.{c}, t.{c})"
        for c in FILE_COLUMNS
        if c not in KEY
    )
    return (
        f"INSERT INTO {schema}.mediasyncd_files AS t ({', '.join(FILE_COLUMNS)}) VALUES ({marks}) "
        f"ON CONFLICT (remote, path, sha256) DO UPDATE SET {updates}"
    )


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
