"""The sinks' part of the state DB (SPEC §3.7): positions (rows `sink:<name>` of `consumers`), back-fill,
rejected ("poison") events, a 410's disabling, and the requests `events replay|retry` leave for the
daemon. Functions take a connection (the CLI opens its own); `SinkLedger` runs them on the Store's thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from mediasyncd.errors import MediasyncError
from mediasyncd.state.connection import open_connection
from mediasyncd.state.events import Event, EventType, file_data, select_events
from mediasyncd.state.lifecycle import LANDED, sql_set
from mediasyncd.state.store import Store

T = TypeVar("T")
SUMMARY_KEYS = ("generator", "prompt", "negative_prompt", "model", "seed", "steps", "cfg", "width", "height")


def consumer_of(sink: str) -> str:
    return f"sink:{sink}"


@dataclass(frozen=True)
class Rejected:
    """An event a sink rejected: retried until `attempts` reaches the sink's limit, then parked."""

    event_id: int
    envelope: dict[str, Any]
    attempts: int
    error: str | None
    parked: bool


@dataclass(frozen=True)
class Requests:
    """What `events replay|retry` asked the running daemon to do for one sink."""

    rewind_to: int | None = None
    requeued: bool = False


@dataclass(frozen=True)
class SinkRecord:
    """One sink as the state DB knows it (for `events status` without a daemon)."""

    name: str
    acked_id: int
    enabled: bool
    parked: int
    retrying: int
    last_error: str | None
    lag_events: int
    oldest_pending: float | None
    gone_reason: str | None


# ------------------------------------------------------------------------------------------ back-fill


def backfill(conn: sqlite3.Connection, sink: str, now: float | None = None, *, force: bool = False) -> int:
    """A sink seen for the first time (or `force`: `events replay --all`) gets one synthetic event per
    landed file (synced, processed with its metadata, purged, expired) whose event the log no longer
    holds for it, marked `"backfill": true`, with fresh ids, addressed to it only. Returns how many."""
    at = time.time() if now is None else now
    known = conn.execute("SELECT 1 FROM sink_state WHERE name = ?", (sink,)).fetchone()
    if known and not force:
        return 0
    if not known:
        conn.execute("INSERT INTO sink_state (name, created_at) VALUES (?, ?)", (sink, at))
    in_log: dict[str, set[int]] = {}
    for kind, file_id in conn.execute(
        "SELECT type, json_extract(data, '$.file_id') FROM events WHERE type IN (?, ?, ?, ?) "
        "AND (sink IS NULL OR sink = ?)",
        (
            EventType.FILE_SYNCED,
            EventType.FILE_PROCESSED,
            EventType.FILE_PURGED,
            EventType.FILE_EXPIRED,
            sink,
        ),
    ):
        in_log.setdefault(kind, set()).add(file_id)
    rows = conn.execute(
        "SELECT f.id, f.remote, f.rel, f.sha256, f.local_path, f.size, f.mtime, f.landed_at, "
        "f.processed_at, f.purged_at, f.library_expired_at, m.record FROM files f "
        "LEFT JOIN media m ON m.path = f.local_path AND m.sha256 = COALESCE(f.library_sha256, f.sha256) "
        f"WHERE f.state IN {sql_set(LANDED)} AND f.local_path IS NOT NULL ORDER BY f.id"
    ).fetchall()
    out: list[tuple[Any, ...]] = []

    def add(kind: EventType, r: tuple[Any, ...], data: dict[str, Any]) -> None:
        if r[0] in in_log.get(kind, ()):
            return
        data["backfill"] = True
        out.append((str(kind), at, r[1], r[2], json.dumps(data, separators=(",", ":")), sink))

    for r in rows:
        base = (r[0], r[3], r[4])
        add(EventType.FILE_SYNCED, r, file_data(*base, size=r[5], mtime=r[6], landed_at=r[7]))
        if r[8] is not None:
            add(EventType.FILE_PROCESSED, r, file_data(*base, **_summary(r[11])))
        if r[9] is not None:
            add(EventType.FILE_PURGED, r, file_data(*base, size=r[5]))
        if r[10] is not None:
            add(EventType.FILE_EXPIRED, r, file_data(*base, size=r[5]))
    conn.executemany(
        "INSERT INTO events (type, time, remote, path, sync_id, data, sink) VALUES (?, ?, ?, ?, NULL, ?, ?)",
        out,
    )
    return len(out)


