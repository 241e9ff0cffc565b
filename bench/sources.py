"""Local folders and Docker containers as sources, beside the plain tools, in one run (issue 15).

    .venv/bin/python -m bench.sources                 # PNG 300 + MANY 3000, 3 repetitions, writes docs/benchmarks.md
    .venv/bin/python -m bench.sources --png 20 --many 200 --repeat 1 --no-doc    # a quick look

Docker: `mediasyncd sync --once` with `transport = "docker"` against `docker cp` and `docker exec … tar c
| tar x` ("docker exec tar c, tar x"), all from one container of the full-userland test image (GNU find, tar, sha256sum, openssl)
with the dataset bound in, on a dockerd this run starts (tests/docker_engine.py). "mediasyncd docker"
reads the container's files from this machine (the default for a local engine: `docker:host-path`);
"mediasyncd docker (exec)" is `files_via = "exec"`, every byte through `docker exec` as for an engine
elsewhere. Local: `mediasyncd
sync --once` with `transport = "local"` against `rsync -a` between two local directories. Every run
pulls into a fresh empty directory (mediasyncd with a fresh state dir too); repetitions are
interleaved and medians reported. mediasyncd hashes every file on both ends (SHA-256) and lands it
atomically; the other tools only copy. Wall time includes starting each tool (Python, for mediasyncd).
Needs root (dockerd).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.datasets import Dataset, DatasetSpec, ensure_datasets
from bench.report import write_section
from bench.tools import RunStats, compile_bytecode, run_measured
from tests.docker_engine import DOCKER, Engine, start_engine
from tests.helpers import MEDIASYNCD, write_config

REPO = Path(__file__).resolve().parent.parent
WORK = Path("/var/tmp/mediasyncd-bench-sources")
TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Sample:
    tool: str
    dataset: str
    stats: RunStats


def mediasyncd_runner(table: dict[str, object], scratch: Path) -> Callable[[Dataset, Path], list[str]]:
    def argv(dataset: Dataset, dest: Path) -> list[str]:
        state = dest.parent / (dest.name + "-state")
        remote = table | {"name": "r", "roots": [str(dataset.root)], "settle": "1s", "include": ["*"]}
        config = write_config(dest.parent / (dest.name + ".toml"), dest, state, [remote])
        return [MEDIASYNCD, "sync", "--once", "--config", str(config), "--quiet"]

    return argv


def tools(engine: Engine, container: str) -> dict[str, Callable[[Dataset, Path], list[str]]]:
    docker = f"{DOCKER} -H {engine.host}"
    return {
        "mediasyncd docker": mediasyncd_runner(
            {"transport": "docker", "container": container, "docker_host": engine.host}, WORK
        ),
        "mediasyncd docker (exec)": mediasyncd_runner(
            {"transport": "docker", "container": container, "docker_host": engine.host, "files_via": "exec"}, WORK
        ),
        "docker cp": lambda d, dest: [str(DOCKER), "-H", engine.host, "cp", f"{container}:{d.root}/.", str(dest)],
        "docker exec tar c, tar x": lambda d, dest: [
            "sh", "-c", f"{docker} exec {container} tar -C {d.root} -cf - . | tar -C {dest} -xf -",
        ],
        "mediasyncd local": mediasyncd_runner({"transport": "local"}, WORK),
        "rsync -a (local)": lambda d, dest: ["rsync", "-a", f"{d.root}/", f"{dest}/"],
    }  # fmt: skip


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--png", type=int, default=300)
    p.add_argument("--many", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("--work", type=Path, default=WORK, help=f"datasets, dockerd and scratch (default {WORK})")
    p.add_argument(
        "--tool", action="append", default=[], help="run this tool only (repeat; implies --no-doc)"
    )
    args = p.parse_args(argv)
    work: Path = args.work
    spec = DatasetSpec(png=args.png, many=args.many, many_folders=max(1, args.many // 120), big=0)
    datasets = [d for d in ensure_datasets(work / "data", spec) if d.name in ("PNG", "MANY")]
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    samples: list[Sample] = []
    compile_bytecode()
    load_before = os.getloadavg()[0]
    with start_engine(work / "docker") as engine:
        container = engine.run("mediasyncd-test/full:1", f"bench-sources-{os.getpid()}", [work / "data"])
        plan = tools(engine, container)
        if args.tool:
            plan = {name: plan[name] for name in args.tool}
        env = {"PATH": f"{DOCKER.parent}:{os.environ['PATH']}"}  # Debian's docker client for mediasyncd too
        for rep in range(args.repeat):
            for dataset in datasets:
                names = list(plan)
                names = names[rep % len(names) :] + names[: rep % len(names)]
                for name in names:
                    dest = scratch / f"{name.replace(' ', '_').replace('|', '')}-{dataset.name}-{rep}"
                    dest.mkdir()
                    subprocess.run(["sync"], check=True)
                    stats = run_measured(plan[name](dataset, dest), scratch / "log.txt", TIMEOUT_S, env)
                    got = sum(1 for p in dest.rglob("*") if p.is_file() and ".mediasyncd" not in p.parts)
                    if got != dataset.files:
                        raise SystemExit(f"{name} on {dataset.name}: {got} of {dataset.files} files")
                    samples.append(Sample(name, dataset.name, stats))
                    print(f"{name:>24} {dataset.name:5} {stats.wall_s:7.2f} s", flush=True)
                    shutil.rmtree(dest)
    loads = (load_before, os.getloadavg()[0])
    section = report(samples, datasets, args.repeat, loads)
    print(section)
    if not args.no_doc and not args.tool:
        write_section(args.doc, section, writer="bench/sources.py")
    return 0


def report(samples: list[Sample], datasets: list[Dataset], repeat: int, loads: tuple[float, float]) -> str:
    lines = [
        "## Local and Docker sources (bench/sources.py)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, medians of "
        f"{repeat}; " + "; ".join(f"{d.name}: {d.files} files, {d.megabytes:.0f} MB" for d in datasets) + ". "
        "`sync --once` wall time includes starting Python and hashing every file on both ends; the other "
        "tools only copy. machine CPU-s: the whole host (both ends, dockerd, and anything else running) "
        f"during the run; 1-minute load average {loads[0]:.1f} before and {loads[1]:.1f} after the run. "
        "`mediasyncd docker` reads the container's files from this machine (`docker:host-path`, the "
        "default for a local engine); `mediasyncd docker (exec)` sends every byte through `docker exec` "
        '(`files_via = "exec"`, what an engine elsewhere gets).',
        "",
        "| dataset | tool | wall s | MB/s | files/s | machine CPU-s | vs reference |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    reference = {
        "mediasyncd docker": "docker cp", "mediasyncd docker (exec)": "docker cp",
        "mediasyncd local": "rsync -a (local)",
    }  # fmt: skip
    for d in datasets:
        medians = {}
        for tool in dict.fromkeys(s.tool for s in samples):
            runs = [s.stats for s in samples if s.tool == tool and s.dataset == d.name]
            medians[tool] = (
                statistics.median(r.wall_s for r in runs),
                statistics.median(r.machine_cpu_s for r in runs),
            )
        for tool, (wall, cpu) in medians.items():
            ref = reference.get(tool)
            ratio = f"{medians[ref][0] / wall:.2f}× {ref}" if ref in medians else ""
            lines.append(
                f"| {d.name} | {tool} | {wall:.2f} | {d.megabytes / wall:.0f} | {d.files / wall:.0f} "
                f"| {cpu:.1f} | {ratio} |"
            )
    lines.append("")
    lines.append("Targets (issue 15): ≥ 1.0× `docker cp` and ≥ 0.8× local `rsync -a`, hashing included.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(run())
