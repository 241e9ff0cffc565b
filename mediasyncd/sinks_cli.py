"""`mediasyncd events status|retry|replay`: the sinks seen from the state DB (and, when the daemon runs,
its live view: backoff, the last outage), beside the running daemon or without it. `retry` and `replay` leave requests in the state DB that the daemon picks up within a
second (and that the next start honours)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, TextIO

import aiohttp

from mediasyncd.config import Config
from mediasyncd.daemon_client import DaemonClient
from mediasyncd.errors import MediasyncError
from mediasyncd.state import sinks as ledger


def sinks_main(
    config: Config,
    action: str,
    *,
    sink: str | None,
    since: int | None,
    replay_all: bool,
    as_json: bool,
    out: TextIO = sys.stdout,
) -> int:
    db = config.daemon.db_path
    try:
        if action == "status":
            return _status(config, as_json, out)
        if sink is None:
            return _usage(f"`events {action}` needs --sink NAME")
        if sink not in {s.name for s in config.sinks}:
            known = ", ".join(s.name for s in config.sinks) or "none"
            return _usage(f"no sink {sink!r} in the config (sinks: {known})")
        if action == "retry":
            n = ledger.in_transaction(db, lambda c: ledger.requeue_parked(c, sink))
            print(f"{sink}: {n} parked event(s) re-queued", file=out)
            return 0
        if (since is None) == (not replay_all):
            return _usage("`events replay` needs either --since ID or --all")
        made = ledger.in_transaction(db, lambda c: ledger.replay(c, sink, None if replay_all else since))
        what = "the whole log" if replay_all else f"the events after {since}"
        extra = (
            f", plus {made} back-filled event(s) for files whose events left the log" if replay_all else ""
        )
        print(f"{sink}: will deliver {what} again{extra}", file=out)
        return 0
    except MediasyncError as exc:
        print(f"mediasyncd events: {exc}", file=sys.stderr)
        return 1


def _usage(message: str) -> int:
    print(f"mediasyncd events: {message}", file=sys.stderr)
    return 2


def _live(config: Config) -> dict[str, dict[str, Any]] | None:
    """The running daemon's own view of its sinks (state `backoff`, the last outage), when one runs."""
    client = DaemonClient.running(config)
    if client is None:
        return None
    try:
        status = asyncio.run(client.get("/status"))
    except (MediasyncError, OSError, aiohttp.ClientError, TimeoutError):
        return None
    return {str(s["name"]): s for s in status.get("sinks", [])}


def _status(config: Config, as_json: bool, out: TextIO) -> int:
    known = {r.name: r for r in ledger.read_records(config.daemon.db_path)}
    live = _live(config)
    rows: list[dict[str, Any]] = []
    now = time.time()
    for sink in config.sinks:
        record = known.pop(sink.name, None)
        rows.append(_row(sink.name, sink.type, sink.enabled, record, now))
    for name, record in known.items():
        rows.append(_row(name, None, False, record, now) | {"state": "removed"})
    for row in rows:
        seen = (live or {}).get(row["name"])
        if seen:
            row |= {
                k: seen[k] for k in ("state", "acked_id", "lag_events", "lag_s", "last_error") if k in seen
            }
    if as_json:
        out.write(json.dumps({"sinks": rows, "daemon_running": live is not None}) + "\n")
        return 0
    if not rows:
        print("no sinks configured", file=out)
    for r in rows:
        line = (
            f"{r['name']:<12} {r['type'] or '-':<10} {r['state']:<9} acked={r['acked_id']} "
            f"lag={r['lag_events']} ({r['lag_s']:.0f}s) parked={r['parked']}"
        )
        if r["last_error"]:
            line += f" last_error={r['last_error']}"
        print(line, file=out)
    return 0


def _row(
    name: str, kind: str | None, enabled: bool, r: ledger.SinkRecord | None, now: float
) -> dict[str, Any]:
    if r is None:
        return {
            "name": name, "type": kind, "state": "new" if enabled else "disabled", "acked_id": 0,
            "lag_events": None, "lag_s": 0.0, "parked": 0, "retrying": 0, "last_error": None,
        }  # fmt: skip
    state = "ok"
    if r.gone_reason or not enabled:
        state = "disabled"
    elif r.retrying:
        state = "error"
    return {
        "name": name,
        "type": kind,
        "state": state,
        "acked_id": r.acked_id,
        "lag_events": r.lag_events,
        "lag_s": round(max(0.0, now - r.oldest_pending), 3) if r.oldest_pending else 0.0,
        "parked": r.parked,
        "retrying": r.retrying,
        "last_error": r.gone_reason or r.last_error,
    }
