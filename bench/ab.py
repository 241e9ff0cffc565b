"""A/B of mediasyncd revisions beside rsync: one dataset, one endpoint, runs interleaved, medians.

    sudo .venv/bin/python -m bench.ab --rev 0a84986 --rev HEAD --dataset MANY --repeat 5
    sudo .venv/bin/python -m bench.ab --rev HEAD --transport local --dataset PNG
    sudo .venv/bin/python -m bench.ab --rev HEAD --rev HEAD --set-b transfer.concurrency=8   # a setting
    sudo .venv/bin/python -m bench.ab --rev A --rev B --scenario noop        # nothing new (bench/ab_followups.py)

What a change to the per-file or per-byte path gains, measured the way issue 21 asks: each revision
(`git archive` of mediasyncd/ at REV, bytecode compiled) pulls the dataset into an empty library with
`sync --once`, rsync pulls it too, the order rotates each repetition, and the medians of wall time and
of local CPU (user + system of the tool's process tree, bench/rusage_exec.c) are printed with the
ratio to rsync. `--transport ssh` pulls from the real sshd on loopback (`rsync -a -e ssh`);
`--transport local` reads the dataset's folder directly (`rsync -a` between two directories); `wan` and
`lan` pull from the sshd behind bench.run's emulated link or its veth pair.
The load average is printed too: this machine is shared, so compare within one run only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.ab_followups import SCENARIOS, Kept
from bench.datasets import ensure_datasets
from bench.endpoints import Endpoint, lan_endpoint, loopback_endpoint, wan_endpoint
from bench.netem.wan import LinkSpec
from bench.pages import new_data_rate, rate_line
from bench.profile import PROFILE_SPEC, profile_spec
from bench.tools import (
    Mediasyncd,
    MediasyncdOptions,
    RunStats,
    export_revision,
    parse_override,
    resolve_revision,
    run_measured,
)
from tests.helpers import write_config

TIMEOUT_S = 900.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", action="append", required=True, help="a mediasyncd commit (repeat: A, B, ...)")
    p.add_argument("--dataset", default="MANY", choices=["PNG", "MANY", "BIG"])
    p.add_argument("--transport", default="ssh", choices=["ssh", "local", "wan", "lan"],
                   help="ssh: loopback sshd; wan: behind the 40 ms / 200 Mbit/s link; lan: the veth pair")  # fmt: skip
    p.add_argument("--scenario", default="pull", choices=SCENARIOS,
                   help="pull: into an empty library; noop / incremental (+50 PNGs): into one that holds the dataset")  # fmt: skip
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--png", type=int, default=PROFILE_SPEC.png, help="PNG files (bench.sources pulls 300)")
    p.add_argument("--many", type=int, default=PROFILE_SPEC.many, help="~100 KB files (bench.sources: 3000)")
    p.add_argument("--set-b", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config for the second --rev only (compare a setting on one revision)")  # fmt: skip
    p.add_argument(
        "--png-size",
        type=int,
        default=512,
        help="side of the incremental run's PNGs (512: ~460 KB; bench.run's 1024: ~1.7 MB)",
    )
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/profile-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    return p.parse_args(argv)


def local_argv(root: Path, dest: Path, options: MediasyncdOptions) -> list[str]:
    """`sync --once` from the folder `root` into `dest` (bench.sources' config: concurrency 4; `--set-b
    transfer.KEY=VALUE` applies)."""
    transfer = {k.removeprefix("transfer."): v for k, v in options.overrides if k.startswith("transfer.")}
    config = write_config(dest.parent / "config.toml", dest, dest.parent / "state",
                          [{"name": "r", "transport": "local", "roots": [str(root)], "settle": "1s",
                            "include": ["*"]}], transfer=transfer)  # fmt: skip
    return options.command("sync", "--once", "--config", str(config), "--quiet")


def one_run(
    name: str, options: MediasyncdOptions | None, args: argparse.Namespace, root: Path, work: Path,
    endpoint: Endpoint | None,
) -> RunStats:  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / f"{name}.log"
    subprocess.run(["sync"], check=True)
    if options is None:  # rsync
        dest = work / "dest"
        dest.mkdir()
        if endpoint is None:
            return run_measured(["rsync", "-a", f"{root}/", f"{dest}/"], log, TIMEOUT_S)
        argv = [
            "rsync",
            "-a",
            "-e",
            endpoint.rsync_shell(),
            f"{endpoint.user}@{endpoint.host}:{root}/",
            f"{dest}/",
        ]
        return run_measured(argv, log, TIMEOUT_S)
    if endpoint is None:
        dest = work / "lib"
        dest.mkdir()
        return run_measured(local_argv(root, dest, options), log, TIMEOUT_S, options.env())
    return Mediasyncd(endpoint, root, work / "m", options).pull(TIMEOUT_S)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = profile_spec(args.png, args.many)
    dataset = next(d for d in ensure_datasets(args.data_dir, spec) if d.name == args.dataset)
    args.scratch.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[RunStats]] = {}
    load_before = os.getloadavg()
    pages_before = new_data_rate(args.scratch)
    with tempfile.TemporaryDirectory(prefix="ab-", dir=args.scratch) as tmp:
        work = Path(tmp)
        tools: dict[str, MediasyncdOptions | None] = {}
        for i, rev in enumerate(args.rev):
            revision = resolve_revision(rev)
            source = export_revision(revision.commit, work / f"src-{i}")
            overrides: tuple[tuple[str, Any], ...] = ()
            if i == 1:
                overrides = tuple(parse_override(o) for o in args.set_b)
            label = f"{chr(ord('A') + i)} {rev} ({revision.commit[:10]}){' ' + ' '.join(args.set_b) if overrides else ''}"
            tools[label] = MediasyncdOptions(source=source, overrides=overrides)
        tools["rsync"] = None
        names = list(tools)
        with TransportEndpoint(args.transport, work) as endpoint:
            kept = None
            if args.scenario != "pull":
                if endpoint is None:
                    raise SystemExit("--scenario noop / incremental: over ssh, wan or lan only")
                kept = Kept(tools, dataset, endpoint, work, TIMEOUT_S, png_size=args.png_size)
                kept.prime(print)
            for rep in range(args.repeat):
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    if kept is not None:
                        stats = kept.run(args.scenario, name)
                    else:
                        stats = one_run(
                            name.split()[0], tools[name], args, dataset.root, work / "run", endpoint
                        )
                    samples.setdefault(name, []).append(stats)
                    print(f"#{rep + 1} {name}: {stats.wall_s:.2f} s, {stats.cpu_s:.2f} CPU-s", flush=True)
        pages_after = new_data_rate(work)
    print(f"\n{args.dataset} ({dataset.files} files, scenario {args.scenario}, {dataset.megabytes:.0f} MB), transport {args.transport}, "
          f"medians of {args.repeat}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"{rate_line(pages_before, pages_after)}")  # fmt: skip
    print(table(samples))
    return 0


def table(samples: dict[str, list[RunStats]]) -> str:
    """Medians, and the best run of each tool: on this VM a run's writes may fault its pages in from the
    host or reuse ones just freed (bench/pages.py), which only ever adds time, so the best of several
    runs shows the tool's own cost where the median shows what a user meets."""
    rsync = samples["rsync"]
    rsync_wall, rsync_cpu = (
        statistics.median(s.wall_s for s in rsync),
        statistics.median(s.cpu_s for s in rsync),
    )
    rsync_best = min(s.wall_s for s in rsync)
    lines = [
        "| tool | wall s | local CPU-s | peak RSS MB | speed vs rsync | CPU vs rsync | best wall s | best vs rsync's best |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in samples.items():
        wall = statistics.median(r.wall_s for r in runs)
        cpu = statistics.median(r.cpu_s for r in runs)
        rss = statistics.median(r.maxrss_mb for r in runs)
        best = min(r.wall_s for r in runs)
        lines.append(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {rsync_wall / wall:.2f}× | {cpu / rsync_cpu:.2f}× "
            f"| {best:.2f} | {rsync_best / best:.2f}× |"
        )
    return "\n".join(lines)


class TransportEndpoint:
    """The sshd for `ssh` (loopback), `wan` or `lan`; nothing for `local`."""

    def __init__(self, transport: str, work: Path) -> None:
        self.transport, self.work = transport, work
        self._cm: Any = None

    def __enter__(self) -> Endpoint | None:
        if self.transport == "local":
            return None
        if self.transport == "wan":
            self._cm = wan_endpoint(LinkSpec())
        elif self.transport == "lan":
            self._cm = lan_endpoint()
        else:
            self._cm = loopback_endpoint(self.work / "sshd")
        endpoint: Endpoint = self._cm.__enter__()
        return endpoint

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


if __name__ == "__main__":
    raise SystemExit(main())
