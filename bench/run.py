"""mediasyncd vs `rsync -a` vs `rclone copy` over the same real sshd: a 40 ms / 200 Mbit/s WAN link and loopback.

    .venv/bin/python -m bench.run            # full run: issue-5 datasets, 3 repetitions (see docs/benchmarks.md)
    .venv/bin/python -m bench.run --quick    # ~8 minutes: small datasets, same scenarios
    .venv/bin/python -m bench.run --lan      # also the LAN case: an unshaped veth pair into the sshd's netns

Generates (or reuses) the datasets, then per link: checks the link (ping, raw ssh `cat`), runs every
scenario for every tool with repetitions interleaved, and writes the Markdown section of
docs/benchmarks.md and its plot (docs/benchmarks.png). Needs root (network namespaces, TUN, sshd).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.datasets import Dataset, DatasetSpec, PngFactory, ensure_datasets
from bench.endpoints import Endpoint, lan_endpoint, loopback_endpoint, wan_endpoint
from bench.netem.wan import LinkSpec
from bench.pages import MIB, new_data_rate, rate_line
from bench.plot import draw
from bench.report import link_check_line, link_table, machine_lines, samples_line, targets, write_section
from bench.scenarios import TOOLS, LinkResult, ScenarioParams, run_scenarios
from bench.tools import (
    MediasyncdOptions,
    Revision,
    compile_bytecode,
    export_revision,
    parse_override,
    resolve_revision,
)

REPO = Path(__file__).resolve().parent.parent
LAN = "lan"
QUICK = DatasetSpec(png=50, many=1000, many_folders=9, big=1, big_mb=50)


@dataclass(frozen=True)
class Plan:
    spec: DatasetSpec
    params: ScenarioParams
    links: tuple[LinkSpec | str | None, ...]  # None: loopback; LAN: the veth pair
    mediasyncd_rev: Revision | None = None  # benchmark this commit of mediasyncd/, not the working tree


@dataclass(frozen=True)
class Outcome:
    markdown: str
    results: list[LinkResult]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small datasets (about 8 minutes)")
    d = DatasetSpec()
    p.add_argument("--png", type=int, help=f"PNG files (default {d.png}; quick {QUICK.png})")
    p.add_argument("--png-size", type=int, help=f"PNG width and height (default {d.png_size})")
    p.add_argument("--many", type=int, help=f"MANY files (default {d.many}; quick {QUICK.many})")
    p.add_argument("--many-folders", type=int, help=f"MANY folders (default {d.many_folders})")
    p.add_argument("--big", type=int, help=f"BIG files (default {d.big}; quick {QUICK.big})")
    p.add_argument("--big-mb", type=int, help=f"size of each BIG file in MB (default {d.big_mb})")
    p.add_argument("--repeat", type=int, default=3, help="repetitions, interleaved (default 3)")
    p.add_argument(
        "--links", default="wan,loopback", help="comma-separated: wan, loopback, lan (default wan,loopback)"
    )
    p.add_argument("--lan", action="store_true", help="add the lan link (an unshaped veth pair into a netns)")
    p.add_argument("--rtt-ms", type=float, default=40.0)
    p.add_argument("--rate-mbit", type=float, default=200.0)
    p.add_argument(
        "--queue-bdp",
        type=float,
        nargs="+",
        default=[1.0],
        help="WAN queue(s) in BDP, one link each (default 1)",
    )
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ", ".join(TOOLS))
    p.add_argument("--noop-passes", type=int, default=5, help="daemon passes per repetition (default 5)")
    p.add_argument(
        "--latency-files", type=int, help="close→landed files per repetition (default 10; quick 7)"
    )
    p.add_argument(
        "--rclone-hashcheck",
        action="store_true",
        help="let rclone run `md5sum` on the remote per file (its default; several times slower on MANY)",
    )
    p.add_argument("--cat-mb", type=int, help="bytes for the raw-channel link check (default 200; quick 50)")
    p.add_argument("--settle", default="1s", help="mediasyncd settle (default 1s)")
    p.add_argument("--poll-interval", default="1s", help="mediasyncd poll_interval (default 1s)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="extra mediasyncd config, e.g. transfer.concurrency=32 (remote.KEY: the remote's table)",
    )
    p.add_argument(
        "--mediasyncd-rev",
        metavar="REV",
        help="benchmark mediasyncd/ as committed at REV (git archive; PYTHONPATH) instead of the working tree",
    )
    p.add_argument("--data-dir", type=Path, default=Path("/var/tmp/mediasyncd-bench/data"))
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp/mediasyncd-bench"))
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown to update")
    p.add_argument("--no-doc", action="store_true", help="print the section only")
    p.add_argument("--json", type=Path, help="also write the raw samples here")
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    base = QUICK if args.quick else DatasetSpec()
    spec = DatasetSpec(
        png=args.png if args.png is not None else base.png,
        png_size=args.png_size or base.png_size,
        many=args.many if args.many is not None else base.many,
        many_folders=args.many_folders or base.many_folders,
        big=args.big if args.big is not None else base.big,
        big_mb=args.big_mb or base.big_mb,
    )
    options = MediasyncdOptions(
        settle=args.settle,
        poll_interval=args.poll_interval,
        overrides=tuple(parse_override(o) for o in args.overrides),
    )
    params = ScenarioParams(
        repeat=args.repeat,
        tools=tuple(t.strip() for t in args.tools.split(",") if t.strip()),
        noop_passes=args.noop_passes,
        latency_files=args.latency_files or (7 if args.quick else 10),
        cat_bytes=(args.cat_mb or (50 if args.quick else 200)) * 1_000_000,
        mediasyncd=options,
        rclone_hashcheck=args.rclone_hashcheck,
    )
    links: list[LinkSpec | str | None] = []
    names = [n.strip() for n in args.links.split(",")] + (["lan"] if args.lan else [])
    for name in dict.fromkeys(names):
        if name == "wan":
            links += [LinkSpec(args.rtt_ms, args.rate_mbit, q) for q in args.queue_bdp]
        elif name == "loopback":
            links.append(None)
        elif name == "lan":
            links.append(LAN)
        else:
            raise SystemExit(f"unknown link {name!r} (wan, loopback, lan)")
    rev = resolve_revision(args.mediasyncd_rev) if args.mediasyncd_rev else None
    return Plan(spec, params, tuple(links), rev)


@contextlib.contextmanager
def endpoint_for(link: LinkSpec | str | None, scratch: Path) -> Iterator[Endpoint]:
    if link == LAN:
        with lan_endpoint() as endpoint:
            yield endpoint
    elif link is None:
        with loopback_endpoint(scratch / "sshd") as endpoint:
            yield endpoint
    else:
        assert isinstance(link, LinkSpec)
        with wan_endpoint(link) as endpoint:
            yield endpoint


def run(
    plan: Plan, data_dir: Path, scratch_parent: Path, command: str, say: Callable[[str], None]
) -> Outcome:
    """Everything but writing files: datasets, every link's scenarios, the Markdown section."""
    started, load_before = time.time(), os.getloadavg()
    datasets = [d for d in ensure_datasets(data_dir, plan.spec, say) if d.files]
    scratch_parent.mkdir(parents=True, exist_ok=True)
    pages_before = new_data_rate(scratch_parent)
    factory = PngFactory(plan.spec.png_size, random.Random(11), pool=8)
    results: list[LinkResult] = []
    with tempfile.TemporaryDirectory(prefix="work-", dir=scratch_parent) as tmp:
        params = plan.params
        if plan.mediasyncd_rev:
            source = export_revision(plan.mediasyncd_rev.commit, Path(tmp) / "mediasyncd-src")
            params = replace(params, mediasyncd=replace(params.mediasyncd, source=source))
        else:
            compile_bytecode()
        for link in plan.links:
            scratch = Path(tmp) / f"link-{len(results)}"
            scratch.mkdir()
            with endpoint_for(link, scratch) as endpoint:
                results.append(run_scenarios(endpoint, datasets, params, factory, scratch, say))
        pages = (pages_before, new_data_rate(Path(tmp)))
    markdown = render(plan, datasets, results, command, started, load_before, pages)
    return Outcome(markdown, results)


