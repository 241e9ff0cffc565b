"""Example mediasyncd sink plug-in: envelopes appended to a JSON-lines file (at least once: a reader
drops repeated ids)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mediasyncd.sinks import EventRejected


class JsonlSink:
    def __init__(self, name: str, path: Path, reject_types: Sequence[str] = ()) -> None:
        self.name = name
        self.path = path
        self.reject_types = set(reject_types)

    async def open(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)

    async def deliver(self, events: Sequence[Mapping[str, Any]]) -> None:
        refused = [e["id"] for e in events if e["type"] in self.reject_types]
        if refused:
            raise EventRejected(f"{self.name} does not take events {refused}")
        lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        await asyncio.to_thread(self._append, lines)  # file I/O off the event loop

    def _append(self, text: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    async def close(self) -> None:
        pass


def make(name: str, options: Mapping[str, Any]) -> JsonlSink:
    """The entry point: mediasyncd calls it with the sink's name and its `options` table."""
    return JsonlSink(name, Path(str(options["path"])), options.get("reject_types", ()))
