"""Smoke test of the benchmark harness (bench/run.py) on tiny datasets: loopback, and BIG over a 5 ms link."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from bench.datasets import DatasetSpec, PngFactory, ensure_datasets
from bench.endpoints import loopback_endpoint, wan_endpoint
from bench.netem.wan import LinkSpec
from bench.pages import new_data_rate
from bench.plot import draw
from bench.run import Plan, render
from bench.scenarios import TOOLS, LinkResult, ScenarioParams, run_scenarios
from bench.tools import MediasyncdOptions

TINY = DatasetSpec(png=3, png_size=128, many=12, many_folders=3, many_kb=20, big=1, big_mb=1)
PARAMS = ScenarioParams(
    repeat=1,
    incremental=3,
    noop_passes=1,
    latency_files=2,
    cat_bytes=2_000_000,
    pings=5,
    timeout_s=60,
    mediasyncd=MediasyncdOptions(settle="0.2s", poll_interval="0.2s"),
)
WAN = LinkSpec(rtt_ms=5, rate_mbit=200)
NEEDS = ("gcc", "ip", "ssh", "rsync", "rclone", "/usr/sbin/sshd")

Run = tuple[str, list[LinkResult]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    missing = [tool for tool in NEEDS if not shutil.which(tool)]
    if os.geteuid() != 0 or not Path("/dev/net/tun").exists() or missing:
        pytest.fail(f"the benchmark needs root, /dev/net/tun and {', '.join(NEEDS)} (missing: {missing})")
    base = tmp_path_factory.mktemp("bench")
    started, load = time.time(), os.getloadavg()
    datasets = ensure_datasets(base / "data", TINY, lambda _: None)
    factory = PngFactory(TINY.png_size, random.Random(1), pool=2)
    results = []
    with loopback_endpoint(base / "sshd") as endpoint:
        results.append(run_scenarios(endpoint, datasets, PARAMS, factory, base / "loopback", lambda _: None))
    big = [d for d in datasets if d.name == "BIG"]
    with wan_endpoint(WAN) as endpoint:
        results.append(run_scenarios(endpoint, big, PARAMS, factory, base / "wan", lambda _: None))
    plan = Plan(TINY, PARAMS, (None, WAN))
    pages = (new_data_rate(base, mib=8), new_data_rate(base, mib=8))
    return render(plan, datasets, results, "smoke", started, load, pages, pages_mib=8), results


def _section(markdown: str, label: str) -> str:
    return markdown.split(f"### {label}\n", 1)[1].split("\n### ", 1)[0]


def _cells(section: str, figure: str, unit: str) -> list[str]:
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == [figure, unit]:
            return cells[3:]
    raise AssertionError(f"no row {figure!r} ({unit}) in:\n{section}")


def test_the_machine_lines_give_the_load_and_the_rate_of_new_memory(run: Run) -> None:
    markdown, _ = run
    assert re.search(r"^- Load average \(1/5/15 min\) at start [\d.]+ / ", markdown, re.M)
    assert re.search(
        r"^- New memory: writing 8 MiB .* [\d,]+ MB/s at the start, [\d,]+ MB/s at the end", markdown, re.M
    )


def test_every_link_has_a_table_with_every_tool_and_the_ratio(run: Run) -> None:
    """Each link's table has a column per tool plus mediasyncd's ratio to rsync."""
    markdown, results = run
    for r in results:
        header = next(
            line for line in _section(markdown, r.label).splitlines() if line.startswith("| figure")
        )
        assert [c.strip() for c in header.strip("|").split("|")][3:] == [*TOOLS, "mediasyncd / rsync"]


def test_initial_pull_figures_are_positive_for_every_tool(run: Run) -> None:
    """Every tool has an MB/s, a local and a machine CPU and a peak-RSS figure for every dataset, and a
    ratio."""
    markdown, results = run
    for r in results:
        section = _section(markdown, r.label)
        for name in r.datasets:
            for figure, unit in (
                ("initial pull", "MB/s"),
                ("local CPU", "CPU-s/GB"),
                ("machine CPU⁴", "CPU-s/GB"),
                ("peak RSS", "MB"),
            ):
                *values, ratio = _cells(section, f"{name} {figure}", unit)
                assert all(float(v.replace(",", "")) > 0 for v in values), (name, figure, values)
                assert re.fullmatch(r"\d+\.\d\d×", ratio)


def test_rates_are_consistent_and_within_the_link(run: Run) -> None:
    """MB/s and files/s agree with the dataset; nothing beats the emulated link's rate."""
    _, results = run
    for r in results:
        for name, data in r.datasets.items():
            for tool in TOOLS:
                seconds = r.median("full_s", name, tool)
                assert seconds is not None and seconds > 0
                if r.check.emulator_cpu_fraction is not None:  # the WAN link
                    assert data.bytes / seconds <= WAN.rate_mbit * 1e6 / 8