def _summary(record: str | None) -> dict[str, Any]:
    if record is None:
        return {}
    parsed = json.loads(record)
    return {key: parsed.get(key) for key in SUMMARY_KEYS} | {"metadata": parsed}


# ----------------------------------------------------------------------------------- positions, reads


def enable_sinks(conn: sqlite3.Connection, sinks: Sequence[str]) -> None:
    """Only these sinks (of the current config, not disabled by a 410) hold the log back."""
    now = time.time()
    conn.execute("UPDATE consumers SET enabled = 0 WHERE name LIKE 'sink:%'")
    conn.executemany(
        "INSERT INTO consumers (name, acked_id, updated_at) VALUES (?, 0, ?) "
        "ON CONFLICT(name) DO UPDATE SET enabled = 1",
        [(consumer_of(s), now) for s in sinks],
    )


def set_position(conn: sqlite3.Connection, sink: str, event_id: int) -> None:
    """Move a sink's acknowledged position anywhere, backwards too (a replay)."""
    conn.execute(
        "INSERT INTO consumers (name, acked_id, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET acked_id = excluded.acked_id, updated_at = excluded.updated_at",
        (consumer_of(sink), event_id, time.time()),
    )


def head(conn: sqlite3.Connection, sink: str) -> tuple[int, int, float | None]:
    """(newest event id for `sink`, events after its position, time of the oldest of those)."""
    acked = _acked(conn, sink)
    newest = conn.execute(
        "SELECT id FROM events WHERE sink IS NULL OR sink = ? ORDER BY id DESC LIMIT 1", (sink,)
    ).fetchone()
    pending = conn.execute(
        "SELECT COUNT(*), MIN(time) FROM events WHERE id > ? AND (sink IS NULL OR sink = ?)", (acked, sink)
    ).fetchone()
    return (int(newest[0]) if newest else 0, int(pending[0]), pending[1])


def _acked(conn: sqlite3.Connection, sink: str) -> int:
    r = conn.execute("SELECT acked_id FROM consumers WHERE name = ?", (consumer_of(sink),)).fetchone()
    return int(r[0]) if r else 0


# ----------------------------------------------------------------------------------------- rejects


def record_reject(
    conn: sqlite3.Connection, sink: str, event: Event, error: str, max_attempts: int
) -> Rejected:
    """One more failed attempt of an event the sink rejected; parked once it reached `max_attempts`."""
    conn.execute(
        "INSERT INTO sink_rejects (sink, event_id, envelope, attempts, error, updated_at) "
        "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(sink, event_id) DO UPDATE SET "
        "attempts = attempts + 1, error = excluded.error, updated_at = excluded.updated_at",
        (sink, event.id, json.dumps(event.envelope()), error[:2000], time.time()),
    )
    conn.execute(
        "UPDATE sink_rejects SET parked = 1 WHERE sink = ? AND event_id = ? AND attempts >= ?",
        (sink, event.id, max_attempts),
    )
    return _reject(conn, sink, event.id)


def _reject(conn: sqlite3.Connection, sink: str, event_id: int) -> Rejected:
    r = conn.execute(
        "SELECT event_id, envelope, attempts, error, parked FROM sink_rejects WHERE sink = ? AND event_id = ?",
        (sink, event_id),
    ).fetchone()
    return Rejected(r[0], json.loads(r[1]), r[2], r[3], bool(r[4]))


def attempts_of(conn: sqlite3.Connection, sink: str, event_id: int) -> int:
    r = conn.execute(
        "SELECT attempts FROM sink_rejects WHERE sink = ? AND event_id = ?", (sink, event_id)
    ).fetchone()
    return int(r[0]) if r else 0


def clear_reject(conn: sqlite3.Connection, sink: str, event_id: int) -> None:
    conn.execute("DELETE FROM sink_rejects WHERE sink = ? AND event_id = ?", (sink, event_id))


