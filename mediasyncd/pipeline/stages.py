"""The media pipeline's stages, by name (a registry): what each needs before it, whether the options turn
it on, how it runs, and which of its outputs the catalog records (retention deletes what was recorded).

A stage is one `register(Stage(...))` here; the Pipeline runs the enabled stages in registration order,
records each one's state, and re-runs a stage's dependents when it is re-run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mediasyncd.pipeline import work
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.outcome import StageOutcome
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.state.catalog import Catalog, MediaRow

T = TypeVar("T")


@dataclass
class Job:
    """One file going through the stages; `record` is what the metadata stage found (or loaded)."""

    source: Path
    row: MediaRow
    record: GenerationRecord | None = None
    rebuild: bool = False  # the stage was reset by `reprocess`: replace its earlier output


class Runner(Protocol):
    """What a stage body may use from the Pipeline."""

    library: Path
    options: PipelineOptions

    async def db(self, method: Callable[..., T], *args: Any) -> T: ...

    async def cpu_stage(self, job: Callable[..., StageOutcome], *args: Any) -> StageOutcome: ...

    async def metadata(self, job: Job) -> StageOutcome: ...


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Runner, Job], Awaitable[StageOutcome]]
    needs: tuple[str, ...] = ()  # stages whose results this one reads
    output: str | None = None  # the catalog column its output path is recorded in
    option: str | None = None  # the [pipeline] switch that turns it on (None: always on)

    def enabled(self, options: PipelineOptions) -> bool:
        return self.option is None or bool(getattr(options, self.option))


REGISTRY: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    unknown = [n for n in stage.needs if n not in REGISTRY]
    if unknown:
        raise ValueError(f"stage {stage.name} needs unregistered stages {unknown}")
    REGISTRY[stage.name] = stage
    return stage


def enabled(options: PipelineOptions) -> tuple[Stage, ...]:
    return tuple(s for s in REGISTRY.values() if s.enabled(options))


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def dependents(name: str) -> tuple[str, ...]:
    """`name` and every stage that needs it, directly or not, in registration order."""
    found = {name}
    for stage in REGISTRY.values():
        if found.intersection(stage.needs):
            found.add(stage.name)
    return tuple(n for n in REGISTRY if n in found)


# ---------------------------------------------------------------------------------------------- stages


async def _metadata(runner: Runner, job: Job) -> StageOutcome:
    return await runner.metadata(job)


async def _xmp(runner: Runner, job: Job) -> StageOutcome:
    if job.record is None:
        return StageOutcome("skipped", "no metadata record")
    return await runner.cpu_stage(
        work.xmp_job, str(job.source), str(runner.library), job.record, runner.options
    )


async def _thumbnail(runner: Runner, job: Job) -> StageOutcome:
    return await runner.cpu_stage(
        work.thumbnail_job, str(job.source), str(runner.library), job.row.sha256, runner.options, job.rebuild
    )


async def _index(runner: Runner, job: Job) -> StageOutcome:
    indexed = await runner.db(Catalog.index, job.row.path)
    return StageOutcome("done", "indexed") if indexed else StageOutcome("skipped", "no record")


register(Stage("metadata", _metadata))
register(Stage("xmp", _xmp, needs=("metadata",), output="sidecar", option="xmp"))
register(Stage("thumbnail", _thumbnail, output="thumbnail", option="thumbnails"))
register(Stage("index", _index, needs=("metadata",)))
