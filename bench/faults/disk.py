"""Disk: a filesystem that fills mid-transfer, on a size-limited tmpfs, in three layouts.

- library: the library's filesystem fills (the state dir is elsewhere);
- shared: the library and the state dir share one filesystem, and it fills (the state DB meets ENOSPC
  as well as the partials);
- state: the state dir's filesystem fills (the library has room).

Each run starts the daemon on large files, waits until their transfer is under way, fills the
filesystem to the last byte with another file (as another program would), looks at /status, the library
and the state DB while it is full, then deletes the filler and waits until everything has landed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.faults.common import (
    Audit,
    Daemon,
    MiB,
    World,
    audit,
    audit_events,
    error_lines,
    fill,
    make_world,
    ssh_remote_table,
    tmpfs,
    wait_until,
)
from bench.faults.report import Figure, Mode, Section
from tests.sshd import SshServer, start_sshd

TITLE = "Disk: the library's or the state dir's filesystem fills mid-transfer"
PROMISE = (
    "Syncthing stops pulling below its free-space floor and says so; SQLite keeps its database intact "
    "through SQLITE_FULL. mediasyncd claims: transfers pause with the reason in /status, no partial shows, "
    "nothing corrupt lands, the state DB survives, and everything lands once space returns."
)
LAYOUTS = ("library", "shared", "state")
SMALL_PER_FILE = 3  # small images per 6 MiB file: they take the tar path, the large ones SFTP or tar


@dataclass
class Outcome:
    layout: str
    paused_reason: str | None = None
    audit: Audit = field(default_factory=Audit)
    failed_while_full: int = 0
    landed_after: bool = False
    db_ok: bool = False
    daemon_alive: bool = False
    duplicated_events: int = 0
    lost_events: int = 0
    errors: list[str] = field(default_factory=list)
    seconds_full: float = 0.0
    full_start: str = ""


def run(mode: Mode, work: Path) -> Section:
    files = 2 if mode is Mode.QUICK else 8
    outcomes = []
    with start_sshd(work / "sshd") as server:
        for layout in LAYOUTS:
            outcomes.append(_layout(work / layout, server, layout, files))
    return _section(outcomes, files)


def _layout(work: Path, server: SshServer, layout: str, files: int) -> Outcome:
    work.mkdir()
    out = Outcome(layout)
    disk = work / "disk"
    size = f"{files * 8 + 16}m" if layout != "state" else "24m"
    with tmpfs(disk, size):
        library = disk / "library" if layout != "state" else work / "library"
        state_dir = work / "state" if layout == "library" else disk / "state"
        root = work / "remote" / "outputs"
        root.mkdir(parents=True)
        table = ssh_remote_table(server, "r1", root, watch="auto")  # the default: the agent where it runs
        world = make_world(
            work,
            [table],
            library=library,
            state_dir=state_dir,
            transfer={"concurrency": 4, "bwlimit": "8MiB"},
        )
        for n in range(files):
            world.remote.write(f"v/{n:02d}.mp4", os.urandom(6 * MiB + n * 4096))
        for n in range(SMALL_PER_FILE * files):  # small images: they come in tar streams
            world.remote.write(f"i/{n:02d}.png", os.urandom(300 * 1024 + n))
        filler = disk / "filler.bin"
        daemon = world.daemon()
        with daemon:
            wait_until(lambda: _moving(daemon) > MiB, 30, 0.02)
            fill(filler)
            began = time.monotonic()
            # Whatever happens while it is full: the reason shown, nothing failed, nothing half-visible.
            wait_until(lambda: _paused(daemon) is not None or not daemon.alive(), 10, 0.1)
            time.sleep(0.5)  # still paused, still saying why, a moment later
            out.paused_reason = _paused(daemon) if daemon.alive() else None
            out.failed_while_full = len(world.rows("SELECT id FROM files WHERE state = 'failed'"))
            out.audit.add(audit(world, final=False))
            out.seconds_full = time.monotonic() - began
            filler.unlink()
            out.landed_after = wait_until(lambda: _all_landed(world), 90, 0.2)
            out.daemon_alive = daemon.alive()
            # Another fill while idle and a restart on a full disk: the DB must open and stay whole.
            if out.daemon_alive:
                daemon.stop()
            fill(filler)
            with contextlib.suppress(RuntimeError):
                daemon.start(timeout=15)
                time.sleep(0.5)
            out.full_start = "started" if daemon.stop() == 0 else _last_line(world.work / "run.log")
            filler.unlink()
        out.db_ok = _integrity(world)
        out.audit.add(audit(world, final=True))
        events = audit_events(world)
        out.duplicated_events, out.lost_events = events.duplicated, events.lost
        out.errors = error_lines(world.work / "run.log")
    return out


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return lines[-1] if lines else "(nothing)"


def _moving(daemon: Daemon) -> int:
    return sum(int(f.get("bytes_done", 0)) for f in daemon.remote_status("r1").get("in_flight", []))


def _paused(daemon: Daemon) -> str | None:
    """Why /status says the remote's transfers are paused (the library's or the state DB's disk)."""
    try:
        remote = daemon.remote_status("r1")
    except (OSError, RuntimeError):
        return None
    reason = remote.get("paused")
    return str(reason) if reason else None


def _all_landed(world: World) -> bool:
    remote = world.remote
    return all((world.library / remote.name / rel).is_file() for rel in remote.sources)


def _integrity(world: World) -> bool:
    with contextlib.closing(sqlite3.connect(world.state_dir / "state.db")) as db:
        return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _section(outcomes: list[Outcome], files: int) -> Section:
    figures = []
    notes = [
        f"Each run: {files} files of 6 MiB and {SMALL_PER_FILE * files} of 300 KB (in tar streams) pulled at "
        "8 MiB/s; the filesystem (tmpfs) filled to the last "
        "byte once transfers were under way, held full, then freed; then filled again while the daemon "
        "was stopped, and the daemon started on the full disk."
    ]
    for o in outcomes:
        where = {"library": "library fs full", "shared": "library+state fs full", "state": "state fs full"}[
            o.layout
        ]
        reason_ok = o.paused_reason is not None and ("disk" in o.paused_reason or "space" in o.paused_reason)
        figures += [
            Figure(
                f"{where}: /status says why transfers pause",
                o.paused_reason or "nothing",
                "a reason",
                reason_ok,
            ),
            Figure.zero(f"{where}: partial files visible", o.audit.count("partial")),
            Figure.zero(f"{where}: files corrupt", o.audit.count("corrupt")),
            Figure.zero(f"{where}: files marked failed", o.failed_while_full + o.audit.count("failed")),
            Figure(f"{where}: state DB integrity_check", "ok" if o.db_ok else "damaged", "ok", o.db_ok),
            Figure(
                f"{where}: daemon still running", "yes" if o.daemon_alive else "no", "yes", o.daemon_alive
            ),
            Figure(
                f"{where}: everything landed after space returned",
                "yes" if o.landed_after and not o.audit.count("lost") else f"{o.audit.count('lost')} lost",
                "yes",
                o.landed_after and not o.audit.count("lost"),
            ),
            Figure.zero(
                f"{where}: lost or duplicated file_synced events", o.lost_events + o.duplicated_events
            ),
            Figure.zero(f"{where}: tracebacks in the daemon's log", sum("Traceback" in e for e in o.errors)),
            Figure.info(f"{where}: a start on the full disk", o.full_start),
        ]
        notes += [f"{where}: {e}" for e in o.audit.examples]
        notes += [f"{where}: error line: {e[:200]}" for e in o.errors[:3]]
    return Section(TITLE, PROMISE, len(outcomes), figures, notes)
