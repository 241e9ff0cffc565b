"""Feeds landed files to the media pipeline, off the transfer path, and records them as processed.

Landing never waits for the pipeline: the hook only queues. Files that landed but were not processed
(a crash, a restart, `sync --once` cut short) are queued again at start. Purge never depends on this.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from mediasyncd.config import Config
from mediasyncd.state import FileRow, Store

log = structlog.get_logger("mediasyncd.processing")


class Processor:
    def __init__(self, config: Config, store: Store) -> None:
        from mediasyncd.pipeline.runner import Pipeline

        self.store = store
        self.library = config.daemon.library
        self.pipeline = Pipeline(config.daemon.db_path, config.daemon.library, config.pipeline)
        self.queue: asyncio.Queue[FileRow] = asyncio.Queue()
        self.parallel = 2 * config.pipeline.worker_count()
        self.processed = 0

    async def hook(self, row: FileRow) -> None:
        self.queue.put_nowait(row)

    async def run(self) -> None:
        """Queue what an earlier run left unprocessed, then process until cancelled."""
        for row in await self.store.landed_unprocessed():
            self.queue.put_nowait(row)
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.parallel):
                    tg.create_task(self._worker())
        finally:
            with contextlib.suppress(Exception):
                await self.pipeline.aclose()

    async def drain(self) -> None:
        await self.queue.join()

    async def _worker(self) -> None:
        while True:
            row = await self.queue.get()
            try:
                await self._process(row)
            finally:
                self.queue.task_done()

    async def _process(self, row: FileRow) -> None:
        if row.local_path is None or row.sha256 is None:
            return
        result = await self.pipeline.process(
            self.library / row.local_path, row.sha256, remote=row.remote, rel=row.rel
        )
        if result.error:
            log.warning(
                "media pipeline could not process a file", remote=row.remote, path=row.rel, error=result.error
            )
        await self.store.mark_processed(row.id)
        self.processed += 1
