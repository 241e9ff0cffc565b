"""`mediasyncd events`: print the event log (SPEC §3.7), read-only, beside a running daemon or not.

`--json` prints one envelope per line and nothing else on stdout; otherwise one readable line per event.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from mediasyncd.state import Event, EventType
from mediasyncd.state.reader import EventReader

FOLLOW_EVERY = 0.5
SHOWN = ("size", "error", "attempts", "new", "landed", "failed", "deleted_files", "generator", "model")


def parse_types(values: Sequence[str]) -> list[str]:
    """`--type a,b --type c` -> [a, b, c]; an unknown type is a ValueError naming the known ones."""
    types = [t.strip() for v in values for t in v.split(",") if t.strip()]
    known = {str(t) for t in EventType}
    unknown = sorted(set(types) - known)
    if unknown:
        raise ValueError(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return types


def events_main(
    db_path: Path, *, since: int, types: Sequence[str], follow: bool, as_json: bool, out: TextIO = sys.stdout
) -> int:
    reader = EventReader(db_path)
    try:
        position = since
        while True:
            batch = reader.since(position, types)
            for event in batch:
                out.write(_json(event) if as_json else _line(event))
            out.flush()
            if batch:
                position = batch[-1].id
                continue
            if not follow:
                return 0
            time.sleep(FOLLOW_EVERY)
    finally:
        reader.close()


def _json(event: Event) -> str:
    return json.dumps(event.envelope(), ensure_ascii=False, separators=(",", ":")) + "\n"


def _line(event: Event) -> str:
    env = event.envelope()
    where = f"{event.remote}:{event.path}" if event.path else (event.remote or "-")
    details: dict[str, Any] = {k: event.data[k] for k in SHOWN if event.data.get(k) is not None}
    if event.data.get("backfill"):
        details["backfill"] = True
    text = " ".join(f"{k}={v}" for k, v in details.items())
    return f"{event.id:>8} {env['time']} {event.type:<16} {where} {text}".rstrip() + "\n"
