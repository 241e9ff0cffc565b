"""The state DB: the only owner of SQLite (schema, migrations, typed queries, the event log)."""

from mediasyncd.state.events import Event, EventType, NewEvent
from mediasyncd.state.known import KnownFiles
from mediasyncd.state.lifecycle import LANDED, UNLANDED, WAITING, FileState
from mediasyncd.state.rows import FileRow
from mediasyncd.state.store import LandedFile, NewFile, Store, Totals

__all__ = [
    "LANDED",
    "UNLANDED",
    "WAITING",
    "Event",
    "EventType",
    "FileRow",
    "FileState",
    "KnownFiles",
    "LandedFile",
    "NewEvent",
    "NewFile",
    "Store",
    "Totals",
]