def requeued(conn: sqlite3.Connection, sink: str) -> list[Rejected]:
    """Events `events retry` took out of the parking, behind the sink's position: delivered out of order."""
    rows = conn.execute(
        "SELECT event_id, envelope, attempts, error, parked FROM sink_rejects r WHERE sink = ? AND parked = 0 "
        "AND event_id <= (SELECT COALESCE(MAX(acked_id), 0) FROM consumers WHERE name = ?) ORDER BY event_id",
        (sink, consumer_of(sink)),
    ).fetchall()
    return [Rejected(r[0], json.loads(r[1]), r[2], r[3], bool(r[4])) for r in rows]


def requeue_parked(conn: sqlite3.Connection, sink: str) -> int:
    """`events retry --sink`: parked events go back to the sink (with fresh attempts)."""
    n = conn.execute(
        "UPDATE sink_rejects SET parked = 0, attempts = 0 WHERE sink = ? AND parked = 1", (sink,)
    ).rowcount
    _ensure_state(conn, sink)
    conn.execute("UPDATE sink_state SET requeued = 1 WHERE name = ?", (sink,))
    return n


def replay(conn: sqlite3.Connection, sink: str, since: int | None) -> int:
    """`events replay --sink`: deliver again from after `since`, or (None) everything: the whole log and
    a back-fill of what left it. Returns how many synthetic events were written."""
    made = backfill(conn, sink, force=True) if since is None else 0
    to = since or 0
    set_position(conn, sink, to)
    _ensure_state(conn, sink)
    conn.execute("UPDATE sink_state SET rewind_to = ? WHERE name = ?", (to, sink))
    return made


def take_requests(conn: sqlite3.Connection, sink: str) -> Requests:
    r = conn.execute("SELECT rewind_to, requeued FROM sink_state WHERE name = ?", (sink,)).fetchone()
    if r is None or (r[0] is None and not r[1]):
        return Requests()
    conn.execute("UPDATE sink_state SET rewind_to = NULL, requeued = 0 WHERE name = ?", (sink,))
    return Requests(r[0], bool(r[1]))


def _ensure_state(conn: sqlite3.Connection, sink: str) -> None:
    conn.execute(
        "INSERT INTO sink_state (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
        (sink, time.time()),
    )


# -------------------------------------------------------------------------------------------- a 410


def mark_gone(conn: sqlite3.Connection, sink: str, fingerprint: str, reason: str) -> None:
    _ensure_state(conn, sink)
    conn.execute(
        "UPDATE sink_state SET gone_fingerprint = ?, gone_reason = ? WHERE name = ?",
        (fingerprint, reason, sink),
    )


def gone(conn: sqlite3.Connection, sink: str, fingerprint: str) -> str | None:
    """Why the sink is disabled, when a 410 disabled it with this very config."""
    r = conn.execute(
        "SELECT gone_reason FROM sink_state WHERE name = ? AND gone_fingerprint = ?", (sink, fingerprint)
    ).fetchone()
    return str(r[0]) if r else None


# ------------------------------------------------------------------------------------------ overview


def records(conn: sqlite3.Connection) -> list[SinkRecord]:
    """Every sink the state DB knows of."""
    names = [r[0] for r in conn.execute("SELECT name FROM sink_state ORDER BY name")]
    out = []
    for name in names:
        acked, enabled = conn.execute(
            "SELECT acked_id, enabled FROM consumers WHERE name = ?", (consumer_of(name),)
        ).fetchone() or (0, 0)
        counts = conn.execute(
            "SELECT COALESCE(SUM(parked), 0), COALESCE(SUM(1 - parked), 0) FROM sink_rejects WHERE sink = ?",
            (name,),
        ).fetchone()
        last = conn.execute(
            "SELECT error FROM sink_rejects WHERE sink = ? ORDER BY updated_at DESC LIMIT 1", (name,)
        ).fetchone()
        _, lag, oldest = head(conn, name)
        gone_reason = conn.execute("SELECT gone_reason FROM sink_state WHERE name = ?", (name,)).fetchone()[0]
        out.append(
            SinkRecord(
                name, int(acked), bool(enabled), int(counts[0]), int(counts[1]), last[0] if last else None,
                lag, oldest, gone_reason,
            )
        )  # fmt: skip
    return out


