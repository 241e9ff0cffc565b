"""Feeds landed files to the media pipeline from the event log, off the transfer path.

The pipeline is a consumer of the log: it reads `file_synced` events after the position it acknowledged,
processes the files whose library copy is there and that it has not finished (purged from the remote or
not), records each as processed (with its `file_processed` event) and then acknowledges the batch. At
start it also sweeps the state for such files, so none is missed whose event left the log while the
pipeline was off. Landing never waits for it, and a kill -9 between landing and processing loses
nothing. A file whose processing raises is logged and skipped: one bad file never stalls the others.
Purge never depends on this.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from mediasyncd.config import Config
from mediasyncd.progress import StatusView
from mediasyncd.state import EventType, FileRow, Store

log = structlog.get_logger("mediasyncd.processing")
CONSUMER = "pipeline"
BATCH = 256
AUDIT_EVERY = 3600.0


class Processor:
    name = CONSUMER

    def __init__(self, config: Config, store: Store, view: StatusView | None = None) -> None:
        from mediasyncd.pipeline.runner import Pipeline

        self.store = store
        self.view = view  # the daemon's: each stage's duration goes to /metrics
        self.library = config.daemon.library
        self.pipeline = Pipeline(config.daemon.db_path, config.daemon.library, config.pipeline, store)
        self.parallel = 2 * config.pipeline.worker_count()
        self.processed = 0
        self.position = 0
        self._moved = asyncio.Event()

    async def run(self) -> None:
        """Process what the log holds after the acknowledged position, then follow it until cancelled;
        meanwhile audit the library against the catalog at start and every `AUDIT_EVERY` seconds."""
        new = self.store.follow()
        try:
            await self._audit()  # before the backlog, so the two never process the same file at once
            async with asyncio.TaskGroup() as group:
                group.create_task(self._audit_periodically())
                await self._follow(new)
        finally:
            self.store.unfollow(new)
            await self.pipeline.aclose()

    async def _follow(self, new: asyncio.Event) -> None:
        self.position = await self.store.acked(CONSUMER)
        backlog = await self.store.landed_unprocessed()
        for start in range(0, len(backlog), BATCH):
            await self._process_all(backlog[start : start + BATCH])
        while True:
            new.clear()
            events = await self.store.events(since=self.position, limit=BATCH)
            if not events:
                await new.wait()
                continue
            ids = [e.data.get("file_id") for e in events if e.type == EventType.FILE_SYNCED]
            rows = await self.store.landed_unprocessed([i for i in ids if isinstance(i, int)])
            await self._process_all(rows)
            self.position = events[-1].id
            await self.store.ack(CONSUMER, self.position)
            self._moved.set()

    async def _audit_periodically(self) -> None:
        """Files deleted or replaced in the library outside mediasyncd leave the index / are re-indexed."""
        while True:
            await asyncio.sleep(AUDIT_EVERY)
            await self._audit()

    async def _audit(self) -> None:
        from mediasyncd.pipeline.audit import audit_library

        try:
            result = await audit_library(self.pipeline)
        except Exception:  # the audit is housekeeping: a failure is logged, processing goes on
            log.exception("library audit failed")
            return
        if result.removed or result.reprocessed:
            log.info(
                "library audit",
                checked=result.checked,
                removed=len(result.removed),
                reprocessed=len(result.reprocessed),
            )

    async def drain(self) -> None:
        """Wait until every event written so far has been read (for `sync --once`)."""
        target = await self.store.last_event_id()
        while self.position < target:
            self._moved.clear()
            await self._moved.wait()

    async def _process_all(self, rows: list[FileRow]) -> None:
        gate = asyncio.Semaphore(self.parallel)

        async def one(row: FileRow) -> None:
            async with gate:
                try:
                    await self._process(row)
                except Exception:
                    log.exception(
                        "media pipeline crashed on a file; skipping it", remote=row.remote, path=row.rel
                    )

        async with asyncio.TaskGroup() as tg:
            for row in rows:
                tg.create_task(one(row))

    async def _process(self, row: FileRow) -> None:
        if row.local_path is None or row.sha256 is None:
            return
        result = await self.pipeline.process(
            self.library / row.local_path, row.sha256, remote=row.remote, rel=row.rel
        )
        if self.view is not None:
            for stage, took in result.seconds.items():
                self.view.stage_seconds(stage).observe(took)
        summary: dict[str, Any] = {"stages": {name: o.status for name, o in result.stages.items()}}
        if result.record is not None:
            record = result.record
            summary |= {
                "generator": record.generator, "prompt": record.prompt,
                "negative_prompt": record.negative_prompt, "model": record.model, "seed": record.seed,
                "steps": record.steps, "cfg": record.cfg, "width": record.width, "height": record.height,
                "metadata": record.as_json(row.local_path),
            }  # fmt: skip
        if result.error:
            summary["error"] = result.error
            log.warning(
                "media pipeline could not process a file", remote=row.remote, path=row.rel, error=result.error
            )
        await self.store.mark_processed(row, summary)
        self.processed += 1
