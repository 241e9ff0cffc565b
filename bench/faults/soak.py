"""Soak: many remotes on one real sshd, each writing a new file every second, for minutes.

Full mode: 50 remotes for $MEDIASYNCD_SOAK_MINUTES minutes (default 10; `python -m bench.faults
--soak-minutes 60` for the docs). Quick mode: a mini soak of 5 remotes for 12 s, whose RSS and fd
figures are reported but not judged (too short to be past warm-up). The daemon runs with its defaults
(agent watching where the remote has python3, the pipeline off: this is the data path), except that each
remote is purged every 5 minutes of what is older than 2 minutes: a container's steady state, where the
daemon knows a bounded number of remote files. What a file the daemon knows costs in memory (its
in-memory index row, kept while the file stays on its remote) is measured on its own and reported.

Warm-up: a fifth of the run, at most 12 minutes — in the hour, long enough for each periodic job to
have run once (the purge at minutes 5 and 10, the agent's first full listing at minute 10: the
`reconcile_interval` default). Until then the daemon is still reaching its working set.

Measured, after warm-up, in its first and last tenth: the daemon's RSS and open file descriptors (the
median of the samples in each window: the RSS swings a few MB around each 30-second heap trim, so one
sample is noise; single samples and the peak are reported too), the lag from a file's remote mtime to its
landing (from the state DB), lines at level error (or not JSON at all) in its log, files not landed 60 s after
the last write, and the audit of every file written (lost, corrupt, partial, duplicated, deleted from its
remote without a verified library copy).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

from bench.faults.common import (
    LANDED_STATES,
    Audit,
    Daemon,
    World,
    audit,
    error_lines,
    error_summary,
    make_world,
    open_fds,
    rss_bytes,
    ssh_remote_table,
    wait_until,
)
from bench.faults.report import Figure, Mode, Section
from mediasyncd.state.known import KnownFiles
from mediasyncd.state.lifecycle import FileState
from mediasyncd.state.rows import FileRow
from tests.sshd import start_sshd

TITLE = "Soak: 50 remotes × 1 new file/s (quick mode: 5 remotes, 12 s)"
PROMISE = (
    "A sync daemon that runs for months (Syncthing, rclone's VFS cache) must not grow: memory and file "
    "descriptors flat after warm-up, lag flat, no errors. Target: RSS growth ≤ 10 % over the run after warm-up."
)
MINUTES_ENV = "MEDIASYNCD_SOAK_MINUTES"
PURGE = {"older_than": "2m", "schedule": "*/5 * * * *"}
WARMUP_MAX = 720.0  # seconds: past the first purges and the first full listing (reconcile_interval 10m)


@dataclass
class Samples:
    rss: list[tuple[float, int]] = field(default_factory=list)
    fds: list[tuple[float, int]] = field(default_factory=list)


def run(mode: Mode, work: Path) -> Section:
    quick = mode is Mode.QUICK
    remotes = 5 if quick else 50
    seconds = 12.0 if quick else float(os.environ.get(MINUTES_ENV, "10")) * 60
    warmup = 3.0 if quick else warmup_for(seconds)
    with start_sshd(work / "sshd", extra_config="MaxStartups 200\nMaxSessions 20\n") as server:
        tables = []
        for n in range(remotes):
            root = work / "remote" / f"r{n:02d}"
            root.mkdir(parents=True)
            tables.append(
                ssh_remote_table(server, f"r{n:02d}", root, watch="auto", poll_interval="10s", purge=PURGE)
            )
        world = make_world(work, tables, transfer={"concurrency": 8})
        daemon = world.daemon()
        with daemon:
            samples, written, wall = _soak(world, daemon, seconds, warmup)
            all_landed = wait_until(lambda: _landed(world) >= written, 60, 0.5)
            missing = written - _landed(world)
        checked = audit(world, final=True)
    purged = int(world.rows("SELECT COUNT(*) FROM files WHERE state = 'purged'")[0][0])
    return _section(
        world, samples, written, missing, all_landed, seconds, warmup, wall, remotes, quick, checked, purged
    )


def warmup_for(seconds: float) -> float:
    """A full-mode soak's warm-up: a fifth of the run, at least a minute, at most 12 (see the module)."""
    return min(WARMUP_MAX, max(60.0, seconds / 5))


