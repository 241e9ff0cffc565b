"""The floor of a verified pull over SSH in Python, beside rsync and mediasyncd, in one run.

    sudo .venv/bin/python -m bench.ssh_floor                        # PNG 200, MANY 2,000, BIG 2 x 200 MB
    sudo .venv/bin/python -m bench.ssh_floor --datasets MANY --many 20000 --repeat 5 --scratch /dev/shm/msb
    sudo .venv/bin/python -m bench.ssh_floor --scenario incremental --many 20000   # or noop

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

`--scenario noop|incremental`: bench.ab's scenarios (each tool keeps a library holding MANY; nothing
new, or +50 PNGs) with one floor, `floor`: connect, one `sh` on one exec channel that runs the listing
(`find -printf`, mediasyncd's parser), then the new files' tar stream, then their SHA-256; names known
from a JSON list, not a state DB (bench/floor_child.py).

`--transport lan|wan`: the same over bench.ab's unshaped veth pair or the emulated 40 ms / 200 Mbit/s
link instead of loopback. Each repetition also times the raw asyncssh channel (`cat /dev/zero`, from its
first byte, as bench.run's link check does), which issue 21's WAN target (≥ 0.95× of it) is stated
against; each tool's MB/s counts its whole process (start, connect, the last verification) against that
rate. Over the WAN the link sets the pace and the floors' two streams measured no faster than mediasyncd
(docs/benchmarks.md, eighth pass): there they show what a fresh process reaches, not a bound.

Each floor runs as `python -m bench.floor_child`, which imports only what it uses (the standard library,
asyncssh, mediasyncd's parts), with its bytecode and the work tree's compiled first, as mediasyncd's is.
Tools interleaved, the order rotated each repetition; medians of wall time, local CPU (the process tree,
bench/rusage_exec.c), machine CPU (both ends: they share this machine's cores) and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.ab import TransportEndpoint, one_run
from bench.ab_followups import SCENARIOS, Kept
from bench.datasets import ensure_datasets, walk_files
from bench.endpoints import Endpoint
from bench.linkcheck import asyncssh_cat_mb_s
from bench.profile import PROFILE_SPEC, profile_spec
from bench.tools import REPO, MediasyncdOptions, RunStats, compile_bytecode, run_measured

TIMEOUT_S = 900.0
FLOORS = ("read", "land", "verified")


class KeptFloor:
    """bench.ab_followups' Tool for the kept-library floor: a library of its own, kept between runs."""

    name = "floor"

    def __init__(self, endpoint: Endpoint, root: Path, work: Path) -> None:
        self.dest = work / "dest"
        self.dest.mkdir(parents=True)
        self.work = work
        self.job = {
            "mode": "kept", "host": endpoint.host, "port": endpoint.port, "user": endpoint.user,
            "key": str(endpoint.key_path), "known_hosts": str(endpoint.known_hosts_path), "root": str(root),
            "dest": str(self.dest), "known": str(work / "known.json"),
        }  # fmt: skip

    def pull(self, timeout_s: float) -> RunStats:
        argv = [sys.executable, "-P", "-m", "bench.floor_child", json.dumps(self.job)]
        return run_measured(argv, self.work / "floor.log", timeout_s, {"PYTHONPATH": str(REPO)})


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
    argv = [sys.executable, "-P", "-m", "bench.floor_child", json.dumps(job)]
    return run_measured(argv, work / "floor.log", TIMEOUT_S, {"PYTHONPATH": str(REPO)})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="PNG,MANY,BIG")
    p.add_argument("--scenario", default="pull", choices=SCENARIOS,
                   help="noop / incremental (+50 PNGs): into a library that holds MANY, as bench.ab's")  # fmt: skip
    p.add_argument("--transport", default="ssh", choices=["ssh", "lan", "wan"],
                   help="ssh: the sshd on loopback; lan: the veth pair; wan: the emulated 40 ms link")  # fmt: skip
    p.add_argument("--cat-mb", type=int, default=100, help="MB of the raw-channel check per repetition")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--png", type=int, default=PROFILE_SPEC.png)
    p.add_argument("--many", type=int, default=PROFILE_SPEC.many)
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/profile-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    args = p.parse_args(argv)
    compile_bytecode()  # the work tree's mediasyncd, which the floors and `mediasyncd` both run
    py_compile.compile(str(REPO / "bench" / "floor_child.py"))  # PYTHONDONTWRITEBYTECODE is set here
    spec = profile_spec(args.png, args.many)
    wanted = args.datasets.split(",")
    datasets = [d for d in ensure_datasets(args.data_dir, spec) if d.name in wanted]
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.scenario != "pull":
        return _kept_scenario(args, next(d for d in datasets if d.name == "MANY"))
    tools = ["rsync", "mediasyncd", *(f"floor {m}" for m in FLOORS)]
    with tempfile.TemporaryDirectory(prefix="floor-", dir=args.scratch) as tmp:
        work = Path(tmp)
        with TransportEndpoint(args.transport, work) as endpoint:
            assert endpoint is not None
            for dataset in datasets:
                names = work / f"{dataset.name}.json"
                names.write_text(
                    json.dumps([str(p.relative_to(dataset.root)) for p in walk_files(dataset.root)])
                )
                load = os.getloadavg()[0]
                samples: dict[str, list[RunStats]] = {t: [] for t in tools}
                channel: list[float] = []
                for rep in range(args.repeat):
                    channel.append(asyncio.run(asyncssh_cat_mb_s(endpoint, args.cat_mb * 1_000_000)))
                    print(f"#{rep + 1} raw asyncssh channel: {channel[-1]:.1f} MB/s", flush=True)
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
                _report(dataset.name, dataset.files, dataset.megabytes, samples, args.repeat, load,
                        endpoint.label, statistics.median(channel))  # fmt: skip
    return 0


