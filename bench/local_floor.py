"""What a verified local copy cannot avoid, each part timed on its own (issue 15's ≥ 0.8× `rsync -a`).

    .venv/bin/python -m bench.local_floor                       # PNG 300 + MANY 3,000, 3 repetitions
    .venv/bin/python -m bench.local_floor --data-dir /var/tmp/lf-bench/data --repeat 5

For each dataset (bench.sources' sizes, generated in --data-dir if missing), in one thread and with one
reused 1 MiB buffer, as mediasyncd's local copy does: reading every file (page cache), SHA-256 of every
byte, reading + hashing + writing into a fresh directory, the same then `syncfs` (every byte durable,
as mediasyncd must before a rename), and beside them `rsync -a` between two directories and starting
Python with mediasyncd's modules imported (`sync --once`'s fixed cost). CPU is user + system of this
process (of the child for rsync and the import); medians of --repeat. The machine is shared: the load
average is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.datasets import Dataset, DatasetSpec, ensure_datasets, walk_files
from mediasyncd.transfer.landing import sync_filesystem

CHUNK = 1 << 20
IMPORTS = "import mediasyncd.cli, mediasyncd.sync_once, mediasyncd.sources.local, mediasyncd.transfer.puller"


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def measure(action: Callable[[], None], who: int = resource.RUSAGE_SELF) -> tuple[float, float]:
    """(wall s, CPU s) of `action`, after a `sync` so that no earlier write is flushed in it."""
    subprocess.run(["sync"], check=True)
    cpu, wall = _cpu(who), time.perf_counter()
    action()
    return time.perf_counter() - wall, _cpu(who) - cpu


def parts(files: list[Path], dest: Path) -> dict[str, Callable[[], None]]:
    buffer = memoryview(bytearray(CHUNK))

    def each(write: bool, digest: bool, flush: bool = False) -> Callable[[], None]:
        def run() -> None:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for i, path in enumerate(files):
                src = os.open(path, os.O_RDONLY)
                dst = os.open(dest / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if write else -1
                hasher = hashlib.sha256()
                offset = 0
                while got := os.preadv(src, [buffer], offset):
                    view = buffer[:got]
                    if digest:
                        hasher.update(view)
                    while write and view:
                        view = view[os.write(dst, view) :]
                    offset += got
                os.close(src)
                if write:
                    os.close(dst)
            if flush:
                sync_filesystem(dest)

        return run

    data = b"".join(p.read_bytes() for p in files[: min(len(files), 64)])

    def sha_only() -> None:  # SHA-256 of as many bytes, from memory: the hash alone
        total = sum(p.stat().st_size for p in files)
        view = memoryview(data)
        for _ in range(total // len(data)):
            hashlib.sha256(view).digest()

    return {
        "read": each(write=False, digest=False),
        "SHA-256 (from memory)": sha_only,
        "read + SHA-256": each(write=False, digest=True),
        "read + SHA-256 + write": each(write=True, digest=True),
        "read + SHA-256 + write + syncfs": each(write=True, digest=True, flush=True),
    }


def run_child(argv: list[str]) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(argv, check=True)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--png", type=int, default=300)
    p.add_argument("--many", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/floor-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench/floor"))
    args = p.parse_args(argv)
    spec = DatasetSpec(png=args.png, many=args.many, many_folders=max(1, args.many // 120), big=0)
    datasets: list[Dataset] = [d for d in ensure_datasets(args.data_dir, spec) if d.files]
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; medians of {args.repeat}")
    print("| dataset | part | wall s | CPU s |")
    print("| --- | --- | ---: | ---: |")
    for d in datasets:
        files = sorted(walk_files(d.root))
        dest = args.scratch / "dest"
        tools = {name: (fn, resource.RUSAGE_SELF) for name, fn in parts(files, dest).items()}
        tools["rsync -a"] = (run_child(["rsync", "-a", f"{d.root}/", f"{dest}/"]), resource.RUSAGE_CHILDREN)
        tools["python + imports"] = (run_child([sys.executable, "-c", IMPORTS]), resource.RUSAGE_CHILDREN)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
        for _ in range(args.repeat):
            for name, (fn, who) in tools.items():
                shutil.rmtree(dest, ignore_errors=True)
                samples[name].append(measure(fn, who))
        for name, runs in samples.items():
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"| {d.name} ({d.megabytes:.0f} MB) | {name} | {wall:.2f} | {cpu:.2f} |", flush=True)
        shutil.rmtree(args.scratch, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
