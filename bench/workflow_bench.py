"""Workflow stage throughput: archive (MB/s) and compress to WebP q90 (files/s) on 1024x1024 PNGs.

    .venv/bin/python -m bench.workflow_bench [--files 60] [--rounds 3] [--dest DIR] [--format webp|avif|jpeg]

Generates the PNGs first (not timed; `bench.pipeline_bench.make_images`), then runs the stages' own
blocking parts the way `Workflow` does (two files at a time, each in a worker thread): `copy_verified`
(partial -> fsync -> SHA-256 -> rename, plus the directory fsync) to `--dest` (default: a folder beside
the sources, i.e. the same disk), and `encode` + `write_verified` for compress. Reports the median round.
Targets (issue 20): archive >= 100 MB/s, compress >= 10 files/s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.pipeline_bench import make_images
from mediasyncd.workflow.archive import copy_verified
from mediasyncd.workflow.encode import EXTENSIONS, encode, record_view, texts_of, write_verified

PARALLEL = 2


async def _each(paths: list[Path], job: Callable[[Path], object]) -> float:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(path: Path) -> None:
        async with gate:
            await asyncio.to_thread(job, path)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for path in paths:
            tg.create_task(one(path))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dest", type=Path, default=None)
    parser.add_argument("--format", choices=sorted(EXTENSIONS), default="webp")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="workflow-bench-"))
    try:
        (work / "src").mkdir()
        sources = make_images(work / "src", args.files)
        digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sources}
        total = sum(p.stat().st_size for p in sources)
        dest = args.dest or work / "archive"
        archive_s, compress_s = [], []
        fmt, ext = args.format, EXTENSIONS[args.format]
        for _ in range(args.rounds):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(work / "compressed", ignore_errors=True)
            archive_s.append(
                asyncio.run(_each(sources, lambda p: copy_verified(p, dest / p.name, digests[p])))
            )
            compress_s.append(asyncio.run(_each(
                sources, lambda p: write_verified(encode(p, fmt, 90).data, work / "compressed" / f"{p.name}.{ext}")
            )))  # fmt: skip
        out = sum(p.stat().st_size for p in (work / "compressed").iterdir())
        started = time.perf_counter()  # the read-back check `encode` makes (is the record the same?)
        for copy in (work / "compressed").iterdir():
            record_view(texts_of(copy.read_bytes(), fmt))
        check_ms = (time.perf_counter() - started) / args.files * 1000
        a, c = statistics.median(archive_s), statistics.median(compress_s)
        print(f"files:      {args.files} PNG 1024x1024, {total / args.files / 1e6:.2f} MB average")
        print(
            f"archive:    {', '.join(f'{total / s / 1e6:.0f}' for s in archive_s)} MB/s; median {total / a / 1e6:.0f} MB/s"
        )
        print(
            f"compress:   ({fmt}) {', '.join(f'{args.files / s:.1f}' for s in compress_s)} files/s; median {args.files / c:.1f} files/s"
        )
        print(f"{fmt} q90:   {out / args.files / 1e6:.2f} MB average ({out / total:.0%} of the PNGs)")
        print(f"read-back:  {check_ms:.1f} ms per file (included in compress)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
