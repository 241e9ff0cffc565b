"""The scenarios over one endpoint, every tool in the same run, repetitions interleaved.

For each repetition and dataset, the tools take turns (their order rotates between repetitions); each
pulls into an empty directory (initial full pull). On MANY each tool then goes on with the same
directory: a nothing-new run (mediasyncd: also `sync --once`, then `last_pass_s` of a running daemon's
polls and close→landed latency while that daemon watches) and an incremental run after +50 PNGs appear
in a new folder of MANY. `os.sync()` runs before every timed step so one tool's writeback does not
land on the next tool's clock.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.daemon import RunningDaemon, close_to_landed
from bench.datasets import Dataset, PngFactory, extra_dir, scan, tree_totals
from bench.endpoints import Endpoint
from bench.linkcheck import LinkCheck, check_link
from bench.tools import Mediasyncd, MediasyncdOptions, Rclone, Rsync, RunStats, Tool, ToolFailed
from mediasyncd.units import parse_duration

TOOLS = ("mediasyncd", "rsync", "rclone")


@dataclass(frozen=True)
class ScenarioParams:
    repeat: int = 3
    tools: tuple[str, ...] = TOOLS
    incremental: int = 50  # PNGs added to MANY
    noop_passes: int = 5  # daemon passes measured per repetition
    latency_files: int = 10  # per repetition (pooled over repetitions)
    cat_bytes: int = 200_000_000  # link check
    pings: int = 20  # link check
    timeout_s: float = 3600.0  # per tool run
    rclone_hashcheck: bool = False  # rclone's default md5sum exec per file (slow: see docs/benchmarks.md)
    mediasyncd: MediasyncdOptions = field(default_factory=MediasyncdOptions)


@dataclass
class LinkResult:
    """Raw samples for one endpoint: (figure, dataset, tool) -> values, plus the link check."""

    label: str
    check: LinkCheck
    datasets: dict[str, Dataset]
    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    latency_modes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # runs that failed: reported, not counted

    def add(self, figure: str, dataset: str, tool: str, value: float) -> None:
        self.samples.setdefault((figure, dataset, tool), []).append(value)

    def add_run(self, prefix: str, dataset: str, tool: str, stats: RunStats) -> None:
        self.add(f"{prefix}_s", dataset, tool, stats.wall_s)
        self.add(f"{prefix}_cpu_s", dataset, tool, stats.cpu_s)
        self.add(f"{prefix}_machine_cpu_s", dataset, tool, stats.machine_cpu_s)
        self.add(f"{prefix}_rss_mb", dataset, tool, stats.maxrss_mb)

    def median(self, figure: str, dataset: str, tool: str) -> float | None:
        values = self.samples.get((figure, dataset, tool))
        return statistics.median(values) if values else None


def run_scenarios(
    endpoint: Endpoint,
    datasets: list[Dataset],
    params: ScenarioParams,
    factory: PngFactory,
    scratch: Path,
    say: Callable[[str], None],
) -> LinkResult:
    say(f"[{endpoint.label}] link check")
    result = LinkResult(
        endpoint.label, check_link(endpoint, params.cat_bytes, params.pings), {d.name: d for d in datasets}
    )
    rng = random.Random(5)
    for i in range(params.repeat):
        order = params.tools[i % len(params.tools) :] + params.tools[: i % len(params.tools)]
        for data in datasets:
            for name in order:
                work = scratch / f"{data.name}-{name}-{i}"
                shutil.rmtree(work, ignore_errors=True)
                tool = _make_tool(name, endpoint, data.root, work, params)
                try:
                    os.sync()
                    stats = tool.pull(params.timeout_s)
                    _expect(tool, data.files, data.bytes)
                    result.add_run("full", data.name, name, stats)
                    say(
                        f"[{endpoint.label}] #{i + 1} {data.name} {name}: {stats.wall_s:.2f} s, "
                        f"{data.megabytes / stats.wall_s:.1f} MB/s, {data.files / stats.wall_s:.0f} files/s"
                    )
                    if data.name == "MANY":
                        _follow_ups(tool, data, params, factory, result, rng, say)
                except ToolFailed as failure:
                    # One failed run must not end a run of an hour; its figures stay out of the medians
                    # and the failure is printed with the tables.
                    result.failures.append(f"#{i + 1} {data.name} {name}: {failure}")
                    say(f"[{endpoint.label}] #{i + 1} {data.name} {name}: FAILED: {failure}")
                finally:
                    shutil.rmtree(work, ignore_errors=True)
    return result


def _make_tool(name: str, endpoint: Endpoint, source: Path, work: Path, params: ScenarioParams) -> Tool:
    if name == "mediasyncd":
        return Mediasyncd(endpoint, source, work, params.mediasyncd)
    if name == "rsync":
        return Rsync(endpoint, source, work)
    if name == "rclone":
        return Rclone(endpoint, source, work, params.rclone_hashcheck)
    raise ValueError(f"unknown tool {name!r}")


def _follow_ups(
    tool: Tool,
    many: Dataset,
    params: ScenarioParams,
    factory: PngFactory,
    result: LinkResult,
    rng: random.Random,
    say: Callable[[str], None],
) -> None:
    """Nothing-new, the daemon's passes and latency (mediasyncd), then the incremental run, on MANY."""
    os.sync()
    stats = tool.pull(params.timeout_s)
    result.add_run("noop_once" if isinstance(tool, Mediasyncd) else "noop", many.name, tool.name, stats)
    if isinstance(tool, Mediasyncd):
        _daemon_follow_ups(tool, many, params, factory, result, rng, say)

    folder = extra_dir(many, "9999-incremental")
    try:
        for j in range(params.incremental):
            factory.write(folder, j)
        added = scan("incremental", folder)
        os.sync()
        stats = tool.pull(params.timeout_s)
        landed = tree_totals(tool.dest / folder.relative_to(many.root))
        if landed != (added.files, added.bytes):
            raise ToolFailed(f"{tool.name}: incremental landed {landed}, expected {added.files, added.bytes}")
        result.add_run("incr", many.name, tool.name, stats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    noop = result.samples[("noop_once_s" if isinstance(tool, Mediasyncd) else "noop_s", "MANY", tool.name)]
    say(
        f"[{result.label}] MANY {tool.name}: nothing-new {noop[-1]:.2f} s, +{added.files}: {stats.wall_s:.2f} s"
    )


def _daemon_follow_ups(
    tool: Mediasyncd,
    many: Dataset,
    params: ScenarioParams,
    factory: PngFactory,
    result: LinkResult,
    rng: random.Random,
    say: Callable[[str], None],
) -> None:
    folder = extra_dir(many, "9999-latency")
    try:
        with RunningDaemon(tool) as daemon:
            passes = daemon.pass_times(params.noop_passes, timeout_s=params.timeout_s)
            result.add("noop_s", many.name, tool.name, statistics.median(passes))
            landed = tool.dest / folder.relative_to(many.root)
            gap = parse_duration(params.mediasyncd.poll_interval)
            for mode, seconds, size in close_to_landed(
                folder, landed, factory, params.latency_files, gap, rng
            ):
                result.add("latency_s", many.name, tool.name, seconds)
                result.add("latency_bytes", many.name, tool.name, size)
                result.latency_modes.append(mode)
            stats = daemon.stop()
        result.add("daemon_cpu_s", many.name, tool.name, stats.cpu_s)
        result.add("daemon_rss_mb", many.name, tool.name, stats.maxrss_mb)
        lat = result.samples[("latency_s", many.name, tool.name)][-params.latency_files :]
        say(
            f"[{result.label}] MANY mediasyncd daemon: passes {', '.join(f'{p:.3f}' for p in passes)} s; "
            f"close→landed median {statistics.median(lat) * 1e3:.0f} ms"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _expect(tool: Tool, files: int, nbytes: int) -> None:
    got = tree_totals(tool.dest)
    if got != (files, nbytes):
        raise ToolFailed(f"{tool.name} pulled {got[0]} files / {got[1]} bytes, expected {files} / {nbytes}")
