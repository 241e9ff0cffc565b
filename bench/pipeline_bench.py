"""Media pipeline throughput: metadata + XMP + thumbnail + index on 1024x1024 PNGs with A1111 metadata.

    .venv/bin/python -m bench.pipeline_bench [--files 200] [--workers 0] [--stealth N] [--keep DIR] [--doc FILE]

Generates the PNGs first (not timed; ~1.5 MB each, like SD output: smooth gradients plus noise), then
feeds every file to `Pipeline.process` concurrently, as the daemon does when files land, and reports
files/s and MB/s. Target on a 2-core machine: at least 40 files/s (issue 4, kept by issue 19).
With `--stealth N`, every Nth file is instead an RGBA PNG whose only metadata is NovelAI-style stealth
pnginfo in the alpha channel (as after a site stripped its text chunks), the slowest metadata path.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bench.report import write_section
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.runner import Pipeline

PARAMETERS = (
    "masterpiece, best quality, a lighthouse on a cliff at dusk, volumetric light, <lora:detail:0.6>, {i}\n"
    "Negative prompt: lowres, blurry, bad anatomy\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: {i}, Size: 1024x1024, "
    "Model hash: 1449e5b0b9, Model: juggernautXL_v9, Version: f2.0.1v1.10.1-previous-633-ge073e4ec"
)


def _stealth_alpha(size: tuple[int, int], text: str) -> Image.Image:
    """An alpha channel carrying `text` the way NovelAI's `nai_meta_writer.py` writes it (stealth_pngcomp)."""
    payload = gzip.compress(
        json.dumps({"Software": "NovelAI", "Comment": json.dumps({"prompt": text})}).encode()
    )
    buffer = b"stealth_pngcomp" + (len(payload) * 8).to_bytes(4, "big") + payload
    bits = bytes(0xFE | ((byte >> (7 - i)) & 1) for byte in buffer for i in range(8))
    width, height = size
    column_major = bits + b"\xff" * (width * height - len(bits))
    return Image.frombytes("L", (height, width), column_major).transpose(Image.Transpose.TRANSPOSE)


def make_images(folder: Path, count: int, stealth: int = 0) -> list[Path]:
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((1024, 1024)),
            Image.radial_gradient("L").resize((1024, 1024)),
            Image.effect_noise((1024, 1024), 48),
        ),
    )
    paths = []
    for i in range(count):
        info = PngInfo()
        info.add_itxt("parameters", PARAMETERS.format(i=i))
        image = base.rotate(i % 360) if i % 7 else base
        path = folder / f"{i:05}-{i}.png"
        if stealth and i % stealth == 0:
            image = image.copy()
            image.putalpha(_stealth_alpha(image.size, PARAMETERS.format(i=i)))
            info = PngInfo()
        image.save(path, "PNG", pnginfo=info, compress_level=1)
        paths.append(path)
    return paths


def reset(library: Path, db_path: Path) -> None:
    """Remove every output of a previous round, so each round does all the work again."""
    shutil.rmtree(library / ".mediasyncd", ignore_errors=True)
    for sidecar in library.rglob("*.xmp"):
        sidecar.unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.sync()  # freshly generated images would otherwise be written back during the timed part


async def run(library: Path, db_path: Path, paths: list[Path], workers: int) -> float:
    pipeline = Pipeline(db_path, library, PipelineOptions(workers=workers))
    hashes = [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in paths
    ]  # comes from the transfer in the daemon
    warm = paths[0].with_name("warmup.png")
    shutil.copy(paths[0], warm)  # start the worker processes outside the timed part
    await pipeline.process(warm, "0" * 64, remote="bench", rel=warm.name)
    warm.unlink()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(pipeline.process(p, h, remote="bench", rel=p.name) for p, h in zip(paths, hashes, strict=True))
    )
    elapsed = time.perf_counter() - started
    await pipeline.aclose()
    failed = [r for r in results if not r.ok]
    if failed:
        sys.exit(f"{len(failed)} files failed, e.g. {failed[0].path}: {failed[0].error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per core)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is reported")
    parser.add_argument(
        "--stealth", type=int, default=0, help="every Nth file: stealth pnginfo in alpha only"
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--doc", type=Path, help="also write the result into this Markdown file's section")
    args = parser.parse_args()
    structlog.configure(
        logger_factory=structlog.ReturnLoggerFactory()
    )  # a benchmark, not a daemon: no log I/O

    root = args.keep or Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    library = root / "library"
    (library / "bench").mkdir(parents=True, exist_ok=True)
    try:
        paths = make_images(library / "bench", args.files, args.stealth)
        size = sum(p.stat().st_size for p in paths)
        rounds = []
        for _ in range(args.rounds):
            reset(library, root / "state.db")
            rounds.append(asyncio.run(run(library, root / "state.db", paths, args.workers)))
        elapsed = statistics.median(rounds)
    finally:
        if args.keep is None:
            shutil.rmtree(root)
    cores = len(os.sched_getaffinity(0))
    workers = args.workers or cores
    lines = [
        f"files:      {len(paths)} PNG 1024x1024, {size / len(paths) / 1e6:.2f} MB average"
        + (f", every {args.stealth}th RGBA with stealth pnginfo only" if args.stealth else ""),
        f"machine:    {cores} cores, {workers} worker processes, load average {os.getloadavg()[0]:.2f}",
        f"rounds:     {', '.join(f'{len(paths) / r:.1f}' for r in rounds)} files/s",
        f"elapsed:    {elapsed:.2f} s median (metadata + xmp + thumbnail + index)",
        f"throughput: {len(paths) / elapsed:.1f} files/s, {size / elapsed / 1e6:.1f} MB/s",
    ]
    print("\n".join(lines))
    if args.doc:
        command = f".venv/bin/python -m bench.pipeline_bench --files {args.files} --rounds {args.rounds}"
        command += f" --stealth {args.stealth}" if args.stealth else ""
        section = "\n".join(
            [
                "### Media pipeline throughput (issue 4: at least 40 files/s)",
                "",
                f"Command: `{command}`",
                "",
                "```",
                *lines,
                "```",
            ]
        )
        write_section(args.doc, section, writer="bench/pipeline_bench.py")


if __name__ == "__main__":
    main()
