"""Workflow stages under kill -9 (issue 20's target: 0 files lost or purged early).

For each stage run — archive; compress to a copy (`keep_original = true`); compress replacing the library
file (`keep_original = false`) — a `local` source with PNGs is landed and processed, then
`mediasyncd workflow run` is started and killed -9 at a random moment, again and again; after every kill
a real `mediasyncd purge` runs (`purge_after = ["archive"]`, every file old enough) and everything is
counted: a file whose library copy (where the state DB says it is) is missing or does not verify, a
source file gone whose archived original does not verify, a partial left behind. A last run must finish
every file, each stage once (one `file_staged` event each). The Syncthing hand-off and the peer offline
are run against two real Syncthing instances in tests/workflow/test_syncthing.py.
"""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from PIL import Image

from bench.faults.report import Figure, Mode, Section
from mediasyncd.digest import sha256_file

TITLE = "Workflow: kill -9 during archive and compress, purge gated on the archive"
PROMISE = (
    "a NAS archive step is only as good as its verification: no file may leave the source before its "
    "archived copy verifies, and a re-encode may replace a library file only after the new file and the "
    "archived original verify (rsync --remove-source-files and rclone move delete after the copy too)"
)
MEDIASYNCD = [sys.executable, "-m", "mediasyncd"]
OLD = time.time() - 7200
# (label, stages, [workflow.compress], large files (25 MB each) so that the archive copy takes a while)
RUNS: tuple[tuple[str, list[str], dict[str, Any], int], ...] = (
    ("archive", ["archive"], {}, 6),
    ("compress, copy", ["archive", "compress"], {"keep_original": True}, 0),
    ("compress, replace", ["archive", "compress"], {"keep_original": False}, 0),
)
LARGE = 25 * 1024 * 1024


@dataclass
class Counts:
    kills: int = 0
    landed_mid_run: int = 0
    lost: int = 0  # a library copy missing or not verifying where the state DB says it is
    purged_early: int = 0  # gone from the source while its archived original does not verify
    unfinished: int = 0  # a stage not done after the last run
    partials: int = 0
    duplicate_events: int = 0
    notes: list[str] = field(default_factory=list)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(work: Path, stages: list[str], compress: dict[str, Any]) -> Path:
    doc: dict[str, Any] = {
        "daemon": {
            "library": str(work / "library"),
            "state_dir": str(work / "state"),
            "status_listen": f"127.0.0.1:{_port()}",
            "library_min_free": "0",
        },
        "pipeline": {"enabled": True, "thumbnails": False},
        "remotes": [
            {
                "name": "r1",
                "transport": "local",
                "roots": [str(work / "source")],
                "settle": "1s",
                "include": ["*.png"],
                "purge": {"older_than": "30m"},
            }
        ],
        "workflow": {
            "stages": stages,
            "purge_after": ["archive"] if stages else [],
            "archive": {"dest": str(work / "nas")},
            "compress": {"format": "webp", "min_saving": "0%"} | compress,
        },
    }
    path = work / "config.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MEDIASYNCD, *args, "--config", str(config)], capture_output=True, timeout=600)


def _rows(work: Path) -> list[tuple[int, str, str, str, str | None]]:
    with sqlite3.connect(work / "state/state.db", timeout=30) as db:
        return db.execute("SELECT id, rel, local_path, sha256, library_sha256 FROM files").fetchall()


def _digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def _check(work: Path, counts: Counts) -> None:
    for _id, rel, local_path, sha256, library_sha256 in _rows(work):
        if _digest(work / "library" / local_path) != (library_sha256 or sha256):
            counts.lost += 1
            counts.notes.append(f"library copy of {rel} missing or changed after kill {counts.kills}")
        if not (work / "source" / rel).exists() and _digest(work / "nas/r1" / rel) != sha256:
            counts.purged_early += 1
            counts.notes.append(f"{rel} left the source without a verified archive copy")


