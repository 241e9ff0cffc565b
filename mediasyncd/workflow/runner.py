"""Runs the configured workflow stages over landed files: in the daemon as a consumer of the event log
(after the media pipeline), and once for `mediasyncd workflow run` and the API's `workflow` job.

The state DB is the source of truth: each pass takes the files some stage has not finished (a `running`
row left by a kill -9 counts as unfinished; every stage is idempotent), so events only wake it. Stages run
in order per file; a stage that waits or fails holds that file's later stages, never another file's. A
paused stage (its destination is not mounted) is skipped as a whole, with its reason, and retried later.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from mediasyncd.config import Config
from mediasyncd.progress import StatusView
from mediasyncd.state import FileRow, Store
from mediasyncd.state.workflow import StageLedger, StageState
from mediasyncd.workflow import archive as _archive  # noqa: F401  (registers the stage)
from mediasyncd.workflow import compress as _compress  # noqa: F401
from mediasyncd.workflow import syncthing as _syncthing  # noqa: F401
from mediasyncd.workflow.base import REGISTRY, Item, Outcome, WorkflowStage

log = structlog.get_logger("mediasyncd.workflow")
CONSUMER = "workflow"
RETRY_INTERVAL = 60.0  # waiting files and paused stages are tried again this often
PARALLEL = 2


@dataclass(frozen=True)
class Planned:
    """What a dry run would do."""

    remote: str
    path: str
    stage: str
    output: str | None


@dataclass
class PassResult:
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # stage -> outcome state -> files
    paused: dict[str, str] = field(default_factory=dict)  # stage -> why it waits as a whole
    planned: list[Planned] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "stages": {name: dict(c) for name, c in self.counts.items()},
            "paused": dict(self.paused),
            "planned": [p.__dict__ for p in self.planned],
        }


def select_stages(configured: Sequence[str], first: str | None, last: str | None) -> tuple[str, ...]:
    """The configured stages from `first` to `last` (both included); ValueError for a stage not
    configured."""
    for name in (first, last):
        if name is not None and name not in configured:
            raise ValueError(f"stage {name!r} is not in workflow.stages ({', '.join(configured) or 'none'})")
    start = configured.index(first) if first else 0
    end = configured.index(last) + 1 if last else len(configured)
    return tuple(configured[start:end])


def matches(library: Path, row: FileRow, paths: Sequence[Path]) -> bool:
    """Whether the row's library copy is one of `paths` or under one of them (all when empty)."""
    if not paths:
        return True
    if row.local_path is None:
        return False
    own = (library / row.local_path).absolute()
    return any(own == p or p in own.parents for p in paths)


