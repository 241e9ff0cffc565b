"""Flame graphs of `mediasyncd sync --once` per dataset over loopback, sampled by py-spy.

    sudo .venv/bin/python -m bench.profile            # PNG 200 files, MANY 2,000, BIG 2 x 200 MB; ~1 minute
    sudo .venv/bin/python -m bench.profile --many 5000 --datasets MANY,noop --raw --out /tmp/stacks
    sudo .venv/bin/python -m bench.profile --transport local --datasets PNG,MANY --out /tmp/local
    sudo .venv/bin/python -m bench.profile --many 20000 --datasets MANY --counters   # perf stat, no py-spy

Each dataset is pulled once into an empty library from the real OpenSSH sshd on 127.0.0.1 (the same
endpoint as `bench.run --links loopback`), with `py-spy record` sampling the mediasyncd process (its
threads included: hashing and file writes run there), and the SVG goes to
`docs/profiles/<dataset>.svg`. A start-up profile (`sync --once` with nothing new on MANY) goes to
`docs/profiles/noop.svg`. py-spy needs ptrace (root). Wall and CPU time per pull are printed too, but
profiling slows the process down: take figures from `bench.run`, not from here.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.datasets import Dataset, DatasetSpec, ensure_datasets
from bench.endpoints import loopback_endpoint
from bench.tools import Mediasyncd, MediasyncdOptions, compile_bytecode
from tests.helpers import write_config

REPO = Path(__file__).resolve().parent.parent
PY_SPY = str(Path(sys.executable).parent / "py-spy")
PROFILE_SPEC = DatasetSpec(png=200, many=2000, many_folders=9, big=2, big_mb=200)


def profile_spec(png: int = PROFILE_SPEC.png, many: int = PROFILE_SPEC.many) -> DatasetSpec:
    """PROFILE_SPEC with other PNG and MANY counts: MANY in ~120 files per folder when not the default
    (as bench.sources' and bench.run's sets), so one count always means one dataset on disk."""
    s = PROFILE_SPEC
    folders = s.many_folders if many == s.many else max(1, many // 120)
    return DatasetSpec(png=png, many=many, many_folders=folders, big=s.big, big_mb=s.big_mb)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = PROFILE_SPEC
    p.add_argument("--png", type=int, default=s.png, help=f"PNG files (default {s.png})")
    p.add_argument("--many", type=int, default=s.many, help=f"~100 KB files (default {s.many})")
    p.add_argument("--big", type=int, default=s.big, help=f"BIG files (default {s.big})")
    p.add_argument("--big-mb", type=int, default=s.big_mb, help=f"MB per BIG file (default {s.big_mb})")
    p.add_argument("--datasets", default="PNG,MANY,BIG,noop", help="which profiles (default all)")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second (default 200)")
    p.add_argument("--raw", action="store_true", help="collapsed stacks (.txt) instead of SVGs")
    p.add_argument("--idle", action="store_true",
                   help="wall clock: keep the idle samples too (where a pass waits, e.g. on the remote)")  # fmt: skip
    p.add_argument("--gil", action="store_true",
                   help="only samples of the thread holding the GIL: where the Python CPU time goes")  # fmt: skip
    p.add_argument("--transport", default="ssh", choices=["ssh", "local"],
                   help="local: read the dataset's folder directly (profiles named local-<dataset>)")  # fmt: skip
    p.add_argument("--counters", action="store_true",
                   help="no py-spy: `perf stat` of each pull (context switches, CPU), printed")  # fmt: skip
    p.add_argument("--out", type=Path, default=REPO / "docs" / "profiles", help="where the SVGs go")
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/profile-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    return p.parse_args(argv)


def py_spy_argv(
    out: Path, rate: int, command: list[str], *, idle: bool = False, gil: bool = False
) -> list[str]:
    """`py-spy record` of `command`, per thread (idle frames left out unless `idle`: they show waits,
    not work; only the GIL's holder when `gil`); a flame graph, or collapsed stacks when `out` ends in .txt."""
    fmt = "raw" if out.suffix == ".txt" else "flamegraph"
    return [PY_SPY, "record", "--output", str(out), "--format", fmt, "--rate", str(rate),
            "--threads", "--subprocesses", "--nonblocking", *(["--idle"] if idle else []),
            *(["--gil"] if gil else []), "--", *command]  # fmt: skip


def profile(
    tool: Mediasyncd | LocalPull, svg: Path, rate: int, *, idle: bool = False, gil: bool = False
) -> float:
    """Pull once under py-spy; the wall time."""
    argv = tool.options.command("sync", "--once", "--no-progress", "--config", str(tool.config))
    argv += ["--log-level", "warning"]
    started = time.perf_counter()
    with tool.log.open("ab") as log:
        subprocess.run(py_spy_argv(svg, rate, argv, idle=idle, gil=gil), stdout=log, stderr=log, check=True)
    return time.perf_counter() - started


COUNTERS = ("context-switches", "cpu-migrations", "task-clock")


def perf_csv(text: str) -> dict[str, float]:
    """`perf stat -x ,` output: each counted event's value (task-clock in ms); uncounted ones left out."""
    got: dict[str, float] = {}
    for fields in (line.split(",") for line in text.splitlines() if not line.startswith("#")):
        if len(fields) > 2 and fields[0].replace(".", "", 1).isdigit():
            got[fields[2]] = float(fields[0])
    return got


def counters(tool: Mediasyncd | LocalPull, out: Path) -> str:
    """Pull once under `perf stat` (software counters: they work in a VM); its figures as one line."""
    argv = tool.options.command("sync", "--once", "--no-progress", "--config", str(tool.config))
    argv += ["--log-level", "warning"]
    started = time.perf_counter()
    with tool.log.open("ab") as log:
        subprocess.run(["perf", "stat", "-x", ",", "-o", str(out), "-e", ",".join(COUNTERS), "--", *argv],
                       stdout=log, stderr=log, check=True)  # fmt: skip
    wall = time.perf_counter() - started
    got = perf_csv(out.read_text())
    return (
        f"{got.get('context-switches', 0):,.0f} context switches, {got.get('cpu-migrations', 0):,.0f} "
        f"migrations, {got.get('task-clock', 0) / 1000:.2f} CPU-s, {wall:.2f} s"
    )


class LocalPull:
    """`sync --once` of a local folder (`transport = "local"`, bench.sources' config) into `work`."""

    def __init__(self, root: Path, work: Path, options: MediasyncdOptions) -> None:
        work.mkdir(parents=True)
        self.options, self.log = options, work / "mediasyncd.log"
        remote = {"name": "r", "transport": "local", "roots": [str(root)], "settle": "1s", "include": ["*"]}
        self.config = write_config(work / "config.toml", work / "lib", work / "state", [remote])
        (work / "lib").mkdir()

    def pull(self, timeout_s: float) -> None:
        argv = self.options.command("sync", "--once", "--no-progress", "--config", str(self.config))
        subprocess.run([*argv, "--log-level", "warning"], check=True, timeout=timeout_s)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(PY_SPY) is None:
        raise SystemExit(f"{PY_SPY} not found: scripts/setup --dev installs py-spy")
    if args.counters and shutil.which("perf") is None:
        raise SystemExit("perf not found: apt-get install linux-perf")
    spec = DatasetSpec(png=args.png, many=args.many, many_folders=9, big=args.big, big_mb=args.big_mb)
    wanted = {n.strip() for n in args.datasets.split(",") if n.strip()}
    compile_bytecode()
    datasets = {d.name: d for d in ensure_datasets(args.data_dir, spec) if d.files}
    args.out.mkdir(parents=True, exist_ok=True)
    ext = ".txt" if args.raw else ".svg"
    args.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-", dir=args.scratch) as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            endpoint = (
                None if args.transport == "local" else stack.enter_context(loopback_endpoint(work / "sshd"))
            )
            prefix = "local-" if endpoint is None else ""
            for name in ("PNG", "MANY", "BIG"):
                if name not in wanted and not (name == "MANY" and "noop" in wanted):
                    continue
                d: Dataset = datasets[name]
                tool: Mediasyncd | LocalPull = (
                    LocalPull(d.root, work / name, MediasyncdOptions())
                    if endpoint is None
                    else Mediasyncd(endpoint, d.root, work / name, MediasyncdOptions())
                )
                if name in wanted and args.counters:
                    print(
                        f"{name}: {d.files} files, {d.megabytes:.0f} MB: {counters(tool, work / 'perf.txt')}"
                    )
                elif name in wanted:
                    wall = profile(
                        tool, args.out / f"{prefix}{name}{ext}", args.rate, idle=args.idle, gil=args.gil
                    )
                    print(f"{name}: {d.files} files, {d.megabytes:.0f} MB in {wall:.2f} s (under py-spy)")
                if name == "MANY" and "noop" in wanted:
                    if name not in wanted:
                        tool.pull(600)
                    if args.counters:
                        print(
                            f"noop: nothing-new sync --once over {d.files} files: {counters(tool, work / 'perf.txt')}"
                        )
                        continue
                    wall = profile(
                        tool, args.out / f"{prefix}noop{ext}", args.rate, idle=args.idle, gil=args.gil
                    )
                    print(
                        f"noop: nothing-new sync --once over {d.files} files in {wall:.2f} s (under py-spy)"
                    )
    print(f"flame graphs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
