"""Markdown from the samples: machine and link details, one table per link, the issue-5 targets.

Every number printed here is computed from the run's samples (medians over repetitions); nothing is typed
in by hand. `write_section` replaces the generated part of docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bench.scenarios import LinkResult
from bench.tools import REPO, Revision, tool_versions

BEGIN = "<!-- bench/run.py: generated section begins; do not edit by hand -->"
END = "<!-- bench/run.py: generated section ends -->"
DATASET_ORDER = ("PNG", "MANY", "BIG")


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    higher_is_better: bool
    values: dict[str, float | None]  # tool -> value


def link_rows(r: LinkResult, tools: Iterable[str]) -> list[Row]:
    tools = list(tools)
    rows: list[Row] = []
    for name in DATASET_ORDER:
        data = r.datasets.get(name)
        if data is None:
            continue
        full = {t: r.median("full_s", name, t) for t in tools}
        rows.append(Row(f"{name} initial pull", "MB/s", True, _per(data.megabytes, full)))
        rows.append(Row(f"{name} initial pull", "files/s", True, _per(data.files, full)))
        cpu = {t: r.median("full_cpu_s", name, t) for t in tools}
        rows.append(Row(f"{name} local CPU", "CPU-s/GB", False, _per_gb(cpu, data.bytes)))
        machine = {t: r.median("full_machine_cpu_s", name, t) for t in tools}
        rows.append(Row(f"{name} machine CPU⁴", "CPU-s/GB", False, _per_gb(machine, data.bytes)))
        rss = {t: r.median("full_rss_mb", name, t) for t in tools}
        rows.append(Row(f"{name} peak RSS", "MB", False, rss))
    if "MANY" in r.datasets:
        noop = {t: r.median("noop_s", "MANY", t) for t in tools}
        rows.append(Row("MANY nothing-new pass¹", "s", False, noop))
        once = {t: r.median("noop_once_s", "MANY", t) if t == "mediasyncd" else None for t in tools}
        rows.append(Row("MANY nothing-new, whole `sync --once`²", "s", False, once))
        incr = {t: r.median("incr_s", "MANY", t) for t in tools}
        rows.append(Row("MANY incremental (+50 PNGs)", "s", False, incr))
        lat = r.samples.get(("latency_s", "MANY", "mediasyncd"), [])
        for label, q in (("p50", 50), ("p95", 95)):
            value = percentile(lat, q) * 1e3 if lat else None
            rows.append(Row(f"close→landed {label}³", "ms", False, _only("mediasyncd", value, tools)))
        daemon_rss = r.median("daemon_rss_mb", "MANY", "mediasyncd")
        rows.append(
            Row(
                "daemon peak RSS (MANY synced, watching)", "MB", False, _only("mediasyncd", daemon_rss, tools)
            )
        )
    return rows


def _per(amount: float, seconds: dict[str, float | None]) -> dict[str, float | None]:
    return {t: amount / s if s else None for t, s in seconds.items()}


def _per_gb(cpu: dict[str, float | None], nbytes: int) -> dict[str, float | None]:
    return {t: c / (nbytes / 1e9) if c is not None else None for t, c in cpu.items()}


def _only(tool: str, value: float | None, tools: list[str]) -> dict[str, float | None]:
    return {t: value if t == tool else None for t in tools}


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(row: Row) -> float | None:
    m, r = row.values.get("mediasyncd"), row.values.get("rsync")
    return m / r if m is not None and r else None


def link_table(r: LinkResult, tools: list[str]) -> list[str]:
    head = "| figure | unit | | " + " | ".join(tools) + " | mediasyncd / rsync |"
    lines = [head, "|" + "---|" * 3 + "---:|" * (len(tools) + 1)]
    for row in link_rows(r, tools):
        q = ratio(row)
        arrow = "↑" if row.higher_is_better else "↓"
        cells = " | ".join(fmt(row.values.get(t)) for t in tools)
        lines.append(
            f"| {row.figure} | {row.unit} | {arrow} | {cells} | {'—' if q is None else f'{q:.2f}×'} |"
        )
    return lines


def link_check_line(r: LinkResult) -> str:
    c = r.check
    text = (
        f"Link check: ICMP ping min/median/max {c.ping_ms[0]:.2f} / {c.ping_ms[1]:.2f} / {c.ping_ms[2]:.2f} ms; "
        f"raw channel `ssh … 'cat /dev/zero'` over {c.cat_bytes / 1e6:.0f} MB: OpenSSH "
        f"**{c.ssh_cat_mb_s:.1f} MB/s**, asyncssh (aes128-gcm) **{c.asyncssh_cat_mb_s:.1f} MB/s**"
    )
    if c.emulator_cpu_fraction is not None:
        text += f"; linkem used {c.emulator_cpu_fraction * 100:.0f} % of a core during the OpenSSH cat"
    return text + "."


def ratio_text(q: float, threshold: float) -> str:
    """`q` as "1.23×"; with a third decimal when two would round it onto `threshold` (0.797 is not 0.80)."""
    return f"{q:.3f}×" if round(q, 2) == round(threshold, 2) and q != threshold else f"{q:.2f}×"


def targets(results: list[LinkResult]) -> list[str]:
    """The issue-5 targets that this harness measures, each with its figure and verdict."""
    lines = ["| target | link | measured | met |", "|---|---|---|---|"]

    def add(target: str, link: str, measured: str, met: bool | None) -> None:
        verdict = "—" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {target} | {link} | {measured} | {verdict} |")

    for r in results:
        rows = {(row.figure, row.unit): row for row in link_rows(r, ["mediasyncd", "rsync"])}
        wan = r.label.startswith("wan")
        for name in ("BIG", "PNG") if wan else ("PNG", "BIG"):
            row = rows.get((f"{name} initial pull", "MB/s"))
            q = ratio(row) if row else None
            m = row.values["mediasyncd"] if row else None
            if q is None or m is None:
                continue
            if wan:
                ceiling = r.check.asyncssh_cat_mb_s
                add(
                    f"{name} ≥ 1.15 × rsync MB/s and ≥ 0.9 × raw channel",
                    r.label,
                    f"{ratio_text(q, 1.15)} rsync; {m / ceiling:.2f}× asyncssh cat ({m / r.check.ssh_cat_mb_s:.2f}× OpenSSH cat)",
                    q >= 1.15 and m >= 0.9 * ceiling,
                )
            else:
                add(f"{name} ≥ 0.8 × rsync MB/s", r.label, ratio_text(q, 0.8), q >= 0.8)
        if (row := rows.get(("MANY initial pull", "files/s"))) and (q := ratio(row)) is not None:
            if wan:
                add("MANY ≥ 1.0 × rsync files/s", r.label, ratio_text(q, 1.0), q >= 1.0)
            else:
                add("MANY files/s (report only)", r.label, f"{q:.2f}× rsync", None)
        if wan and (row := rows.get(("MANY nothing-new pass¹", "s"))) and (q := ratio(row)) is not None:
            add("nothing-new pass over MANY ≤ 0.5 × rsync no-op", r.label, ratio_text(q, 0.5), q <= 0.5)
        if (row := rows.get(("MANY peak RSS", "MB"))) and (m := row.values["mediasyncd"]) is not None:
            add("peak RSS ≤ 150 MB pulling MANY", r.label, f"{m:.0f} MB", m <= 150)
        if wan:
            p50 = rows.get(("close→landed p50³", "ms"))
            p95 = rows.get(("close→landed p95³", "ms"))
            if p50 and p95 and p50.values["mediasyncd"] is not None:
                measured = f"p50 {fmt(p50.values['mediasyncd'])} ms, p95 {fmt(p95.values['mediasyncd'])} ms"
                add("close→landed, poll mode (report)", r.label, measured, None)
    add(
        "nothing-new pass with 1,000,000 DB rows vs 20,000",
        "—",
        "not in this run: `python -m bench.statedb`",
        None,
    )
    return lines


def machine_lines(rev: Revision | None = None) -> list[str]:
    cpu = _first_match(Path("/proc/cpuinfo"), "model name") or platform.processor()
    mem_kb = int((_first_match(Path("/proc/meminfo"), "MemTotal") or "0 kB").split()[0])
    versions = tool_versions()
    return [
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, {mem_kb / 1024**2:.0f} GiB RAM; Linux {platform.release()}; "
        f"{_os_name()}; TCP congestion control {_read('/proc/sys/net/ipv4/tcp_congestion_control')}",
        f"- Software: Python {platform.python_version()}, asyncssh {asyncssh.__version__}, "
        + ", ".join(f"{versions[k]}" for k in ("mediasyncd", "rsync", "rclone", "OpenSSH")),
        f"- mediasyncd source: {git_revision(rev)}",
    ]


def git_revision(rev: Revision | None = None) -> str:
    """Which mediasyncd ran: the pinned `--mediasyncd-rev` commit, else the work tree's HEAD."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    if rev:
        return f"commit {rev.commit[:12]} (`--mediasyncd-rev {rev.name}`: git archive, not the work tree)"
    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "mediasyncd")
    return f"commit {commit}" + (" with uncommitted changes under mediasyncd/" if dirty else "")


def _first_match(path: Path, key: str) -> str | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "?"


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def samples_line(values: list[float]) -> str:
    return ", ".join(fmt(v) for v in values) + f" (median {fmt(statistics.median(values))})"


def write_section(doc: Path, section: str, writer: str = "bench/run.py") -> None:
    """Replace the section of `doc` that `writer` generated (between its markers), or append one."""
    text = doc.read_text() if doc.exists() else ""
    begin = BEGIN.replace("bench/run.py", writer)
    end = END.replace("bench/run.py", writer)
    block = f"{begin}\n{section.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text)