class Workflow:
    name = CONSUMER

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        retry_interval: float = RETRY_INTERVAL,
        view: StatusView | None = None,
    ) -> None:
        self.store = store
        self.ledger = StageLedger(store)
        self.library = config.daemon.library
        self.after_pipeline = config.pipeline.enabled
        self._adopt(config)
        self._pending: Config | None = None  # a reloaded config, adopted before the next pass
        self._new: asyncio.Event | None = None
        self.retry_interval = retry_interval
        self.position = 0
        self.paused: dict[str, str] = {}
        self._moved = asyncio.Event()
        self._one_pass = asyncio.Lock()  # the consumer's passes and the API's never overlap
        self._snapshot: dict[str, Any] = {"stages": {}}
        if view is not None:
            view.sections["workflow"] = self.snapshot

    def _adopt(self, config: Config) -> None:
        self.workflow = config.workflow
        self.configured = config.workflow.stages
        self.stages: dict[str, WorkflowStage] = {
            name: REGISTRY[name](config, self.ledger) for name in config.workflow.stages
        }

    def reload(self, config: Config) -> None:
        """SIGHUP: new `[workflow]` settings (stages, their order and options) take effect from the next
        pass (a pass running now finishes with the old ones); the consumer is woken for it."""
        if config.workflow == self.workflow:
            return
        self._pending = config
        if self._new is not None:
            self._new.set()

    def snapshot(self) -> dict[str, Any]:
        """`/status`'s `workflow` section: counts per stage and state as of the last pass."""
        return self._snapshot

    # ------------------------------------------------------------------------------- as a consumer

    async def run(self) -> None:
        """Pass over what is due, then again on each new event (and every `retry_interval`)."""
        new = self.store.follow()
        self._new = new
        try:
            while True:
                seen = await self.store.last_event_id()  # before the pass: it may miss what comes later
                result = await self.run_pass()
                self.paused = result.paused
                await self.refresh()
                self.position = seen
                await self.store.ack(CONSUMER, seen)
                self._moved.set()
                await self._wait_beyond(new, seen)
        finally:
            self.store.unfollow(new)

    async def _wait_beyond(self, new: asyncio.Event, seen: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_interval
        while True:
            new.clear()
            if self._pending is not None or await self.store.last_event_id() > seen:
                return
            try:
                await asyncio.wait_for(new.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return

    async def refresh(self) -> None:
        summary = await self.ledger.summary(self.configured)
        self._snapshot = {
            "stages": {
                name: {
                    "counts": s.counts,
                    "oldest_waiting": s.oldest_waiting,
                    "paused": self.paused.get(name),
                    "failures": [{"remote": r, "path": p, "error": e} for r, p, e in s.failures],
                }
                for name, s in summary.items()
            }
        }

    async def drain(self) -> None:
        """Wait until a pass has followed every event written so far."""
        target = await self.store.last_event_id()
        while self.position < target:
            self._moved.clear()
            await self._moved.wait()

    # ------------------------------------------------------------------------------------ one pass

    async def run_pass(
        self,
        *,
        first: str | None = None,
        last: str | None = None,
        paths: Sequence[Path] = (),
        dry_run: bool = False,
        retry_failed: bool = False,
    ) -> PassResult:
        """Run the stages `first`..`last` over every file they have not finished (of `paths` only)."""
        async with self._one_pass:
            if self._pending is not None:
                self._adopt(self._pending)
                self._pending = None
                log.info("workflow settings reloaded", stages=list(self.configured))
            names = select_stages(self.configured, first, last)
            return await self._pass(names, paths, dry_run, retry_failed)

    async def _pass(
        self, names: Sequence[str], paths: Sequence[Path], dry_run: bool, retry_failed: bool
    ) -> PassResult:
        result = PassResult(counts={n: Counter() for n in names})
        for name in names:
            why = await self.stages[name].paused(dry_run=dry_run)
            if why is not None:
                result.paused[name] = why
                log.warning("workflow stage paused", stage=name, reason=why)
        wanted = [p.absolute() for p in paths]
        after = 0
        gate = asyncio.Semaphore(PARALLEL)
        while rows := await self.ledger.due(
            names, processed=self.after_pipeline, retry_failed=retry_failed or dry_run, after=after
        ):
            after = rows[-1].id
            async with asyncio.TaskGroup() as tg:
                for row in rows:
                    if matches(self.library, row, wanted):
                        tg.create_task(self._guarded(gate, row, names, result, dry_run))
        return result

    async def _guarded(
        self, gate: asyncio.Semaphore, row: FileRow, names: Sequence[str], result: PassResult, dry_run: bool
    ) -> None:
        async with gate:
            try:
                await self._file(row, names, result, dry_run)
            except Exception:
                log.exception("workflow crashed on a file; skipping it", remote=row.remote, path=row.rel)

    async def _file(self, row: FileRow, names: Sequence[str], result: PassResult, dry_run: bool) -> None:
        if row.local_path is None or row.sha256 is None:
            return
        states = await self.ledger.states(row.id)
        previous: tuple[Path, str] | None = None
        for name in self.configured:
            stage = self.stages[name]
            if name not in names or states.get(name) is StageState.DONE:
                done = await self.ledger.output(row.id, name) if states.get(name) is StageState.DONE else None
                if done and stage.derived:
                    previous = (Path(done[0]), done[1])
                continue
            if name in result.paused:
                result.counts[name]["waiting"] += 1
                return
            item = Item(row, self.library / row.local_path, row.sha256, previous)
            outcome = await self._one(stage, item, dry_run)
            result.counts[name][outcome.state] += 1
            if dry_run:
                result.planned.append(Planned(row.remote, row.rel, name, outcome.output))
            if outcome.state != "done":
                return
            if outcome.output and outcome.sha256 and stage.derived:
                previous = (Path(outcome.output), outcome.sha256)

    async def _one(self, stage: WorkflowStage, item: Item, dry_run: bool) -> Outcome:
        row = item.row
        if dry_run:
            return await stage.run(item, dry_run=True)
        await self.ledger.begin(row.id, stage.name)
        outcome = await stage.run(item)
        if outcome.state == "done":
            await self.ledger.finish(row, stage.name, outcome.output, outcome.sha256, outcome.note)
            log.info("workflow stage done", stage=stage.name, remote=row.remote, path=row.rel,
                     output=outcome.output)  # fmt: skip
        else:
            state = StageState.WAITING if outcome.state == "waiting" else StageState.FAILED
            await self.ledger.set_back(row.id, stage.name, state, outcome.note or outcome.state)
            log.warning("workflow stage did not finish", stage=stage.name, remote=row.remote, path=row.rel,
                        state=outcome.state, reason=outcome.note)  # fmt: skip
        return outcome