def _one(
    work: Path,
    stages: list[str],
    compress: dict[str, Any],
    files: int,
    kills: int,
    seed: int,
    longest: float,
    large: int = 0,
) -> Counts:
    for name in ("source", "library", "nas"):
        (work / name).mkdir(parents=True)
    for i in range(files):
        path = work / "source" / f"f{i:03}.png"
        image = Image.effect_mandelbrot((512, 512), (-2 + i * 0.01, -1.5, 1, 1.5), 60 + i % 40)
        image.convert("RGB").save(path, "PNG")
        os.utime(path, (OLD, OLD))
    for i in range(large):
        path = work / "source" / f"large{i}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(LARGE))
        os.utime(path, (OLD, OLD))
    files += large
    config = _config(work, [], compress)
    if _cli(config, "sync", "--once").returncode != 0:
        raise RuntimeError("the landing pass failed")
    config = _config(work, stages, compress)
    counts = Counts()
    rng = random.Random(seed)
    log = (work / "runs.log").open("ab")
    try:
        for _ in range(kills):
            proc = subprocess.Popen(
                [*MEDIASYNCD, "workflow", "run", "--config", str(config)], stdout=log, stderr=log
            )
            _wait_for_progress(work, proc, _stages_done(work) + rng.randint(1, 3), longest)
            time.sleep(rng.uniform(0, 0.03))
            counts.landed_mid_run += proc.poll() is None
            proc.kill()
            proc.wait()
            counts.kills += 1
            _cli(config, "purge")
            _check(work, counts)
    finally:
        log.close()
    _cli(config, "workflow", "run")
    _cli(config, "purge")
    _check(work, counts)
    with sqlite3.connect(work / "state/state.db", timeout=30) as db:
        done = dict(db.execute("SELECT stage, COUNT(*) FROM file_stages WHERE state = 'done' GROUP BY stage"))
        events = db.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT path || json_extract(data, '$.stage')) FROM events "
            "WHERE type = 'file_staged'"
        ).fetchone()[0]
    counts.unfinished = sum(files - done.get(stage, 0) for stage in stages)
    counts.duplicate_events = int(events)
    counts.partials = sum(
        1 for root in ("library", "nas") for _ in (work / root).rglob("*.mediasyncd-partial")
    )
    return counts


def _stages_done(work: Path) -> int:
    """Stage rows done so far (0 before the workflow's tables exist)."""
    try:
        with sqlite3.connect(work / "state/state.db", timeout=30) as db:
            return int(db.execute("SELECT COUNT(*) FROM file_stages WHERE state = 'done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait_for_progress(work: Path, proc: subprocess.Popen[bytes], target: int, longest: float) -> None:
    """Until `target` stage rows are done, the run ends, or `longest` × 20 seconds pass: the kill then
    lands mid-work however fast the machine is (a fixed delay came after the end on a quiet one)."""
    deadline = time.monotonic() + longest * 20
    while proc.poll() is None and _stages_done(work) < target and time.monotonic() < deadline:
        time.sleep(0.005)


def run(mode: Mode, work: Path) -> Section:
    files, kills, longest = (10, 2, 1.4) if mode is Mode.QUICK else (40, 10, 3.0)
    figures: list[Figure] = []
    notes: list[str] = []
    runs = 0
    for index, (label, stages, compress, large) in enumerate(RUNS):
        counts = _one(work / f"run{index}", stages, compress, files, kills, index, longest, large)
        runs += counts.kills
        figures += [
            Figure.info(f"{label}: kills that landed mid-run", f"{counts.landed_mid_run} of {counts.kills}"),
            Figure.zero(f"{label}: library copies lost or changed", counts.lost),
            Figure.zero(f"{label}: files purged before their archive copy verified", counts.purged_early),
            Figure.zero(f"{label}: stages not done after the last run", counts.unfinished),
            Figure.zero(f"{label}: partial files left", counts.partials),
            Figure.zero(f"{label}: stages announced twice (file_staged)", counts.duplicate_events),
        ]
        notes += counts.notes[:5]
    notes.append(
        f"{files} PNGs (512², ~0.3 MB) per run (the archive run also {RUNS[0][3]} files of 25 MB); "
        "after each kill a real `mediasyncd purge` ran"
    )
    return Section(TITLE, PROMISE, runs, figures, notes)
