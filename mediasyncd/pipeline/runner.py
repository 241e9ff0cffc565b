"""`Pipeline`: runs metadata -> xmp -> thumbnail -> index for a landed file, recording every stage.

The event loop only coordinates: SQLite work runs on the state DB's own thread (`Store.catalog`; the
daemon passes its Store, a command opens one), CPU-bound stage bodies run in a process pool sized to
the cores. Each stage is marked `running`
before it starts and `done`/`skipped`/`error` after, so a crash (kill -9) leaves at most the stage in
flight to redo; finished stages are never run again for the same path and SHA-256.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from pathlib import Path
from typing import Any, TypeVar

import structlog

from mediasyncd.pipeline import work
from mediasyncd.pipeline.metadata import Extraction
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.orphans import exit_with_parent, sigint_ignored
from mediasyncd.pipeline.outcome import PipelineResult, StageOutcome
from mediasyncd.pipeline.record import GenerationRecord
from mediasyncd.pipeline.stages import Job, Stage, dependents, enabled, names
from mediasyncd.pipeline.work import TEMP_DIR
from mediasyncd.pipeline.xmp import sweep_temps
from mediasyncd.state import Store
from mediasyncd.state.catalog import FINISHED, Catalog, MediaRow

T = TypeVar("T")


class Pipeline:
    def __init__(
        self, db_path: Path, library: Path, options: PipelineOptions, store: Store | None = None
    ) -> None:
        self._db_path = db_path
        self.library = self._library = Path(os.path.abspath(library))
        self.options = self._options = options
        self._store = store
        self._own_store: Store | None = None  # opened here when no Store was passed (commands, tests)
        self._pool: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(options.worker_count() * 2)
        self._log = structlog.get_logger()

    @property
    def stages(self) -> tuple[Stage, ...]:
        return enabled(self._options)

    async def process(
        self, local_path: Path, sha256: str, *, remote: str | None, rel: str | None
    ) -> PipelineResult:
        """Run the unfinished stages of one landed file; a bad file yields an error result, never a raise."""
        source = local_path if local_path.is_absolute() else self._library / local_path
        key = self.library_key(source)
        if key is None:
            outside = StageOutcome("error", f"{local_path} is outside the library {self._library}")
            return PipelineResult(str(local_path), sha256, {"metadata": outside})
        if not self._options.enabled:
            return PipelineResult(key, sha256)
        async with self._slots:
            result = await self._run(self._library / key, MediaRow(key, sha256, remote, rel))
        log = self._log.bind(path=key, remote=remote, sha256=sha256)
        summary = {name: outcome.status for name, outcome in result.stages.items()}
        if result.ok:
            log.info("pipeline.processed", stages=summary, resumed=list(result.resumed), detail=True)
        else:
            log.warning("pipeline.failed", stages=summary, error=result.error)
        return result

    async def reprocess(self, paths: Sequence[Path], stage: str | None) -> list[PipelineResult]:
        """Re-run `stage` (and what depends on it), or every stage, for `paths` or every known file."""
        keys = [key for key in (self.library_key(p if p.is_absolute() else self._library / p) for p in paths)]
        known = {row.path: row for row in await self._db(Catalog.media_rows, [k for k in keys if k])}
        targets: list[MediaRow | PipelineResult] = []
        if not paths:
            targets.extend(await self._db(Catalog.media_rows, []))
        for given, key in zip(paths, keys, strict=True):
            if key is None:
                outside = StageOutcome("error", f"{given} is outside the library {self._library}")
                targets.append(PipelineResult(str(given), "", {"metadata": outside}))
            elif key in known:
                targets.append(known[key])
            elif (self._library / key).is_file():
                digest = await asyncio.to_thread(_sha256, self._library / key)
                targets.append(MediaRow(key, digest, None, None))
            else:
                missing = StageOutcome("error", f"{given}: no such file in the library")
                targets.append(PipelineResult(key, "", {"metadata": missing}))
        stages = dependents(stage) if stage else names()
        results = []
        for target in targets:
            if isinstance(target, PipelineResult):
                results.append(target)
                continue
            await self._db(Catalog.reset, target.path, target.sha256, stages)
            results.append(
                await self.process(Path(target.path), target.sha256, remote=target.remote, rel=target.rel)
            )
        return results

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        own, self._own_store = self._own_store, None
        if own is not None:
            await own.close()

    def library_key(self, path: Path) -> str | None:
        """The library-relative POSIX path of `path`, or None when it lies outside the library."""
        absolute = Path(os.path.normpath(os.path.abspath(path)))
        try:
            relative = absolute.relative_to(self._library)
        except ValueError:
            return None
        return relative.as_posix() if relative.parts else None

    # -- stages ---------------------------------------------------------------------------------------------

    async def _run(self, source: Path, row: MediaRow) -> PipelineResult:
        states = await self._db(_prepare, row.path, row.sha256)
        outcomes: dict[str, StageOutcome] = {}
        resumed: list[str] = []
        seconds: dict[str, float] = {}
        job = Job(source, row)
        if states.get("metadata", ("", None))[0] in FINISHED:
            document = await self._db(Catalog.load_record, row.path, row.sha256)
            job.record = GenerationRecord.from_json(document) if document is not None else None
        for stage in self.stages:
            status, detail = states.get(stage.name, ("", None))
            if status in FINISHED:
                outcomes[stage.name] = StageOutcome(status, detail or "")  # type: ignore[arg-type]
                resumed.append(stage.name)
                continue
            await self._db(Catalog.begin, row.path, row.sha256, stage.name)
            job.rebuild = status == "pending"  # reprocess asked for it: replace the earlier output
            began = time.monotonic()
            outcome = await stage.run(self, job)
            seconds[stage.name] = time.monotonic() - began
            if outcome.output and stage.output:
                await self._db(Catalog.set_output, row.path, stage.output, outcome.output)
            await self._db(Catalog.finish, row.path, row.sha256, stage.name, outcome.status, outcome.detail)
            outcomes[stage.name] = outcome
        return PipelineResult(row.path, row.sha256, outcomes, job.record, tuple(resumed), seconds)

    async def metadata(self, job: Job) -> StageOutcome:
        """The metadata stage's body: extract (in a worker), record in the catalog, keep on the job."""
        try:
            extraction: Extraction = await self._cpu(work.metadata_job, str(job.source), self._options)
        except _WorkerFailed as failure:
            extraction = Extraction(GenerationRecord(), str(failure))
        row = job.row
        for note in extraction.notes:
            self._log.warning("pipeline.metadata_dropped", path=row.path, remote=row.remote, reason=note)
        document = extraction.record.as_json(row.path, extraction.error)
        await self._db(Catalog.save_record, row, document, extraction.error, extraction.file_stat)
        job.record = extraction.record
        if extraction.error:
            return StageOutcome("error", extraction.error)
        return StageOutcome("done", extraction.summary)

    async def db(self, method: Callable[..., T], *args: Any) -> T:
        return await self._db(method, *args)

    async def cpu_stage(self, job: Callable[..., StageOutcome], *args: Any) -> StageOutcome:
        try:
            return await self._cpu(job, *args)
        except _WorkerFailed as failure:
            return StageOutcome("error", str(failure))

    # -- executors ------------------------------------------------------------------------------------------

    async def _db(self, method: Callable[..., T], *args: Any) -> T:
        if self._store is None:
            self._own_store = self._store = Store(self._db_path)
            await self._store.open()
        return await self._store.catalog(method, *args)

    async def _cpu(self, job: Callable[..., T], *args: Any) -> T:
        pool = self._ensure_pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, functools.partial(job, *args))
        except BrokenProcessPool as error:
            # A worker died (OOM killer, a decoder crash): replace the pool, fail only this stage.
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise _WorkerFailed("worker process died while handling this file") from error
        except Exception as error:  # a bug in a stage body must not stop the daemon; it is logged in full
            self._log.exception("pipeline.stage_crashed", job=job.__name__)
            raise _WorkerFailed(f"internal error: {type(error).__name__}: {error}") from error

    def _ensure_pool(self) -> Executor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            with sigint_ignored():  # a terminal's Ctrl-C is the daemon's to handle, not its workers'
                forkserver.ensure_running()
            self._pool = ProcessPoolExecutor(
                self._options.worker_count(), mp_context=context, initializer=exit_with_parent
            )
            # What a killed run left half-written (a sidecar's temporary), in a worker, off the loop.
            self._pool.submit(sweep_temps, str(self._library / TEMP_DIR))
        return self._pool


class _WorkerFailed(Exception):
    """A stage body could not run to completion in a worker."""


def _prepare(catalog: Catalog, path: str, sha256: str) -> dict[str, tuple[str, str | None]]:
    catalog.forget_other_versions(path, sha256)
    return catalog.stage_states(path, sha256)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
