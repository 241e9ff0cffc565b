"""Crash: kill -9 of `mediasyncd run` at random moments during busy pulls, purge batches, pipeline work
and sink delivery, against a real sshd, a real webhook receiver and the real media pipeline.

Each cycle writes new files on the remote (a few large ones, so transfers are in flight and resume from
partials, and small generated images, so tar batches, the pipeline and the sinks have work), starts the
daemon, starts the phase's work (a purge through the API for the purge phase), waits until that work is
visibly under way (/status, the state DB), waits a random moment more and kills the daemon with SIGKILL.
Then, before the next start, it counts what the crash left: processes the daemon had started that are
still alive, and the audit of the library, the remote and the event log. At the end one daemon runs
until everything has landed, been processed, delivered and purged, and the same counts are taken again,
now including what never landed.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.faults.common import (
    Audit,
    Daemon,
    EventAudit,
    Hook,
    MiB,
    World,
    audit,
    audit_events,
    error_lines,
    make_world,
    ssh_remote_table,
    wait_until,
    webhook_sink,
)
from bench.faults.report import Figure, Mode, Section
from mediasyncd.demo.images import write_forge_image
from tests.postgres import PgServer, find_bin
from tests.sshd import SshServer, session_pids, start_sshd

TITLE = "Crash: kill -9 of `mediasyncd run`"
PROMISE = (
    "PostgreSQL survives a power cut at any instant; Syncthing and rsync `--partial` show a file only "
    "once complete (temp file + rename); rclone `move` deletes a source only after a checked copy. "
    "mediasyncd claims all three, and that its event log has each landed file exactly once."
)
PHASES = ("pulls", "purge", "pipeline", "sinks")
PG_SCHEMA = "faults"
BIG = 3 * MiB
SEEN_WITHIN = 4.0  # seconds to wait for the phase's work to show before killing anyway


def run(mode: Mode, work: Path) -> Section:
    kills = 100 if mode is Mode.FULL else 20
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(start_sshd(work / "sshd", extra_config="MaxStartups 100\n"))
        hook = stack.enter_context(Hook(delay=0.003))
        pg = stack.enter_context(postgres()) if mode is Mode.FULL else None  # its start-up is seconds
        world = _world(work, server, hook, pg)
        section = _cycles(world, server, hook, kills, rng, seed)
        if pg is not None:
            section.figures[10:10] = _pg_figures(world, pg)
        else:
            section.notes.append("Quick mode: the webhook sink only; full mode adds a PostgreSQL sink.")
        return section


@contextlib.contextmanager
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL (tests/postgres.py) for the whole scenario, removed after it."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries are missing: run scripts/setup --dev")
    server = PgServer(bin_dir)
    server.init()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def _pg_figures(world: World, pg: PgServer) -> list[Figure]:
    """Every event the PostgreSQL sink takes stored exactly once; every landed file's row, once, with
    its SHA-256 (the sink's tables, read with psql)."""
    wanted = {r[0] for r in world.rows("SELECT id FROM events WHERE sink IS NULL OR sink = 'db'")}
    wait_until(lambda: len(_pg_ids(pg)) >= len(wanted), 60, 0.5)
    ids = _pg_ids(pg)
    rows = [
        tuple(line.split("|"))
        for line in pg.psql(f"SELECT remote, path, sha256 FROM {PG_SCHEMA}.mediasyncd_files").splitlines()
        if line
    ]
    landed = {
        (r[0], r[1], r[2])
        for r in world.rows(
            "SELECT remote, rel, sha256 FROM files WHERE state IN ('landed', 'processed', 'purged')"
        )
    }
    return [
        Figure.zero("events never stored by the PostgreSQL sink", len(wanted - set(ids))),
        Figure.zero("events stored twice by the PostgreSQL sink", len(ids) - len(set(ids))),
        Figure.zero(
            "landed files whose PostgreSQL row is missing, wrong or twice",
            len(landed ^ set(rows)) + len(rows) - len(set(rows)),
        ),
    ]


def _pg_ids(pg: PgServer) -> list[int]:
    try:
        out = pg.psql(f"SELECT id FROM {PG_SCHEMA}.mediasyncd_events")
    except RuntimeError:  # the tables are not there yet
        return []
    return [int(line) for line in out.splitlines() if line]


def _world(work: Path, server: SshServer, hook: Hook, pg: PgServer | None) -> World:
    root = work / "remote" / "outputs"
    root.mkdir(parents=True)
    table = ssh_remote_table(  # the default watch mode: the agent
        server, "r1", root, watch="auto", purge={"older_than": "30m", "schedule": "0 0 1 1 *"}
    )
    return make_world(
        work,
        [table],
        transfer={"concurrency": 4, "bwlimit": "12MiB", "in_flight": "8MiB"},
        pipeline={"enabled": True, "workers": 1, "video_thumbnails": False, "thumb_size": 64},
        sinks=[webhook_sink(hook, work / "hook.secret", batch=1)]
        + (
            [{"name": "db", "type": "postgresql", "dsn": pg.dsn, "schema": PG_SCHEMA, "batch": 50}]
            if pg
            else []
        ),
    )


def _add_files(world: World, rng: random.Random, cycle: int) -> None:
    """New work on the remote: two large files (in flight at the kill, resumed after) and a handful of
    small generated images (tar batches, pipeline, events)."""
    remote = world.remote
    for n in range(2):
        remote.write(f"big/c{cycle:03d}-{n}.mp4", os.urandom(BIG + rng.randrange(MiB)))
    for n in range(4):
        image = write_forge_image(remote.root, cycle * 100 + n, rng, size=48)
        rel = str(image.relative_to(remote.root))
        remote.write(rel, image.read_bytes())  # recorded (and re-written atomically with an old mtime)


def _busy(world: World, daemon: Daemon, hook: Hook, phase: str, job: list[str]) -> bool:
    """Whether the phase's work is under way now."""
    if phase == "pulls":
        return bool(daemon.remote_status("r1").get("in_flight"))
    if phase == "purge":
        if not job:
            return False
        state = daemon.api("GET", f"/api/v1/jobs/{job[0]}")["job"]["state"]
        return bool(state == "running")
    if phase == "pipeline":
        synced = world.rows("SELECT MAX(id) FROM events WHERE type = 'file_synced'")[0][0] or 0
        acked = world.rows("SELECT acked_id FROM consumers WHERE name = 'pipeline'")
        return bool(acked) and acked[0][0] < synced
    # Sink delivery: an event the sink takes is in the log and not yet at the receiver.
    wanted = world.rows("SELECT MAX(id) FROM events WHERE sink IS NULL OR sink = 'hook'")[0][0] or 0
    return bool(daemon.status().get("sinks")) and wanted > max(hook.received(), default=0)


def _cycles(
    world: World, server: SshServer, hook: Hook, kills: int, rng: random.Random, seed: int
) -> Section:
    total = Audit()
    helpers_left = 0
    remote_left = 0
    unseen: Counter[str] = Counter()
    lost_events = dup_events = orphan_events = 0
    left_examples: list[str] = []
    for cycle in range(kills):
        phase = PHASES[cycle % len(PHASES)]
        _add_files(world, rng, cycle)
        seen, left, described, remote = _kill_once(world, server, hook, phase, rng)
        unseen[phase] += not seen
        helpers_left += left
        left_examples += described
        remote_left += remote
        total.add(audit(world, final=False, sidecars=True))
        events = audit_events(world, cli=False)
        lost_events += events.lost
        dup_events += events.duplicated
        orphan_events += events.orphaned

    converged, final, final_events, hook_lost, hook_dups, errors = _finish(world, hook)
    total.add(final)
    notes = [
        f"{kills} kills, {kills // len(PHASES)} in each phase ({', '.join(PHASES)}); random seed {seed}; "
        f"{len(world.remote.sources)} files written on the remote ({sum(1 for r in world.remote.sources if r.startswith('big/'))} "
        f"of 3–4 MiB at a 12 MiB/s bwlimit, the rest small images through tar batches and the pipeline).",
        "Counts after a kill are taken before the next start (what a restart begins from); a problem "
        "seen after several kills counts once. Lost files are counted once everything had time to land.",
    ]
    if any(unseen.values()):
        notes.append(
            "kills whose phase's work did not show within 4 s (killed anyway): "
            + ", ".join(f"{p} {n}" for p, n in sorted(unseen.items()) if n)
        )
    notes += [f"found: {e}" for e in total.examples]
    notes += [f"left behind: {e}" for e in left_examples[:5]]
    notes += [f"error line: {e[:200]}" for e in errors[:5]]
    figures = [
        Figure.zero("partial files visible in the library", total.count("partial")),
        Figure.zero("files lost", total.count("lost")),
        Figure.zero("files duplicated", total.count("duplicated")),
        Figure.zero("files corrupt (SHA-256 against the source)", total.count("corrupt")),
        Figure.zero("unverified deletions on the remote", total.count("unverified")),
        Figure.zero("files marked failed", total.count("failed")),
        Figure.zero("landed files without their file_synced event", lost_events + final_events.lost),
        Figure.zero("duplicated file_synced events", dup_events + final_events.duplicated),
        Figure.zero("file_synced events for files not landed", orphan_events + final_events.orphaned),
        Figure.zero("events never delivered to the webhook sink", hook_lost),
        Figure.zero("helper processes of the killed daemon left behind (5 s)", helpers_left),
        Figure.zero("remote session processes left behind (5 s)", remote_left),
        Figure.zero("error lines in the log of the run after the last kill", len(errors)),
        Figure("converged after the last kill", "yes" if converged else "no", "yes", converged),
        Figure.info("webhook deliveries repeated after a kill (at-least-once; same event id)", hook_dups),
        Figure.info("file_synced events in the log", final_events.synced),
    ]
    return Section(TITLE, PROMISE, kills, figures, notes)


def _kill_once(
    world: World, server: SshServer, hook: Hook, phase: str, rng: random.Random
) -> tuple[bool, int, list[str], int]:
    """Start the daemon, start the phase's work, wait until it shows, wait a random moment more, kill -9.
    Returns whether the work showed, the daemon's processes alive 5 s after the kill (and what they
    were), and the remote session processes of its connections still alive then."""
    daemon = world.daemon()
    daemon.start()
    job: list[str] = []
    if phase == "purge":
        wait_until(lambda: not daemon.remote_status("r1").get("in_flight") and _landed_some(world), 10)
        job.append(daemon.api("POST", "/api/v1/purge", {"remote": "r1", "dry_run": False})["job"]["id"])
    seen = wait_until(lambda: _busy(world, daemon, hook, phase, job), SEEN_WITHIN, 0.02)
    time.sleep(rng.uniform(0.0, 0.4))
    sessions = set(session_pids(server))
    left, described = daemon.kill9()
    # The remote side: every session process of the killed daemon's connections ends by itself.
    wait_until(lambda: not set(session_pids(server)) & sessions, 5, 0.05)
    return seen, left, described, len(set(session_pids(server)) & sessions)


def _landed_some(world: World) -> bool:
    return bool(world.rows("SELECT 1 FROM files WHERE state IN ('landed', 'processed') LIMIT 1"))


def _finish(world: World, hook: Hook) -> tuple[bool, Audit, EventAudit, int, int, list[str]]:
    """Run once more until everything landed, was processed, delivered and purged; then audit."""
    daemon = world.daemon("final.log")
    with daemon:
        done = wait_until(lambda: _all_landed(world) and _caught_up(world), 120, 0.2)
        job = daemon.api("POST", "/api/v1/purge", {"remote": "r1", "dry_run": False})["job"]["id"]
        wait_until(lambda: daemon.api("GET", f"/api/v1/jobs/{job}")["job"]["state"] != "running", 60, 0.2)
        done = done and wait_until(lambda: _caught_up(world) and _delivered(world, hook), 60, 0.2)
    final = audit(world, final=True, sidecars=True)
    events = audit_events(world)
    wanted = {r[0] for r in world.rows("SELECT id FROM events WHERE sink IS NULL OR sink = 'hook'")}
    got = Counter(hook.received())
    lost = len(wanted - set(got))
    dups = sum(n - 1 for n in got.values() if n > 1)
    errors = error_lines(world.work / "final.log")
    return done, final, events, lost, dups, errors


def _all_landed(world: World) -> bool:
    remote = world.remote
    return all((world.library / remote.name / rel).is_file() for rel in remote.sources)


def _caught_up(world: World) -> bool:
    last = world.rows("SELECT MAX(id) FROM events")[0][0] or 0
    acked = [r[0] for r in world.rows("SELECT acked_id FROM consumers WHERE enabled = 1")]
    return bool(acked) and min(acked) >= last


def _delivered(world: World, hook: Hook) -> bool:
    wanted = {r[0] for r in world.rows("SELECT id FROM events WHERE sink IS NULL OR sink = 'hook'")}
    return wanted <= set(hook.received())