def render(
    plan: Plan,
    datasets: list[Dataset],
    results: list[LinkResult],
    command: str,
    started: float,
    load_before: tuple[float, float, float],
    pages: tuple[float, float] | None = None,
    pages_mib: int = MIB,
) -> str:
    tools = list(plan.params.tools)
    p = plan.params
    load_after = os.getloadavg()
    rclone_flags = "" if p.rclone_hashcheck else " --sftp-disable-hashcheck"
    lines = [
        f"## Latest run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}",
        "",
        f"- Command: `{command}` ({(time.time() - started) / 60:.0f} min)",
        *machine_lines(plan.mediasyncd_rev),
        f"- Load average (1/5/15 min) at start {_load(load_before)}, at end {_load(load_after)} "
        "(the machine is shared with other work)",
        *([f"- New memory: {rate_line(*pages, mib=pages_mib)}"] if pages else []),
        f"- Repetitions: {p.repeat}, tools interleaved (order rotated each repetition); medians. mediasyncd: "
        f"default [transfer] settings{_overrides(p.mediasyncd)}, `[pipeline] enabled = false`, "
        f'`poll_interval = "{p.mediasyncd.poll_interval}"`, `settle = "{p.mediasyncd.settle}"`; rsync `-a`; '
        f"rclone `copy --transfers 16{rclone_flags}` (sftp backend).",
        "",
        "| dataset | files | MB | average file |",
        "|---|---:|---:|---:|",
        *(
            f"| {d.name} | {d.files:,} | {d.megabytes:,.0f} | {d.bytes / d.files / 1e3:,.0f} KB |"
            for d in datasets
        ),
        "",
    ]
    for r in results:
        lines += [f"### {r.label}", "", link_check_line(r), "", *link_table(r, tools), ""]
        if r.failures:
            lines += ["**Failed runs** (left out of the medians):", "", *(f"- {f}" for f in r.failures), ""]
        lat = r.samples.get(("latency_s", "MANY", "mediasyncd"))
        if lat:
            lines.append(
                f"close→landed samples (s, {len(lat)} files, plain write and rename alternating): "
                + samples_line(lat)
            )
            lines.append("")
    lines += [
        "¹ mediasyncd: median `last_pass_s` of a running `mediasyncd run` (its already-open connection), "
        f"{p.noop_passes} passes per repetition after the first; rsync and rclone: a whole no-op run.  ",
        "² mediasyncd's whole no-op `sync --once` (process start, connect, list, diff), for comparison.  ",
        f"³ `mediasyncd run` watching MANY: a PNG{_mean_mb(results)} is written on the remote side (plain write, or "
        "write to a temp name and rename), one at a time at random phases of the poll cycle; the clock "
        "starts at close (or rename) and stops when the verified file is in the library.  ",
        "⁴ Busy time of all of this machine's CPUs during the pull (`/proc/stat`), per GB: the tool and the "
        "remote side (sshd, `sftp-server` or rsync, the remote's hash commands), and on the WAN the link "
        "emulator, which all share these cores. Other work on the machine adds to it.",
        "",
        "Local CPU: user + system seconds of the tool's process tree on this side (rusage via "
        "bench/rusage_exec.c; rsync's includes its `ssh`), per GB pulled. RSS: the largest process's peak "
        "(rsync runs two processes and `ssh`).",
        "",
        "### Targets (issue 5)",
        "",
        *targets(results),
        "",
        "![mediasyncd, rsync and rclone relative to rsync, per link](benchmarks.png)",
    ]
    return "\n".join(lines) + "\n"


