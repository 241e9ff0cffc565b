"""Peak memory of mediasyncd (issue 21): `sync --once` of many small files, and `mediasyncd run` idle with
a large state DB, beside the floor that importing its libraries sets.

    sudo .venv/bin/python -m bench.memory                       # 2,000 files; 1,000,000 rows; ~2 minutes
    sudo .venv/bin/python -m bench.memory --files 500 --known 100000 --no-doc

Peak RSS is read from the process's own rusage (bench/rusage_exec.c: the largest process of the tree).
- **floor**: `python -c "import asyncssh"` and `python -c "import mediasyncd.cli, mediasyncd.sync_once,
  asyncssh"` — what the interpreter and the libraries need before any file is touched.
- **sync --once**: an empty library pulls `--files` ~100 KB files from the real sshd on loopback; and
  the same through OpenSSH's `ssh` as an exec source's command (`transport = "exec"`, `command = ["ssh",
  …, "sh"]`): no asyncssh in the process. Its time is reported beside each.
- **run, idle**: `mediasyncd run` with a state DB holding `--known` files landed from the remote (all
  current: the diff base keeps every one in memory) while the remote's root holds none of them now;
  the daemon loads its state, polls twice, and is stopped. A second run with `--known` purged rows
  (history only, the common case after months of `purge`) shows what history costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.daemon import RunningDaemon
from bench.datasets import DatasetSpec, ensure_datasets
from bench.endpoints import loopback_endpoint
from bench.report import write_section
from bench.tools import Mediasyncd, MediasyncdOptions, RunStats, compile_bytecode, run_measured
from mediasyncd.state import Store

REPO = Path(__file__).resolve().parent.parent
WAYS = {"asyncssh": "SSH (asyncssh)", "openssh": 'OpenSSH\'s `ssh` as `transport = "exec"`'}


def floor_mb(code: str, log: Path) -> float:
    return run_measured([sys.executable, "-c", code], log, 120).maxrss_mb


def fill_known(db: Path, root: str, count: int, state: str) -> None:
    """`count` rows of remote `bench` under `root`, landed (current) or purged (history)."""
    store = Store(db)
    asyncio.run(store.open())
    asyncio.run(store.close())
    now = time.time()
    purged_at = now if state == "purged" else None
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        for start in range(0, count, 50_000):
            conn.executemany(
                "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen, sha256, local_path, "
                "landed_at, purged_at) VALUES ('bench', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (root, rel, 100_000 + i, now - 9e6 + i, state, now - 9e6, f"{i:064x}", f"bench/{rel}",
                     now - 9e6, purged_at)
                    for i in range(start, min(count, start + 50_000))
                    for rel in (f"txt2img-images/2026-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}/{i:07d}-{i * 7919 % 10**9}.png",)
                ),
            )  # fmt: skip


def idle_run_mb(endpoint_tool: Mediasyncd, known: int, state: str) -> tuple[float, int]:
    """Peak RSS of `mediasyncd run` with `known` rows in `state`, after two polls; and the rows."""
    db = endpoint_tool.state_dir / "state.db"
    endpoint_tool.state_dir.mkdir(parents=True, exist_ok=True)
    fill_known(db, str(endpoint_tool.source), known, state)
    (endpoint_tool.library / ".mediasyncd").mkdir(exist_ok=True)  # a library files landed in has it
    with RunningDaemon(endpoint_tool, start_timeout_s=300) as daemon:
        daemon.pass_times(2, skip=1, timeout_s=300)
        stats = daemon.stop()
    return stats.maxrss_mb, known


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=2000, help="~100 KB files pulled by sync --once")
    p.add_argument("--known", type=int, default=1_000_000, help="files in the state DB for the idle run")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    args = p.parse_args(argv)
    compile_bytecode()
    spec = DatasetSpec(png=0, many=args.files, many_folders=max(1, args.files // 120), big=0)
    many = next(d for d in ensure_datasets(args.scratch / "memory-data", spec) if d.name == "MANY")
    args.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memory-", dir=args.scratch) as tmp:
        work = Path(tmp)
        log = work / "floor.log"
        floors = {
            "python -c 'import asyncssh'": floor_mb("import asyncssh", log),
            "python -c 'import mediasyncd.cli, mediasyncd.sync_once, asyncssh'": floor_mb(
                "import mediasyncd.cli, mediasyncd.sync_once, asyncssh", log
            ),
        }
        empty_root = work / "empty-root"
        empty_root.mkdir()
        with loopback_endpoint(work / "sshd") as endpoint:
            once: dict[str, list[RunStats]] = {"asyncssh": [], "openssh": []}
            for rep in range(args.repeat):
                for way, runs in once.items():
                    options = MediasyncdOptions(openssh=way == "openssh")
                    tool = Mediasyncd(endpoint, many.root, work / f"once-{way}-{rep}", options)
                    runs.append(tool.pull(600))
                    print(
                        f"sync --once of {many.files} files ({way}): peak RSS {runs[-1].maxrss_mb:.1f} MB, "
                        f"{runs[-1].wall_s:.2f} s",
                        flush=True,
                    )
            idle = {}
            for state in ("landed", "purged"):
                options = MediasyncdOptions(poll_interval="2s")
                tool = Mediasyncd(endpoint, empty_root, work / f"idle-{state}", options)
                idle[state] = idle_run_mb(tool, args.known, state)[0]
                print(f"run idle, {args.known:,} {state} rows: peak RSS {idle[state]:.1f} MB", flush=True)
    section = report(floors, once, many.files, idle, args.known)
    print(section)
    if not args.no_doc:
        write_section(args.doc, section, writer="bench/memory.py")
    return 0


def report(
    floors: dict[str, float], once: dict[str, list[RunStats]], files: int, idle: dict[str, float], known: int
) -> str:
    load = os.getloadavg()[0]
    lines = [
        "### Peak memory (bench/memory.py)",
        "",
        f"Command: `.venv/bin/python -m bench.memory --files {files} --known {known}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 1-minute load average {load:.1f}.",
        "",
        "| what | peak RSS MB | target (issue 21) |",
        "| --- | ---: | --- |",
        *(f"| floor: `{k}` | {v:.1f} | |" for k, v in floors.items()),
        *(
            f"| `sync --once` of {files:,} × 100 KB over loopback, {WAYS[way]} (median of {len(runs)}; "
            f"{statistics.median(r.wall_s for r in runs):.2f} s) | {statistics.median(r.maxrss_mb for r in runs):.1f} | ≤ 40 |"
            for way, runs in once.items()
        ),
        f"| `run` idle, {known:,} landed files known (all current) | {idle['landed']:.1f} | ≤ 150 |",
        f"| `run` idle, {known:,} purged rows (history only) | {idle['purged']:.1f} | ≤ 150 |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
