"""The one interface every workflow stage implements, and the registry of stages by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from mediasyncd.config import Config
from mediasyncd.state import FileRow
from mediasyncd.state.workflow import StageLedger


@dataclass(frozen=True)
class Item:
    """One landed file going through a stage: its row, its library copy and the verified SHA-256 of it;
    `previous` is the output (path, SHA-256) of the stage before, where it made one."""

    row: FileRow
    source: Path
    sha256: str
    previous: tuple[Path, str] | None = None


@dataclass(frozen=True)
class Outcome:
    """`done` (with the verified output), `waiting` (try again later: never a failure) or `failed`."""

    state: Literal["done", "waiting", "failed"]
    output: str | None = None
    sha256: str | None = None
    note: str | None = None

    @classmethod
    def failed(cls, why: str) -> Outcome:
        return cls("failed", note=why)

    @classmethod
    def waiting(cls, why: str) -> Outcome:
        return cls("waiting", note=why)


class WorkflowStage(Protocol):
    name: str
    derived: bool  # its output is a new version of the file that later stages take (compress)

    async def paused(self, *, dry_run: bool = False) -> str | None:
        """Why the whole stage cannot run now (e.g. its destination is not mounted), or None; a dry run
        changes nothing (not even a marker file)."""

    async def run(self, item: Item, *, dry_run: bool = False) -> Outcome:
        """Do the stage for one file, idempotently; never raise for a problem of this file."""


StageFactory = Callable[[Config, StageLedger], WorkflowStage]
REGISTRY: dict[str, StageFactory] = {}


def register(name: str) -> Callable[[StageFactory], StageFactory]:
    def add(factory: StageFactory) -> StageFactory:
        REGISTRY[name] = factory
        return factory

    return add