def _soak(world: World, daemon: Daemon, seconds: float, warmup: float) -> tuple[Samples, int, float]:
    samples = Samples()
    stop = threading.Event()
    count = [0]

    def writer() -> None:
        tick = time.monotonic()
        n = 0
        while not stop.is_set():
            for remote in world.remotes.values():
                remote.write(
                    f"{n // 500:03d}/{n:06d}.png", os.urandom(20_000 + (n * 7919) % 80_000), mtime=None
                )
                count[0] += 1
            n += 1
            tick += 1.0
            stop.wait(max(0.0, tick - time.monotonic()))

    thread = threading.Thread(target=writer, name="soak-writer", daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            samples.rss.append((elapsed, rss_bytes(daemon.pid)))
            samples.fds.append((elapsed, open_fds(daemon.pid)))
            time.sleep(1.0 if seconds < 120 else 5.0)
    finally:
        stop.set()
        thread.join(10)
    samples.rss.append((time.monotonic() - started, rss_bytes(daemon.pid)))
    samples.fds.append((time.monotonic() - started, open_fds(daemon.pid)))
    return samples, count[0], time.time()


def _landed(world: World) -> int:
    return int(world.rows(f"SELECT COUNT(*) FROM files WHERE state IN {LANDED_STATES!r}")[0][0])


def index_bytes_per_file(remotes: int = 10, files: int = 3600) -> float:
    """What one more known remote file costs the daemon's diff base (`KnownFiles`), by tracemalloc:
    `remotes` indexes of `files` landed files each, set one by one as the soak's files land."""
    tracemalloc.start()
    try:
        indexes = [KnownFiles(f"r{i:02d}") for i in range(remotes)]
        before = tracemalloc.get_traced_memory()[0]
        for n in range(files):
            for i, known in enumerate(indexes):
                rel = f"{n // 500:03d}/{n:06d}.png"
                known.set(
                    FileRow(n * remotes + i + 1, known.remote, "/r", rel, 50_000, 1.7e9 + n, FileState.LANDED)
                )
        return (tracemalloc.get_traced_memory()[0] - before) / (remotes * files)
    finally:
        tracemalloc.stop()


def _marks(series: list[tuple[float, int]], start: float, end: float, parts: int) -> list[int]:
    """The samples at `start`, at each of `parts` equal steps after it, and the last one."""
    step = (end - start) / parts
    return [_at(series, start + i * step) for i in range(parts)] + [series[-1][1]]


def window_median(series: list[tuple[float, int]], start: float, end: float) -> int:
    """The median of the samples taken in [start, end) seconds (the nearest one after, if none was)."""
    inside = [v for t, v in series if start <= t < end]
    return round(statistics.median(inside)) if inside else _at(series, start)


def _at(series: list[tuple[float, int]], t: float) -> int:
    """The first sample at or after `t` seconds."""
    return next((v for s, v in series if s >= t), series[-1][1])


def _section(
    world: World,
    samples: Samples,
    written: int,
    missing: int,
    all_landed: bool,
    seconds: float,
    warmup: float,
    wall_end: float,
    remotes: int,
    quick: bool,
    checked: Audit,
    purged: int,
) -> Section:
    span = max(seconds - warmup, 1.0)
    part = span / (4 if quick else 10)  # the quick soak's tenths hold a second each: too few landings
    windows = "quarter" if quick else "tenth"
    first_w, last_w = (warmup, warmup + part), (seconds - part, seconds + 60.0)
    rss0, rss1 = window_median(samples.rss, *first_w), window_median(samples.rss, *last_w)
    fd0, fd1 = window_median(samples.fds, *first_w), window_median(samples.fds, *last_w)
    one0, one1 = _at(samples.rss, warmup), samples.rss[-1][1]
    peak = max(v for _, v in samples.rss)
    growth = (rss1 - rss0) / rss0 * 100 if rss0 else 0.0
    lags = world.rows(
        "SELECT landed_at, landed_at - mtime FROM files WHERE landed_at IS NOT NULL ORDER BY landed_at"
    )
    start_wall = wall_end - seconds
    after = [(t - start_wall, lag) for t, lag in lags if t - start_wall >= warmup]
    first = [lag for t, lag in after if t < warmup + part]
    last = [lag for t, lag in after if t >= seconds - part]
    p50 = (statistics.median(first) if first else 0.0, statistics.median(last) if last else 0.0)
    p95 = (_p95(first), _p95(last))
    flat_lag = p95[1] <= p95[0] * 1.5 + 1.0
    errors = error_lines(world.work / "run.log")
    mib = 1 << 20
    rss_name = f"RSS growth after warm-up, median of the first → last {windows} (%)"
    fd_name = f"open fds growth after warm-up, median of the first → last {windows}"
    rss_fig = (
        Figure.info(rss_name, round(growth, 1))
        if quick
        else Figure.at_most(rss_name, round(growth, 1), 10, " %")
    )
    fd_fig = Figure.info(fd_name, fd1 - fd0) if quick else Figure.at_most(fd_name, fd1 - fd0, 5)
    figures = [
        Figure.info("files written (remotes × seconds)", f"{written:,} ({remotes} × {seconds:g} s)"),
        Figure.zero("files not landed 60 s after the last write", missing),
        Figure.info(
            f"RSS, median of the first → last {windows} after warm-up",
            f"{rss0 / mib:.1f} → {rss1 / mib:.1f} MiB",
        ),
        Figure.info(
            "RSS, one sample at the end of warm-up → the last (peak)",
            f"{one0 / mib:.1f} → {one1 / mib:.1f} MiB, {(one1 - one0) / max(one0, 1) * 100:+.1f} % ({peak / mib:.1f})",
        ),
        Figure.info(
            f"RSS at the start of each {windows} after warm-up, and the last (MiB)",
            " ".join(f"{v / mib:.0f}" for v in _marks(samples.rss, warmup, seconds, 4 if quick else 10)),
        ),
        rss_fig,
        Figure.info(
            "RSS growth per file landed after warm-up (bytes)", round((rss1 - rss0) / max(len(after), 1))
        ),
        Figure.info(
            "memory per remote file known, its index row (bytes, tracemalloc)", round(index_bytes_per_file())
        ),
        Figure.info(
            f"open fds, median of the first → last {windows} (one sample at each end)",
            f"{fd0} → {fd1} ({_at(samples.fds, warmup)} → {samples.fds[-1][1]})",
        ),
        fd_fig,
        Figure.info(f"lag mtime→landed p50, first → last {windows} (s)", f"{p50[0]:.2f} → {p50[1]:.2f}"),
        _lag_figure(windows, p95, flat_lag, bool(first) and bool(last), quick),
        Figure.zero("error lines in the daemon's log", len(errors)),
        Figure.info("files purged from their remote (verified)", f"{purged:,}"),
        Figure.zero(
            "files lost, corrupt, partial or duplicated",
            sum(checked.count(k) for k in ("lost", "corrupt", "partial", "duplicated")),
        ),
        Figure.zero("remote files deleted without a verified library copy", checked.count("unverified")),
    ]
    notes = [
        f"{remotes} remotes on one sshd (one SSH connection each), each written one new 20–100 KB file per "
        f"second for {seconds / 60:g} min; warm-up {warmup:g} s; pipeline off; purge every 5 min of files "
        "older than 2 min; defaults otherwise (watch = auto: the remote agent).",
        "Lag is a file's remote mtime to its landed_at in the state DB (1 s clock granularity on the mtime "
        "side is not corrected).",
    ]
    notes.append(
        "The daemon keeps an in-memory index row per remote file it knows (the diff base a listing is "
        "compared with) while the file stays on its remote, so a remote that is never purged grows the "
        "daemon by that row per file (the figure measured on its own above); the purge keeps it bounded."
    )
    notes += [f"audit: {e}" for e in checked.examples[:5]]
    if quick:
        notes.append("Quick mode: a mini soak; RSS and fd growth are reported, judged only in full mode.")
    notes += [f"error line: {error_summary(e)}" for e in errors[:5]]
    if not all_landed:
        notes.append(f"{missing} files had not landed 60 s after the last write")
    return Section(TITLE, PROMISE, 1, figures, notes)


def _lag_figure(windows: str, p95: tuple[float, float], flat: bool, both: bool, quick: bool) -> Figure:
    """Lag flat: judged in full mode; in quick mode only when both windows saw landings (a loaded machine
    can leave a 3-second window of a 12-second soak empty)."""
    name = f"lag mtime→landed p95, first → last {windows} (s)"
    value = f"{p95[0]:.2f} → {p95[1]:.2f}" if both else "a window saw no landing"
    if quick and not both:
        return Figure.info(name, value)
    return Figure(name, value, "last ≤ 1.5 × first + 1 s", flat and both)


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
