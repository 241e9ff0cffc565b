"""Agent mode against poll mode: close→landed latency and what an idle tree costs, over the emulated link.

    sudo .venv/bin/python -m bench.agent_bench [--tree 20000] [--files 20] [--idle-s 60] [--links wan,loopback]

For each link and each watch mode, `mediasyncd run` watches a remote tree of `--tree` small files that the
include globs leave out (they are listed, never pulled: the idle cost is the listing's), then
  - idle: bytes the remote sent over the link (the netns's interface counters; WAN only) and the
    daemon's CPU over `--idle-s` seconds, scaled to an hour;
  - latency: `--files` PNGs written one at a time (plain write or *.tmp + rename), close→landed.
The results replace the section between the agent-bench markers in docs/benchmarks.md (`--no-doc`: print).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.daemon import RunningDaemon, close_to_landed
from bench.datasets import PngFactory
from bench.endpoints import Endpoint, loopback_endpoint, wan_endpoint
from bench.netem.wan import LinkSpec
from bench.tools import Mediasyncd, MediasyncdOptions, ToolFailed
from tests.procs import subtree

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- agent-bench:start -->", "<!-- agent-bench:end -->"
MODES = ("poll", "agent")


@dataclass
class ModeResult:
    link: str
    mode: str
    latencies: list[float] = field(default_factory=list)
    idle_bytes_per_h: float | None = None
    idle_cpu_pct: float = 0.0


def build_tree(root: Path, files: int, folders: int = 170) -> None:
    """`files` tiny files in dated folders, named *.dat: listed by the daemon, never pulled."""
    for i in range(files):
        folder = root / f"2026-11-{i % folders:03d}"
        if i < folders:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.dat").write_bytes(b"x")


def netns_tx_bytes(endpoint: Endpoint) -> int | None:
    """Bytes the remote's namespace sent out (every interface but lo), or None on loopback."""
    if endpoint.wan is None:
        return None
    out = subprocess.run(
        endpoint.wan.netns_command("cat", "/proc/net/dev"), capture_output=True, text=True, check=True
    ).stdout
    total = 0
    for line in out.splitlines()[2:]:
        name, _, data = line.partition(":")
        if name.strip() != "lo":
            total += int(data.split()[8])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and every live process below it (rusage_exec runs the daemon as its
    child)."""
    total = 0.0
    for current in [pid, *subtree(pid)]:
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(endpoint: Endpoint, mode: str, args: argparse.Namespace, work: Path) -> ModeResult:
    result = ModeResult(endpoint.label, mode)
    source = work / "remote"
    build_tree(source, args.tree)
    latency_dir = source / "latency"
    latency_dir.mkdir()
    options = MediasyncdOptions(
        settle="1s", poll_interval=args.poll_interval, watch=mode, overrides=(("remote.include", ["*.png"]),)
    )
    tool = Mediasyncd(endpoint, source, work / "tool", options)
    with RunningDaemon(tool) as daemon:
        deadline = time.monotonic() + 120
        while True:
            r = daemon.remote_status()
            if r.get("watch_mode") == mode and r.get("last_pass_at"):
                break
            if time.monotonic() > deadline:
                raise ToolFailed(f"{mode}: the daemon did not settle into {mode} mode: {r}")
            time.sleep(0.2)
        time.sleep(2)
        assert daemon.child is not None
        pid = daemon.child.proc.pid
        tx0, cpu0, t0 = netns_tx_bytes(endpoint), cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_s)
        tx1, cpu1, t1 = netns_tx_bytes(endpoint), cpu_seconds(pid), time.monotonic()
        if tx0 is not None and tx1 is not None:
            result.idle_bytes_per_h = (tx1 - tx0) / (t1 - t0) * 3600
        result.idle_cpu_pct = (cpu1 - cpu0) / (t1 - t0) * 100
        rng = random.Random(14)
        factory = PngFactory(args.png_size, rng)
        landed = tool.dest / "latency"
        for _how, seconds, _size in close_to_landed(latency_dir, landed, factory, args.files, 1.0, rng):
            result.latencies.append(seconds)
    return result


@contextmanager
def endpoint_for(link: str, work: Path, spec: LinkSpec) -> Iterator[Endpoint]:
    if link == "wan":
        with wan_endpoint(spec) as endpoint:
            yield endpoint
    else:
        with loopback_endpoint(work / "sshd") as endpoint:
            yield endpoint


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(results: list[ModeResult], args: argparse.Namespace) -> str:
    lines = [
        START,
        "## Agent mode against poll mode (issue 14)",
        "",
        f"Written by `sudo .venv/bin/python -m bench.agent_bench --tree {args.tree} --files {args.files} "
        f"--idle-s {args.idle_s:g}` on {time.strftime('%Y-%m-%d', time.gmtime())}: `mediasyncd run` watching a "
        f'tree of {args.tree:,} files the globs leave out, poll with `poll_interval = "{args.poll_interval}"`, '
        f'`settle = "1s"`; {args.files} PNGs of {args.png_size} px written one at a time (plain write or '
        "`*.tmp` + rename). Idle bytes: what the remote's network namespace sent over the link while nothing "
        "changed (WAN only), per hour; idle CPU: the daemon's, in % of one core.",
        "",
        "| link | watch | close→landed p50 | p95 | max | idle bytes/hour | idle CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        idle = f"{r.idle_bytes_per_h / 1e6:.2f} MB" if r.idle_bytes_per_h is not None else "—"
        lines.append(
            f"| {r.link} | {r.mode} | {statistics.median(r.latencies):.3f} s | {p95(r.latencies):.3f} s | "
            f"{max(r.latencies):.3f} s | {idle} | {r.idle_cpu_pct:.2f} % |"
        )
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_doc(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.agent_bench", description=__doc__.splitlines()[0])
    p.add_argument("--tree", type=int, default=20_000, help="files in the idle tree (default 20000)")
    p.add_argument("--files", type=int, default=20, help="close→landed PNGs per link and mode (default 20)")
    p.add_argument("--idle-s", type=float, default=60.0, help="idle measurement, seconds (default 60)")
    p.add_argument("--png-size", type=int, default=1024, help="PNG width and height (default 1024, ~1.7 MB)")
    p.add_argument("--poll-interval", default="1s", help="poll mode's poll_interval (default 1s)")
    p.add_argument("--links", default="wan,loopback", help="comma-separated: wan, loopback")
    p.add_argument("--rtt-ms", type=float, default=40.0)
    p.add_argument("--rate-mbit", type=float, default=200.0)
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-doc", action="store_true", help="print the section only")
    args = p.parse_args(argv)
    spec = LinkSpec(rtt_ms=args.rtt_ms, rate_mbit=args.rate_mbit)
    results = []
    for link in args.links.split(","):
        for mode in MODES:
            with ExitStack() as stack:
                work = Path(tempfile.mkdtemp(prefix="mediasyncd-agent-bench-", dir="/var/tmp"))
                stack.callback(shutil.rmtree, work, True)
                endpoint = stack.enter_context(endpoint_for(link, work, spec))
                print(f"[{link}] {mode} ...", file=sys.stderr, flush=True)
                result = measure(endpoint, mode, args, work)
                print(
                    f"[{link}] {mode}: close→landed p50 {statistics.median(result.latencies):.3f} s, "
                    f"idle {result.idle_bytes_per_h} B/h, CPU {result.idle_cpu_pct:.2f} %",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
    section = report(results, args)
    print(section)
    if not args.no_doc:
        write_doc(args.doc, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