def test_machine_cpu_holds_the_tools_own(run: Run) -> None:
    """The whole machine's busy time during a pull includes the tool's own CPU (within a clock tick)."""
    _, results = run
    for r in results:
        for name in r.datasets:
            for tool in TOOLS:
                local = r.median("full_cpu_s", name, tool)
                machine = r.median("full_machine_cpu_s", name, tool)
                assert local is not None and machine is not None
                assert machine >= local - 0.05, (r.label, name, tool, local, machine)


def test_peak_rss_is_the_tools_own(run: Run) -> None:
    """rsync's peak RSS is its own few MB, not the harness's (which forked it)."""
    _, results = run
    rss = results[0].median("full_rss_mb", "BIG", "rsync")
    assert rss is not None and 1 < rss < 40


def test_daemon_figures_come_from_the_running_daemon(run: Run) -> None:
    """The nothing-new pass and close→landed latency are measured, and latency respects the settle time."""
    _, results = run
    loopback = results[0]
    noop = loopback.median("noop_s", "MANY", "mediasyncd")
    assert noop is not None and 0 < noop < 5
    latencies = loopback.samples[("latency_s", "MANY", "mediasyncd")]
    assert len(latencies) == PARAMS.latency_files
    assert all(0.15 < s < 10 for s in latencies)
    for tool in ("rsync", "rclone"):
        assert (incr := loopback.median("incr_s", "MANY", tool)) is not None and incr > 0
        assert (once := loopback.median("noop_s", "MANY", tool)) is not None and once > 0


def test_link_check_and_targets_are_reported(run: Run) -> None:
    """The WAN link check shows the configured RTT; the targets table lists the link's verdicts."""
    markdown, results = run
    wan = results[1]
    assert WAN.rtt_ms - 0.5 <= wan.check.ping_ms[1] <= WAN.rtt_ms + 3
    assert wan.check.ssh_cat_mb_s > 0 and wan.check.asyncssh_cat_mb_s > 0
    targets = markdown.split("### Targets (issue 5)", 1)[1]
    assert "| BIG ≥ 1.15 × rsync MB/s" in targets and "| PNG ≥ 0.8 × rsync MB/s | loopback" in targets


def test_plot_is_a_png_with_a_panel_per_link(run: Run, tmp_path: Path) -> None:
    """The plot is drawn for every link without error."""
    _, results = run
    draw(results, list(TOOLS), tmp_path / "plot.png")
    with Image.open(tmp_path / "plot.png") as image:
        assert image.format == "PNG" and image.height > 300 * len(results)


def test_perf_stat_output_is_read_as_bench_profile_counters_reads_it(tmp_path: Path) -> None:
    """`bench.profile --counters` reads `perf stat -x ,`; the real perf (scripts/setup --dev) writes it."""
    from bench.profile import COUNTERS, perf_csv

    out = tmp_path / "perf.txt"
    subprocess.run(["perf", "stat", "-x", ",", "-o", str(out), "-e", ",".join(COUNTERS), "--", "sleep", "0.05"],
                   check=True)  # fmt: skip
    got = perf_csv(out.read_text())
    assert set(got) == set(COUNTERS) and got["task-clock"] > 0 and got["context-switches"] >= 1