class SinkLedger:
    """The sink queries over the shared `Store`, on its thread; writes wake the log's followers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def backfill(self, sink: str) -> int:
        return await self.store._transaction(lambda c: backfill(c, sink))

    async def enable(self, sinks: Sequence[str]) -> None:
        await self.store._transaction(lambda c: enable_sinks(c, sinks))

    async def events(self, sink: str, since: int, limit: int) -> list[Event]:
        return await self.store._read(lambda c: select_events(c, since, (), limit, sink=sink))

    async def ack(self, sink: str, event_id: int) -> None:
        await self.store.ack(consumer_of(sink), event_id)

    async def acked(self, sink: str) -> int:
        return await self.store.acked(consumer_of(sink))

    async def set_position(self, sink: str, event_id: int) -> None:
        await self.store._transaction(lambda c: set_position(c, sink, event_id))

    async def head(self, sink: str) -> tuple[int, int, float | None]:
        return await self.store._read(lambda c: head(c, sink))

    async def record_reject(self, sink: str, event: Event, error: str, max_attempts: int) -> Rejected:
        return await self.store._transaction(lambda c: record_reject(c, sink, event, error, max_attempts))

    async def attempts(self, sink: str, event_id: int) -> int:
        return await self.store._read(lambda c: attempts_of(c, sink, event_id))

    async def clear_reject(self, sink: str, event_id: int) -> None:
        await self.store._transaction(lambda c: clear_reject(c, sink, event_id))

    async def requeued(self, sink: str) -> list[Rejected]:
        return await self.store._read(lambda c: requeued(c, sink))

    async def parked(self, sink: str) -> int:
        return await self.store._read(
            lambda c: int(
                c.execute(
                    "SELECT COUNT(*) FROM sink_rejects WHERE sink = ? AND parked = 1", (sink,)
                ).fetchone()[0]
            )
        )

    async def take_requests(self, sink: str) -> Requests:
        return await self.store._read(lambda c: take_requests(c, sink))

    async def mark_gone(self, sink: str, fingerprint: str, reason: str) -> None:
        await self.store._transaction(lambda c: mark_gone(c, sink, fingerprint, reason))

    async def gone(self, sink: str, fingerprint: str) -> str | None:
        return await self.store._read(lambda c: gone(c, sink, fingerprint))


def event_from_envelope(env: dict[str, Any]) -> Event:
    """An envelope kept for a parked event, back into an Event (its time as stored in the envelope)."""
    ts = datetime.fromisoformat(str(env["time"]).replace("Z", "+00:00")).timestamp()
    return Event(
        int(env["id"]),
        str(env["type"]),
        ts,
        env.get("remote"),
        env.get("path"),
        env.get("sync_id"),
        env["data"],
    )


# ------------------------------------------------------------------------------- from another process


def in_transaction(db_path: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` in one write transaction on a connection of its own (`mediasyncd events retry|replay`,
    beside the running daemon, which picks the requests up within a second)."""
    if not db_path.is_file():
        raise MediasyncError(f"no state DB at {db_path} (has the daemon or `sync --once` run yet?)")
    conn = open_connection(db_path)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sink_state'").fetchone() is None:
            raise MediasyncError(f"the state DB {db_path} predates sinks: run `mediasyncd run` once")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result
    except sqlite3.OperationalError as exc:
        raise MediasyncError(f"cannot write the state DB {db_path}: {exc}") from None
    finally:
        conn.close()


def read_records(db_path: Path) -> list[SinkRecord]:
    """`records`, read-only (no lock, no write), beside a running daemon."""
    if not db_path.is_file():
        raise MediasyncError(f"no state DB at {db_path} (has the daemon or `sync --once` run yet?)")
    conn = open_connection(db_path, read_only=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sink_state'").fetchone() is None:
            return []
        return records(conn)
    except sqlite3.OperationalError as exc:
        raise MediasyncError(f"cannot read the state DB {db_path}: {exc}") from None
    finally:
        conn.close()
