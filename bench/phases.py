"""Where the wall time of one `sync --once` goes, phase by phase, for revisions side by side (issue 21).

    sudo .venv/bin/python -m bench.phases --rev 5f031d4 --rev HEAD --scenario noop --repeat 7
    sudo .venv/bin/python -m bench.phases --rev 5f031d4 --rev HEAD --scenario incremental

Set up as `bench.ab --scenario noop|incremental` (bench/ab_followups.py: MANY over the loopback sshd, each
revision's library primed once), but each run happens in a child that wraps a few of the revision's
own methods to note when they start and end (nothing else changes; the marks cost microseconds):

    start + imports       exec of the interpreter until the CLI, `sync --once` and the SSH source are imported
    config, state DB      until the connection starts (config, logging, lock, state DB, diff base)
    connect + auth        the SSH handshake and authentication
    remote session(s)     the command channel (and the SFTP session where it starts with it) and the probe
    listing               `find` over the command channel, parsed
    diff                  the Ledger's admit: the listing against the state DB
    transfer, verify, land  the rest of the session (nothing for a nothing-new pass)
    close                 source and state DB closed, the report printed
    exit                  main() returned until the process is gone

Medians per phase over the repetitions (the order of the revisions rotates each repetition).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.ab_followups import Kept
from bench.datasets import ensure_datasets
from bench.endpoints import loopback_endpoint
from bench.profile import PROFILE_SPEC, profile_spec
from bench.tools import Mediasyncd, MediasyncdOptions, export_revision, resolve_revision

CHILD = r"""
import atexit, json, sys, time
marks = {}
def mark(name):
    marks[name] = time.time()
from mediasyncd import cli
import mediasyncd.sync_once
from mediasyncd.sources.ssh import source as ssh
from mediasyncd.state import Store
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.transfer.session import Session
mark("imported")
def wrap(owner, name, label):
    original = getattr(owner, name)
    async def timed(*args, **kwargs):
        marks.setdefault(label + ".start", time.time())
        try:
            return await original(*args, **kwargs)
        finally:
            marks[label + ".end"] = time.time()
    setattr(owner, name, timed)
wrap(ssh, "connect", "connect")
wrap(ssh.SshSource, "start", "sessions")
wrap(ssh.SshSource, "list_roots", "listing")
wrap(Ledger, "admit", "diff")
wrap(Session, "run", "session")
main = cli.main
def marked_main(argv=None, **kwargs):
    try:
        return main(argv, **kwargs)
    finally:
        mark("main_returned")
cli.main = marked_main
def save(path=sys.argv[1]):
    with open(path, "w") as out:
        json.dump(marks, out)
atexit.register(save)
sys.argv = ["mediasyncd", *sys.argv[2:]]
entry = getattr(cli, "entry", None)  # the process as the console script runs it, where there is one
if entry is not None:
    entry()
sys.exit(cli.main())
"""

PHASES = (
    ("start + imports", "exec", "imported"),
    ("config, state DB, diff base", "imported", "connect.start"),
    ("connect + auth", "connect.start", "connect.end"),
    ("remote session(s) + probe", "sessions.start", "sessions.end"),
    ("listing", "listing.start", "listing.end"),
    ("diff", "diff.start", "diff.end"),
    ("transfer, verify, land", "diff.end", "session.end"),
    ("close", "session.end", "main_returned"),
    ("exit", "main_returned", "gone"),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", action="append", required=True, help="a mediasyncd commit (repeat: A, B, ...)")
    p.add_argument("--scenario", default="noop", choices=["noop", "incremental"])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument(
        "--many", type=int, default=PROFILE_SPEC.many, help="~100 KB files known (bench.run: 20000)"
    )
    p.add_argument(
        "--png-size",
        type=int,
        default=512,
        help="side of the incremental run's PNGs (512: ~460 KB; bench.run's 1024: ~1.7 MB)",
    )
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/profile-data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    return p.parse_args(argv)


def timed_pull(tool: Mediasyncd, work: Path) -> dict[str, float]:
    """One `sync --once` of `tool` in the marking child; the marks, in seconds from the exec."""
    marks_file = work / "marks.json"
    argv = [sys.executable, "-P", "-c", CHILD, str(marks_file), "sync", "--once", "--no-progress"]
    argv += ["--config", str(tool.config), "--log-level", "warning"]
    started = time.time()
    subprocess.run(argv, check=True, env=os.environ | (tool.options.env() or {}), stdout=subprocess.DEVNULL)
    gone = time.time()
    marks: dict[str, float] = json.loads(marks_file.read_text())
    return {"exec": 0.0, "gone": gone - started, **{k: v - started for k, v in marks.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = profile_spec(many=args.many)
    dataset = next(d for d in ensure_datasets(args.data_dir, spec) if d.name == "MANY")
    args.scratch.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    phases: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="phases-", dir=args.scratch) as tmp:
        work = Path(tmp)
        tools: dict[str, MediasyncdOptions | None] = {}
        for i, rev in enumerate(args.rev):
            commit = resolve_revision(rev).commit
            tools[f"{chr(ord('A') + i)} {rev} ({commit[:10]})"] = MediasyncdOptions(
                source=export_revision(commit, work / f"src-{i}")
            )
        with loopback_endpoint(work / "sshd") as endpoint:
            kept = Kept(tools, dataset, endpoint, work, timeout_s=900.0, png_size=args.png_size)
            kept.prime(print)
            names = list(tools)
            for rep in range(args.repeat):
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    tool = kept.tools[name]
                    assert isinstance(tool, Mediasyncd)
                    marks = kept.around(args.scenario, name, functools.partial(timed_pull, tool, work))
                    row = phases.setdefault(name, {})
                    for label, a, b in PHASES:
                        if a in marks and b in marks:
                            row.setdefault(label, []).append(marks[b] - marks[a])
                    row.setdefault("whole process", []).append(marks["gone"])
                    print(f"#{rep + 1} {name}: {marks['gone']:.3f} s", flush=True)
    print(f"\n{args.scenario} over MANY ({dataset.files} files), loopback, medians of {args.repeat}, in ms; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
    names = list(phases)
    print("| phase | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for label in [p[0] for p in PHASES] + ["whole process"]:
        cells = [statistics.median(phases[n][label]) * 1000 if label in phases[n] else None for n in names]
        print(f"| {label} | " + " | ".join("–" if c is None else f"{c:.0f}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