def _kept_scenario(args: argparse.Namespace, dataset: Any) -> int:
    """rsync, mediasyncd and the kept floor, each with its own library, in bench.ab's noop or
    incremental scenario over MANY."""
    with tempfile.TemporaryDirectory(prefix="floor-", dir=args.scratch) as tmp:
        work = Path(tmp)
        with TransportEndpoint(args.transport, work) as endpoint:
            assert endpoint is not None
            kept = Kept(
                {"rsync": None, "mediasyncd": MediasyncdOptions()}, dataset, endpoint, work, TIMEOUT_S
            )
            kept.tools["floor"] = KeptFloor(endpoint, dataset.root, work / "kept-floor")
            kept.prime(lambda line: print(line, flush=True))
            load = os.getloadavg()[0]
            tools = list(kept.tools)
            samples: dict[str, list[RunStats]] = {t: [] for t in tools}
            for rep in range(args.repeat):
                for tool in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
                    stats = kept.run(args.scenario, tool)
                    samples[tool].append(stats)
                    print(
                        f"#{rep + 1} {args.scenario} {tool}: {stats.wall_s:.2f} s, {stats.cpu_s:.2f} CPU-s",
                        flush=True,
                    )
            _report(f"{args.scenario} on MANY", dataset.files, dataset.megabytes, samples, args.repeat, load,
                    endpoint.label)  # fmt: skip
    return 0


def _report(
    name: str, files: int, mb: float, samples: dict[str, list[RunStats]], repeat: int, load: float,
    link: str, channel_mb_s: float | None = None,
) -> None:  # fmt: skip
    med = {t: {k: statistics.median(getattr(r, k) for r in runs) for k in ("wall_s", "cpu_s", "machine_cpu_s", "maxrss_mb")}
           for t, runs in samples.items()}  # fmt: skip
    rsync = med["rsync"]
    raw = f"; raw asyncssh channel {channel_mb_s:.1f} MB/s (median)" if channel_mb_s else ""
    print(f"\n{name} ({files} files, {mb:.0f} MB), {link}, medians of {repeat}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after{raw}")  # fmt: skip
    print("| tool | wall s | MB/s | local CPU-s | machine CPU-s | peak RSS MB | speed vs rsync "
          "| local CPU vs rsync | vs raw channel |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for tool, m in med.items():
        rate = mb / m["wall_s"]
        versus = f"{rate / channel_mb_s:.3f}×" if channel_mb_s else "—"
        print(f"| {tool} | {m['wall_s']:.2f} | {rate:.1f} | {m['cpu_s']:.2f} | {m['machine_cpu_s']:.2f} | "
              f"{m['maxrss_mb']:.0f} | {rsync['wall_s'] / m['wall_s']:.2f}× | {m['cpu_s'] / rsync['cpu_s']:.2f}× | "
              f"{versus} |")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
