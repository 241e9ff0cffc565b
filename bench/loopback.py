"""mediasyncd `sync --once` against `rsync -a` over the same loopback OpenSSH sshd, in one run.

    .venv/bin/python -m bench.loopback [--png 200] [--many 2000] [--repeat 3] [--out FILE]

Generates the datasets on the "remote" (a temp dir served by a real sshd on 127.0.0.1): realistic PNGs
of ~1–2 MB with A1111 metadata, and many ~100 KB files in dated folders. For each dataset and tool it
times a full initial pull into an empty directory and then a nothing-new pass, `repeat` times, and
prints medians and mediasyncd's ratio to rsync (files/s and MB/s: higher is better; no-op seconds:
lower is better). Loopback is CPU-bound; the WAN benchmark (issue 5) measures the link-bound case.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from mediasyncd.demo.images import write_forge_image
from tests.sshd import SshServer, ssh_argv, start_sshd

MEDIASYNCD = str(Path(sys.executable).parent / "mediasyncd")


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    files: int
    bytes: int


def make_png(root: Path, count: int, rng: random.Random) -> Dataset:
    outputs = root / "png"
    for i in range(count):
        write_forge_image(outputs, i, rng, size=rng.choice([896, 1024]))
    return _measure("PNG", outputs)


def make_many(root: Path, count: int, rng: random.Random, folders: int = 170) -> Dataset:
    outputs = root / "many"
    per = max(1, count // folders)
    for i in range(count):
        folder = (
            outputs / "txt2img-images" / f"2026-{1 + (i // per) // 28 % 12:02d}-{1 + (i // per) % 28:02d}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}-{rng.randrange(2**32)}.png").write_bytes(
            rng.randbytes(rng.randrange(80_000, 120_000))
        )
    return _measure("MANY", outputs)


def _measure(name: str, root: Path) -> Dataset:
    files = [p for p in root.rglob("*") if p.is_file()]
    old = time.time() - 3600
    for p in files:
        os.utime(p, (old, old))
    return Dataset(name, root, len(files), sum(p.stat().st_size for p in files))


def mediasyncd_pull(server: SshServer, data: Dataset, work: Path) -> Callable[[], None]:
    library = work / "lib"
    library.mkdir()
    config = work / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "daemon": {
                    "library": str(library),
                    "state_dir": str(work / "state"),
                    "library_min_free": "0",
                },
                "transfer": {"concurrency": 16},
                "pipeline": {"enabled": False},
                "remotes": [
                    {
                        "name": "bench",
                        "host": server.host,
                        "port": server.port,
                        "user": server.user,
                        "identity_file": str(server.client_key),
                        "known_hosts": str(server.known_hosts),
                        "roots": [str(data.root)],
                        "include": ["*"],
                        "settle": "1s",
                    }
                ],
            }
        )
    )

    def run() -> None:
        cmd = [
            MEDIASYNCD,
            "sync",
            "--once",
            "--no-progress",
            "--config",
            str(config),
            "--log-level",
            "warning",
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    return run


def rsync_pull(server: SshServer, data: Dataset, work: Path) -> Callable[[], None]:
    target = work / "rsync"
    target.mkdir()
    shell = " ".join(shlex.quote(a) for a in ssh_argv(server)[:-2])  # without "<host> --"

    def run() -> None:
        cmd = ["rsync", "-a", "-e", shell, f"{server.host}:{data.root}/", f"{target}/"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    return run


TOOLS: dict[str, Callable[[SshServer, Dataset, Path], Callable[[], None]]] = {
    "mediasyncd": mediasyncd_pull,
    "rsync": rsync_pull,
}


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(server: SshServer, data: Dataset, repeat: int, scratch: Path) -> dict[str, dict[str, float]]:
    """Median full-pull and no-op seconds per tool, tools interleaved within each repetition."""
    full: dict[str, list[float]] = {t: [] for t in TOOLS}
    noop: dict[str, list[float]] = {t: [] for t in TOOLS}
    for i in range(repeat):
        for tool, make in TOOLS.items():
            work = scratch / f"{data.name}-{tool}-{i}"
            work.mkdir()
            run = make(server, data, work)
            full[tool].append(timed(run))
            noop[tool].append(timed(run))
            shutil.rmtree(work)
    return {t: {"full_s": statistics.median(full[t]), "noop_s": statistics.median(noop[t])} for t in TOOLS}


def report(results: dict[str, tuple[Dataset, dict[str, dict[str, float]]]], args: argparse.Namespace) -> str:
    lines = [
        f"# mediasyncd vs rsync, loopback sshd ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Command: `.venv/bin/python -m bench.loopback --png {args.png} --many {args.many} --repeat {args.repeat}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{_version(['rsync', '--version'])}, {_version(['ssh', '-V'])}",
        "",
        "| dataset | files | MB | tool | full pull s | MB/s | files/s | no-op pass s |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for data, by_tool in results.values():
        mb = data.bytes / 1e6
        for tool, r in by_tool.items():
            lines.append(
                f"| {data.name} | {data.files} | {mb:.0f} | {tool} | {r['full_s']:.2f} | {mb / r['full_s']:.1f} | "
                f"{data.files / r['full_s']:.0f} | {r['noop_s']:.2f} |"
            )
        m, r = by_tool["mediasyncd"], by_tool["rsync"]
        lines.append(
            f"| {data.name} | | | **ratio mediasyncd/rsync** | | **{r['full_s'] / m['full_s']:.2f}×** | "
            f"**{r['full_s'] / m['full_s']:.2f}×** | **{m['noop_s'] / r['noop_s']:.2f}×** (lower is better) |"
        )
    lines += [
        "",
        "Medians of interleaved repetitions; each tool pulls into an empty directory, then runs again.",
    ]
    return "\n".join(lines)


def _version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = (out.stdout or out.stderr).splitlines()
    return text[0].strip() if text else cmd[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--png", type=int, default=200, help="number of ~1-2 MB PNGs")
    p.add_argument("--many", type=int, default=2000, help="number of ~100 KB files")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mediasyncd-bench-") as tmp:
        base = Path(tmp)
        rng = random.Random(7)
        print("generating datasets ...", file=sys.stderr)
        datasets = [make_png(base / "remote", args.png, rng), make_many(base / "remote", args.many, rng)]
        results = {}
        with start_sshd(base / "sshd") as server:
            for data in datasets:
                if data.files == 0:
                    continue
                print(
                    f"benchmarking {data.name}: {data.files} files, {data.bytes / 1e6:.0f} MB",
                    file=sys.stderr,
                )
                scratch = base / "scratch"
                scratch.mkdir(exist_ok=True)
                results[data.name] = (data, bench(server, data, args.repeat, scratch))
    text = report(results, args)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
