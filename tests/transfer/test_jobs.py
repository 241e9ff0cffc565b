"""How pulled files are grouped into jobs: tar-stream batches for small files, the rest one by one."""

from __future__ import annotations

from mediasyncd.state import FileRow, FileState
from mediasyncd.transfer.jobs import Batch, plan_jobs

MB = 1 << 20


def rows(n: int, size: int) -> list[FileRow]:
    return [FileRow(i, "r", "/root", f"{i:04d}.png", size, 1.0, FileState.SEEN) for i in range(n)]


def batch_sizes(jobs: list[FileRow | Batch]) -> list[int]:
    return [len(j.rows) for j in jobs if isinstance(j, Batch)]


def test_a_small_pull_comes_in_one_stream() -> None:
    """50 files of 460 KB (23 MB, under twice the stream size) make one batch, not 16 MiB and a tail."""
    jobs = plan_jobs(rows(50, 460_000), small_below=MB, max_files=1000, stream_bytes=16 * MB)
    assert batch_sizes(jobs) == [50]


def test_a_large_pull_is_split_into_streams_of_the_stream_size() -> None:
    """2,000 files of 100 KB (200 MB) go in batches of at most 16 MiB each, several streams at once."""
    jobs = plan_jobs(rows(2000, 100_000), small_below=MB, max_files=1000, stream_bytes=16 * MB)
    sizes = batch_sizes(jobs)
    assert sum(sizes) == 2000 and len(sizes) == 12 and max(sizes) * 100_000 <= 16 * MB


def test_large_files_go_one_by_one() -> None:
    """Files at or above `small_below` are jobs of their own; a batch never holds fewer than 4 files."""
    jobs = plan_jobs(rows(3, 2 * MB) + rows(2, 1000), small_below=MB, max_files=1000, stream_bytes=16 * MB)
    assert batch_sizes(jobs) == [] and len(jobs) == 5
