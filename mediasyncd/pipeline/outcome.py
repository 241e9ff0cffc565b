"""What processing a file produced: one outcome per stage, and the result `Pipeline.process` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mediasyncd.pipeline.record import GenerationRecord

Status = Literal["done", "skipped", "error"]


@dataclass(frozen=True)
class StageOutcome:
    status: Status
    detail: str
    output: str | None = None  # library-relative path of what the stage wrote, if anything


@dataclass(frozen=True)
class PipelineResult:
    """`stages` holds the stages run or found finished, in pipeline order; `error` is the first failure."""

    path: str  # library-relative
    sha256: str
    stages: dict[str, StageOutcome] = field(default_factory=dict)
    record: GenerationRecord | None = None
    resumed: tuple[str, ...] = ()  # stages already finished before this call, not run again
    seconds: dict[str, float] = field(default_factory=dict)  # how long each stage run now took

    @property
    def error(self) -> str | None:
        for name, outcome in self.stages.items():
            if outcome.status == "error":
                return f"{name}: {outcome.detail}"
        return None

    @property
    def ok(self) -> bool:
        return self.error is None
