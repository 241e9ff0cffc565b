"""The library stays true: files deleted or replaced in the library outside mediasyncd.

Cheap by design: one `stat` per known file (in one thread), compared with the size and mtime recorded
when the file was processed. A file that is gone leaves the catalog and the search index, and its
thumbnail is deleted (unless another file's record shares it). A file whose size or mtime changed is
hashed; if its content changed it is processed again as a new version (the old thumbnail deleted), else
only the new mtime is recorded. XMP sidecars are left alone: a photo tool may have taken them over.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mediasyncd.pipeline.runner import Pipeline
from mediasyncd.state.catalog import Catalog

Stat = tuple[int, int]  # size, mtime in ns


@dataclass(frozen=True)
class AuditResult:
    checked: int
    removed: tuple[str, ...]
    reprocessed: tuple[str, ...]


async def audit_library(pipeline: Pipeline) -> AuditResult:
    """Compare every catalogued file with the library; forget the gone, reprocess the replaced."""
    rows = await pipeline.db(Catalog.audit_rows)
    library = pipeline.library
    stats = await asyncio.to_thread(lambda: {row.path: _stat(library / row.path) for row, _, _ in rows})
    removed: list[str] = []
    reprocessed: list[str] = []
    for row, size, mtime_ns in rows:
        now = stats[row.path]
        if now is None:
            await _forget(pipeline, row.path)
            removed.append(row.path)
            continue
        if now == (size, mtime_ns):
            continue
        path = library / row.path
        if size is not None:  # rows made before the stat was recorded are taken as they are
            sha256 = await asyncio.to_thread(_sha256, path)
            if sha256 is not None and sha256 != row.sha256:
                await _forget(pipeline, row.path)
                await pipeline.process(path, sha256, remote=row.remote, rel=row.rel)
                reprocessed.append(row.path)
                continue
        await pipeline.db(Catalog.set_file_stat, row.path, *now)
    return AuditResult(len(rows), tuple(removed), tuple(reprocessed))


async def _forget(pipeline: Pipeline, path: str) -> None:
    thumbnail = await pipeline.db(Catalog.forget, path)
    if thumbnail is not None:
        await asyncio.to_thread((pipeline.library / thumbnail).unlink, missing_ok=True)


def _stat(path: Path) -> Stat | None:
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return found.st_size, found.st_mtime_ns


def _sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError:
        return None
