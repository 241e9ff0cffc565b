"""A file version's lifecycle: the one place its states are spelled.

seen -> transferring -> landed -> processed -> purged, or failed (with attempts, last error and the time
of the next attempt). Verification happens before the rename that lands a file.
"""

from __future__ import annotations

from enum import StrEnum


class FileState(StrEnum):
    SEEN = "seen"
    TRANSFERRING = "transferring"
    FAILED = "failed"
    LANDED = "landed"
    PROCESSED = "processed"
    PURGED = "purged"


WAITING = frozenset({FileState.SEEN, FileState.FAILED})  # complete files wait for a transfer in these
UNLANDED = frozenset({FileState.SEEN, FileState.TRANSFERRING, FileState.FAILED})
LANDED = frozenset({FileState.LANDED, FileState.PROCESSED, FileState.PURGED})  # verified and landed once


def sql_set(states: frozenset[FileState]) -> str:
    """`('a', 'b')` for an SQL `IN`: states are fixed words, never user input."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


class StageState(StrEnum):
    """A workflow stage's state for one file (state/workflow.py)."""

    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