def _mean_mb(results: list[LinkResult]) -> str:
    sizes = [s for r in results for s in r.samples.get(("latency_bytes", "MANY", "mediasyncd"), [])]
    return f" (mean {sum(sizes) / len(sizes) / 1e6:.2f} MB)" if sizes else ""


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def _overrides(options: MediasyncdOptions) -> str:
    if not options.overrides:
        return ""
    return " plus " + ", ".join(f"`{k} = {v!r}`" for k, v in options.overrides)


def samples_json(results: list[LinkResult]) -> dict[str, object]:
    return {
        r.label: {
            "check": r.check.__dict__,
            "samples": {"/".join(k): v for k, v in r.samples.items()},
            "datasets": {n: {"files": d.files, "bytes": d.bytes} for n, d in r.datasets.items()},
            "failures": r.failures,
        }
        for r in results
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_from(args)
    if os.geteuid() != 0 and any(link is not None for link in plan.links):
        print("the WAN link needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    shown = ["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]
    command = shlex.join([".venv/bin/python", *shown[1:]])

    def say(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    outcome = run(plan, args.data_dir, args.scratch, command, say)
    print(outcome.markdown)
    if args.json:
        args.json.write_text(json.dumps(samples_json(outcome.results), indent=1))
    if not args.no_doc:
        draw(outcome.results, list(plan.params.tools), args.doc.with_suffix(".png"))
        write_section(args.doc, outcome.markdown)
        say(f"wrote {args.doc} and {args.doc.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
