"""The passes of one remote still waiting for outcomes: which pass claimed which file, what became of
each, and the `sync_complete` event of a pass once every file it claimed has an outcome. Pure: the
Ledger writes the events this hands back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

from mediasyncd.state import EventType, FileRow, NewEvent


class Outcome(Enum):
    """What became of a claimed file, as its pass counts it."""

    LANDED = auto()
    ADOPTED = auto()
    FAILED = auto()
    CHANGED = auto()
    PUT_BACK = auto()


@dataclass
class Tally:
    """One pass's files and what became of them, until each has an outcome."""

    sync_id: str
    started: float
    new: int
    outstanding: set[int]
    landed: int = 0
    landed_bytes: int = 0
    adopted: int = 0
    adopted_bytes: int = 0
    failed: int = 0
    changed: int = 0

    def event(self, remote: str, *, interrupted: bool = False) -> NewEvent:
        data: dict[str, object] = {
            "new": self.new, "landed": self.landed, "landed_bytes": self.landed_bytes,
            "adopted": self.adopted, "adopted_bytes": self.adopted_bytes, "failed": self.failed, "changed": self.changed,
            "seconds": round(time.monotonic() - self.started, 3),
        }  # fmt: skip
        if interrupted:
            data["interrupted"] = True
        return NewEvent(EventType.SYNC_COMPLETE, remote, None, self.sync_id, data)

    def count(self, row: FileRow, outcome: Outcome) -> None:
        self.outstanding.discard(row.id)
        if outcome is Outcome.LANDED:
            self.landed += 1
            self.landed_bytes += row.size
        elif outcome is Outcome.ADOPTED:
            self.adopted += 1
            self.adopted_bytes += row.size
        elif outcome is Outcome.FAILED:
            self.failed += 1
        elif outcome is Outcome.CHANGED:
            self.changed += 1

    @property
    def worth(self) -> bool:
        """A pass that found, transferred or failed nothing records no `sync_complete`."""
        return bool(self.new or self.landed or self.adopted or self.failed)


class Passes:
    def __init__(self, remote: str) -> None:
        self.remote = remote
        self._open: dict[str, Tally] = {}
        self._pass_of: dict[int, str] = {}  # file id -> the open pass that claimed it

    def is_open(self, sync_id: str) -> bool:
        return sync_id in self._open

    def of(self, file_id: int) -> str | None:
        """The open pass that claimed `file_id`."""
        return self._pass_of.get(file_id)

    def start(self, sync_id: str, new: int, claimed: Sequence[FileRow]) -> list[NewEvent]:
        """A pass found `new` files and claimed `claimed`; more arrivals for an open pass (agent mode's
        burst) join it. A pass that claimed nothing is complete at once: its event, if worth one."""
        tally = self._open.get(sync_id)
        if tally is not None:
            tally.new += new
            tally.outstanding.update(r.id for r in claimed)
        else:
            tally = Tally(sync_id, time.monotonic(), new, {r.id for r in claimed})
            if not claimed:
                return [tally.event(self.remote)] if new else []
            self._open[sync_id] = tally
        for row in claimed:
            self._pass_of[row.id] = sync_id
        return []

    def resolve(self, outcomes: Sequence[tuple[FileRow, Outcome]]) -> list[NewEvent]:
        """Count each outcome in its pass; the `sync_complete` of every pass that is now complete."""
        done: list[NewEvent] = []
        for row, outcome in outcomes:
            sync_id = self._pass_of.pop(row.id, None)
            tally = self._open.get(sync_id) if sync_id else None
            if tally is None:
                continue
            tally.count(row, outcome)
            if not tally.outstanding:
                del self._open[tally.sync_id]
                if tally.worth:
                    done.append(tally.event(self.remote))
        return done

    def interrupt_all(self) -> list[NewEvent]:
        """The session ended: every open pass is closed, its event marked interrupted (if worth one)."""
        tallies, self._open = list(self._open.values()), {}
        self._pass_of.clear()
        return [t.event(self.remote, interrupted=True) for t in tallies if t.worth]
