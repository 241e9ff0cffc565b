"""The typed event log (SPEC §3.7): every lifecycle change is an event written in the same transaction
as the change. Consumers read it "since id"; nobody is called back from inside the landing path.

Envelope: {"id", "type", "time" (ISO 8601 UTC, milliseconds), "remote", "path", "sync_id", "data"}.
Every `file_*` event's data carries `file_id`, `sha256` and `library_path`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    FILE_SYNCED = "file_synced"
    FILE_FAILED = "file_failed"
    FILE_PROCESSED = "file_processed"
    FILE_PURGED = "file_purged"
    FILE_EXPIRED = "file_expired"
    FILE_STAGED = "file_staged"
    SYNC_COMPLETE = "sync_complete"
    SYNC_ERROR = "sync_error"
    REMOTE_RECOVERED = "remote_recovered"
    PURGE_COMPLETE = "purge_complete"


@dataclass(frozen=True)
class NewEvent:
    """An event to append (its id and time are given when it is written)."""

    type: EventType
    remote: str | None = None
    path: str | None = None
    sync_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    time: float
    remote: str | None
    path: str | None
    sync_id: str | None
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "time": iso_ms(self.time),
            "remote": self.remote,
            "path": self.path,
            "sync_id": self.sync_id,
            "data": self.data,
        }


def iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def file_data(file_id: int, sha256: str | None, library_path: str | None, **more: Any) -> dict[str, Any]:
    """The keys every `file_*` event carries, and more."""
    return {"file_id": file_id, "sha256": sha256, "library_path": library_path, **more}


# ------------------------------------------------------------------------------------ on the DB thread

EVENT_COLUMNS = "id, type, time, remote, path, sync_id, data"


def insert_events(conn: sqlite3.Connection, events: Iterable[NewEvent], now: float | None = None) -> None:
    """Append events inside the caller's transaction."""
    at = time.time() if now is None else now
    conn.executemany(
        "INSERT INTO events (type, time, remote, path, sync_id, data) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (str(e.type), at, e.remote, e.path, e.sync_id, json.dumps(dict(e.data), separators=(",", ":")))
            for e in events
        ],
    )


def select_events(
    conn: sqlite3.Connection,
    since: int = 0,
    types: Sequence[str] = (),
    limit: int = 1000,
    sink: str | None = None,
) -> list[Event]:
    """Events with ids greater than `since`, oldest first, of `types` (all when empty): those for every
    consumer and, with `sink`, those back-filled for that sink only."""
    where, params = "id > ?", [since, *types]
    if types:
        where += f" AND type IN ({', '.join('?' for _ in types)})"
    if sink is None:
        where += " AND sink IS NULL"
    else:
        where += " AND (sink IS NULL OR sink = ?)"
        params.append(sink)
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT ?", [*params, limit]
    ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]
