"""The floor of a verified pull over SSH in Python, beside rsync and mediasyncd, in one run.

    sudo .venv/bin/python -m bench.ssh_floor                        # PNG 200, MANY 2,000, BIG 2 x 200 MB
    sudo .venv/bin/python -m bench.ssh_floor --datasets MANY --many 20000 --repeat 5 --scratch /dev/shm/msb

Issue 21 asks for loopback speeds near rsync's (PNG and BIG ≥ 0.9×, 100 KB files ≥ 0.8× files/s) and
says: where a target proves impossible in Python on this machine, show the measurement. This is it. Each
floor is a fresh Python process (its start-up counted, as rsync's and mediasyncd's are) that does only
what no verified pull can skip, with the same parts mediasyncd uses (asyncssh, aes128-gcm, its own tar
reader) and nothing else: no config, no state DB, no events, no listing (the names come from a file).

- `floor read`: connect, two tar streams of the dataset (as mediasyncd runs two at a time on a fast
  link), every byte read and dropped.
- `floor land`: the same, each member written to its own temporary file and hashed as it is written
  (mediasyncd's `unpack_stream`), then `syncfs` and a rename of each into place.
- `floor verified`: the same plus the remote's SHA-256 of every file (`openssl dgst` on a third channel,
  beside the streams) compared with the local hash: what mediasyncd must do before it calls a file
  landed, and so the fastest a verified pull can be in Python with asyncssh.
- `mediasyncd`: the checked-out code's `sync --once` (bench.tools), and `rsync -a -e ssh`.

Tools interleaved, the order rotated each repetition; medians of wall time, local CPU (the process tree,
bench/rusage_exec.c) and machine CPU (both ends: they share this machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.ab import one_run
from bench.datasets import DatasetSpec, ensure_datasets, walk_files
from bench.endpoints import Endpoint, loopback_endpoint
from bench.profile import PROFILE_SPEC
from bench.tools import REPO, MediasyncdOptions, RunStats, run_measured

TIMEOUT_S = 900.0
STREAMS = 2  # mediasyncd's tar streams at a time on a fast link (sources/ssh/rtt.py)
TAR = "tar -cf - --format=gnu --null --no-recursion -T -"
FLOORS = ("read", "land", "verified")


async def _stream(
    conn: Any, root: str, rels: list[str], mode: str, partial: dict[str, Path], pool: Any
) -> dict[str, str]:
    """One tar stream of `rels`: dropped (`read`) or unpacked into partials under `dest`; their hashes."""
    from mediasyncd.sources.tar import Member, unpack_stream

    process = await conn.create_process(f"cd {root} && {TAR}", encoding=None)
    process.stdin.write(b"".join(r.encode() + b"\0" for r in rels))
    process.stdin.write_eof()
    got: dict[str, str] = {}
    if mode == "read":
        while await process.stdout.read(1 << 20):
            pass
    else:
        partials = {rel: partial[rel] for rel in rels}

        def member(m: Member) -> None:
            got[m.rel] = m.sha256

        await unpack_stream(process.stdout, root, partials, executor=pool, on_member=member)
    await process.wait()
    return got


async def _remote_hashes(conn: Any, root: str, rels: list[str]) -> dict[str, str]:
    result = await conn.run(
        f"cd {root} && xargs -0 openssl dgst -sha256 -r",  # as mediasyncd hashes (SHA extensions)
        input=b"".join(r.encode() + b"\0" for r in rels),
        encoding=None,
    )
    out: dict[str, str] = {}
    for line in result.stdout.decode().splitlines():
        digest, _, name = line.partition(" ")
        out[name.removeprefix("*")] = digest
    return out


async def _floor(job: dict[str, Any]) -> None:
    import asyncssh

    rels: list[str] = job["rels"]
    dest = Path(job["dest"])
    mode = job["mode"]
    from mediasyncd.sources.ssh.connect import slice_received

    class Client(asyncssh.SSHClient):
        def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
            slice_received(conn)  # as mediasyncd's own connections do

    conn, _ = await asyncssh.create_connection(
        Client, job["host"], job["port"], username=job["user"], client_keys=[job["key"]],
        known_hosts=job["known_hosts"], encryption_algs=["aes128-gcm@openssh.com"], compression_algs=None,
        agent_path=None,
    )  # fmt: skip
    groups = [rels[i::STREAMS] for i in range(STREAMS)]
    partial = {rel: dest / f".p{i}" for i, rel in enumerate(rels)}
    with ThreadPoolExecutor(4) as pool:
        async with conn:
            tasks = [_stream(conn, job["root"], g, mode, partial, pool) for g in groups if g]
            remote = _remote_hashes(conn, job["root"], rels) if mode == "verified" else None
            results = await asyncio.gather(*tasks, *([remote] if remote else []))
        local: dict[str, str] = {}
        for r in results[: len(tasks)]:
            local.update(r)
        if mode == "read":
            return
        from mediasyncd.transfer.landing import sync_filesystem

        if remote is not None and local != results[-1]:
            raise SystemExit(
                f"floor verified: {sum(local.get(r) != results[-1].get(r) for r in rels)} mismatches"
            )

        def land() -> None:
            sync_filesystem(dest)
            made: set[Path] = set()
            for rel in rels:
                final = dest / rel
                if final.parent not in made:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    made.add(final.parent)
                os.rename(partial[rel], final)

        await asyncio.get_running_loop().run_in_executor(pool, land)


def _floor_run(mode: str, endpoint: Endpoint, root: Path, names: Path, work: Path) -> RunStats:
    shutil.rmtree(work, ignore_errors=True)
    dest = work / "dest"
    dest.mkdir(parents=True)
    subprocess.run(["sync"], check=True)
    job = {
        "mode": mode, "host": endpoint.host, "port": endpoint.port, "user": endpoint.user,
        "key": str(endpoint.key_path), "known_hosts": str(endpoint.known_hosts_path), "root": str(root),
        "names": str(names), "dest": str(dest),
    }  # fmt: skip
    argv = [sys.executable, "-P", "-m", "bench.ssh_floor", "--child", json.dumps(job)]
    return run_measured(argv, work / "floor.log", TIMEOUT_S, {"PYTHONPATH": str(REPO)})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--datasets", default="PNG,MANY,BIG")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--png", type=int, default=PROFILE_SPEC.png)
    p.add_argument("--many", type=int, default=PROFILE_SPEC.many)
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/profile-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    args = p.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        job["rels"] = json.loads(Path(job["names"]).read_text())
        asyncio.run(_floor(job))
        return 0
    s = PROFILE_SPEC
    folders = s.many_folders if args.many == s.many else max(1, args.many // 120)
    spec = DatasetSpec(png=args.png, many=args.many, many_folders=folders, big=s.big, big_mb=s.big_mb)
    wanted = args.datasets.split(",")
    datasets = [d for d in ensure_datasets(args.data_dir, spec) if d.name in wanted]
    args.scratch.mkdir(parents=True, exist_ok=True)
    tools = ["rsync", "mediasyncd", *(f"floor {m}" for m in FLOORS)]
    with tempfile.TemporaryDirectory(prefix="floor-", dir=args.scratch) as tmp:
        work = Path(tmp)
        with loopback_endpoint(work / "sshd") as endpoint:
            for dataset in datasets:
                names = work / f"{dataset.name}.json"
                names.write_text(
                    json.dumps([str(p.relative_to(dataset.root)) for p in walk_files(dataset.root)])
                )
                load = os.getloadavg()[0]
                samples: dict[str, list[RunStats]] = {t: [] for t in tools}
                for rep in range(args.repeat):
                    for tool in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
                        if tool.startswith("floor "):
                            stats = _floor_run(tool.split()[1], endpoint, dataset.root, names, work / "run")
                        else:
                            options = MediasyncdOptions() if tool == "mediasyncd" else None
                            stats = one_run(tool, options, args, dataset.root, work / "run", endpoint)
                        samples[tool].append(stats)
                        print(
                            f"#{rep + 1} {dataset.name} {tool}: {stats.wall_s:.2f} s, {stats.cpu_s:.2f} CPU-s",
                            flush=True,
                        )
                _report(dataset.name, dataset.files, dataset.megabytes, samples, args.repeat, load)
    return 0


def _report(
    name: str, files: int, mb: float, samples: dict[str, list[RunStats]], repeat: int, load: float
) -> None:
    med = {t: {k: statistics.median(getattr(r, k) for r in runs) for k in ("wall_s", "cpu_s", "machine_cpu_s")}
           for t, runs in samples.items()}  # fmt: skip
    rsync = med["rsync"]
    print(f"\n{name} ({files} files, {mb:.0f} MB), loopback, medians of {repeat}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    print("| tool | wall s | local CPU-s | machine CPU-s | speed vs rsync | local CPU vs rsync |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for tool, m in med.items():
        print(f"| {tool} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['machine_cpu_s']:.2f} | "
              f"{rsync['wall_s'] / m['wall_s']:.2f}× | {m['cpu_s'] / rsync['cpu_s']:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
