"""Nothing-new pass cost with a small and a huge state DB (issue 5: 1,000,000 rows vs 20,000).

    .venv/bin/python -m bench.statedb [--files 20000] [--history 1000000] [--passes 5]

A remote (loopback sshd) holds `--files` landed files. Two state DBs describe them: one with just those
rows, one with `--history` more rows of files landed and purged long ago (what a container that has been
synced for months leaves behind). For each, the daemon's own Ledger loads its diff base and its PollWatcher
makes nothing-new passes (listed and diffed) on one open connection; the table shows load time, median pass time and the
process's peak RSS growth, so the cost of history is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import write_section
from mediasyncd.config import RemoteConfig
from mediasyncd.logging import configure_logging
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import open_source
from mediasyncd.state import Store
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.watchers.poll import PollWatcher
from tests.sshd import SshServer, start_sshd


def make_tree(root: Path, files: int) -> None:
    old = time.time() - 86400
    for i in range(files):
        folder = root / f"2026-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}-{i * 7919 % 10**9}.png"
        path.write_bytes(b"x")
        os.utime(path, (old, old))


def fill_db(db: Path, root: Path, history: int) -> None:
    """Rows for every file under `root` (landed) plus `history` purged rows."""
    store = Store(db)
    asyncio.run(store.open())
    asyncio.run(store.close())
    now = time.time()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        rows = []
        for path in sorted(root.rglob("*.png")):
            st = path.stat()
            rel = str(path.relative_to(root))
            rows.append(
                ("b", str(root), rel, st.st_size, st.st_mtime, "landed", now, "0" * 64, f"b/{rel}", now)
            )
        conn.executemany(
            "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen, sha256, local_path, landed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        batch = 50_000
        for start in range(0, history, batch):
            conn.executemany(
                "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen, sha256, local_path, "
                "landed_at, purged_at) VALUES ('b', ?, ?, 1500000, ?, 'purged', ?, ?, ?, ?, ?)",
                (
                    (str(root), f"old/{i // 1000:04d}/{i:07d}.png", now - 9e6, now - 9e6, "1" * 64,
                     f"b/old/{i // 1000:04d}/{i:07d}.png", now - 9e6, now - 8e6)
                    for i in range(start, min(history, start + batch))
                ),
            )  # fmt: skip


async def passes(
    server: SshServer, root: Path, work: Path, db: Path, count: int
) -> tuple[float, list[float]]:
    remote = RemoteConfig(
        name="b", host=server.host, port=server.port, user=server.user, identity_file=server.client_key,
        known_hosts=server.known_hosts, roots=(str(root),), include=("*.png",), settle=1.0, poll_interval=3600,
    )  # fmt: skip
    store = Store(db)
    await store.open()
    status = RemoteStatus("b")
    with ThreadPoolExecutor(4) as pool:
        ledger = Ledger("b", store, status)
        start = time.perf_counter()
        await ledger.load(work, pool)
        load_s = time.perf_counter() - start
        source = await open_source(remote, work)
        watcher = PollWatcher(source, remote, ledger.pending)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            claimed = await ledger.admit(await watcher.look())
            times.append(time.perf_counter() - started)
            assert not claimed, "a nothing-new pass queued work"
        await source.close()
    await store.close()
    return load_s, times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20_000)
    p.add_argument("--history", type=int, default=1_000_000)
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--doc", type=Path, help="write the table into this Markdown file's generated section")
    args = p.parse_args(argv)
    configure_logging("warning", json=True)
    lines = [
        f"Command: `.venv/bin/python -m bench.statedb --files {args.files} --history {args.history} "
        f"--passes {args.passes}`",
        "",
        "| state DB rows | load diff base s | nothing-new pass s (median) | RSS growth MB |",
        "|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="mediasyncd-statedb-") as tmp:
        base = Path(tmp)
        root = base / "remote"
        make_tree(root, args.files)
        with start_sshd(base / "sshd") as server:
            for history in (0, args.history):
                work = base / f"lib-{history}"
                work.mkdir()
                db = work / "state.db"
                fill_db(db, root, history)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                load_s, times = asyncio.run(passes(server, root, work, db, args.passes))
                grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
                rows = args.files + history
                lines.append(f"| {rows:,} | {load_s:.3f} | {statistics.median(times):.3f} | {grown:.0f} |")
                print(lines[-1], file=sys.stderr)
    text = "\n".join(lines)
    print(text)
    if args.doc:
        write_section(
            args.doc, "### Nothing-new pass and state DB size\n\n" + text, writer="bench/statedb.py"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
