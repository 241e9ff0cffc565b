"""Transfer jobs: one file over the source's per-file pull, or many small files in one stream. Pure.

Over SFTP every file costs round trips (open, read, close); for ~100 KB images that, not the link, sets
the pace (FIELD_NOTES 2). Where the source can stream a batch (`caps.tar`), small files of one root go
together; the rest one by one.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from mediasyncd.state import FileRow

BATCH_MIN = 4  # fewer small files than this go one by one: a stream costs an exec on the remote


@dataclass(frozen=True)
class Batch:
    """Small files of one root, sent together in one stream."""

    rows: tuple[FileRow, ...]

    @property
    def size(self) -> int:
        return sum(r.size for r in self.rows)


Job = FileRow | Batch


def rows_of(job: Job) -> tuple[FileRow, ...]:
    return job.rows if isinstance(job, Batch) else (job,)


def plan_jobs(
    rows: Sequence[FileRow],
    *,
    small_below: int,
    max_files: int,
    stream_bytes: int,
    not_in_batches: Set[int] = frozenset(),
) -> list[Job]:
    """Files under `small_below` bytes (0: none) go in batches of at most `max_files` files and about
    `stream_bytes` bytes (all in one where they add up to at most twice that: each stream costs the
    remote an exec, ~0.1 s behind a heavy login shell); files a stream missed before (`not_in_batches`)
    and the rest go one by one."""

    def small(r: FileRow) -> bool:
        return r.size < small_below and r.id not in not_in_batches

    jobs: list[Job] = [r for r in rows if not small(r)]
    few = sorted((r for r in rows if small(r)), key=lambda r: (r.root, r.rel))
    if sum(r.size for r in few) <= 2 * stream_bytes:  # a small pull: one stream (one exec), not two
        stream_bytes *= 2
    for group in batches([(r.root, r.size) for r in few], max_files, stream_bytes):
        members = tuple(few[i] for i in group)
        jobs.extend([Batch(members)] if len(members) >= BATCH_MIN else members)
    return jobs


def batches(rows: Sequence[tuple[str, int]], max_files: int, max_bytes: int) -> list[list[int]]:
    """Split (root, size) items, kept in order, into index groups: one root each, bounded in count and
    bytes (an item larger than max_bytes still forms a batch of its own)."""
    out: list[list[int]] = []
    current: list[int] = []
    current_root: str | None = None
    current_bytes = 0
    for i, (root, size) in enumerate(rows):
        if current and (
            root != current_root or len(current) >= max_files or current_bytes + size > max_bytes
        ):
            out.append(current)
            current, current_bytes = [], 0
        current.append(i)
        current_root = root
        current_bytes += size
    if current:
        out.append(current)
    return out
