"""Link: the real sshd behind the emulated WAN link (bench/netem), cut (blackholed) and lossy mid-transfer.

One daemon runs throughout. Each cycle writes large files on the remote, waits until their transfer is
under way, then does one fault: 5 % random loss both ways for a few seconds, or a blackhole (every
packet dropped, as by a dead route: no FIN, no RST). A blackhole longer than the remote's keepalive
allows (keepalive_interval x keepalive_count_max) must break the SSH connection for real: /status must go
`backoff` during it and `connected` after it. A shorter one must be ridden out. In full mode the last
cut lasts 90 s against the default keepalive (15 s x 4), so plain TCP breaks as it would in the field.
At the end every file must have landed verified, once, with no file marked failed or charged an attempt.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.faults.common import (
    Daemon,
    MiB,
    World,
    audit,
    audit_events,
    make_world,
    wait_until,
)
from bench.faults.report import Figure, Mode, Section
from bench.netem.wan import LinkSpec, WanRemote, wan_link

TITLE = "Link: cut and lossy WAN link mid-transfer"
PROMISE = (
    "rsync `--partial` keeps what arrived and a re-run continues from it; OpenSSH's ServerAliveInterval × "
    "CountMax declares a silent link dead. mediasyncd claims: no cut or loss fails a file, transfers resume "
    "from their partials, the remote shows `backoff` and comes back by itself, nothing lands twice."
)
LINK = LinkSpec(rtt_ms=20.0, rate_mbit=80.0, queue_bdp=2.0)
LOSS = 0.05
log = logging.getLogger("bench.faults.link")


@dataclass
class Fault:
    kind: str  # "loss" | "blackhole"
    seconds: float
    breaks: bool = False  # longer than the keepalive allows: the connection must be lost


@dataclass
class Tally:
    breaking: int = 0
    backoff_and_back: int = 0
    ridden_out: int = 0
    survived_short: int = 0
    faults: list[str] = field(default_factory=list)
    resumed_files: int = 0  # what /status counted in a daemon process that was stopped since
    resumed_bytes: int = 0


def plan(mode: Mode, keepalive_s: float) -> list[Fault]:
    """The faults, in order: loss and blackholes alternate; blackholes alternate between shorter and
    longer than the keepalive allows."""
    if mode is Mode.QUICK:
        return [
            Fault("loss", 3.0),
            Fault("blackhole", keepalive_s + 2.5, breaks=True),
            Fault("loss", 3.0),
            Fault("blackhole", 1.5),
        ]
    faults = []
    for i in range(19):
        if i % 2 == 0:
            faults.append(Fault("loss", 4.0))
        elif i % 4 == 1:
            faults.append(Fault("blackhole", keepalive_s + 4.0, breaks=True))
        else:
            faults.append(Fault("blackhole", 2.0))
    return faults


def run(mode: Mode, work: Path) -> Section:
    quick = mode is Mode.QUICK
    interval, count = (0.5, 3) if quick else (1.0, 4)
    keepalive_s = interval * count
    tally = Tally()
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    with wan_link(LINK, sshd_options={"MaxStartups": "100"}) as remote:
        world = _world(work, remote, interval, count)
        with world.daemon() as daemon:
            for cycle, fault in enumerate(plan(mode, keepalive_s)):
                _one(world, daemon, remote, fault, cycle, rng, tally)
            if not quick:  # default keepalive: TCP breaks only after 15 s x 4 of silence
                before = daemon.remote_status("r1")  # its counters start over with the next process
                tally.resumed_files += int(before.get("resumed_files", 0))
                tally.resumed_bytes += int(before.get("resumed_bytes", 0))
                daemon.stop()
                _rewrite_keepalive(world, 15.0, 4)
                daemon.start()
                _one(world, daemon, remote, Fault("blackhole", 90.0, breaks=True), 99, rng, tally)
            landed = wait_until(lambda: _all_landed(world), 180, 0.2)
            status = daemon.remote_status("r1")
        counters = remote.emulator_counters()
    result = audit(world, final=True)
    events = audit_events(world)
    resumed_files = tally.resumed_files + int(status.get("resumed_files", 0))
    resumed_bytes = tally.resumed_bytes + int(status.get("resumed_bytes", 0))
    charged = world.rows("SELECT COUNT(*) FROM files WHERE attempts > 0")[0][0]
    lost_pkts = sum(d.get("lost", 0) for d in counters.values())
    holed = sum(d.get("blackholed", 0) for d in counters.values())
    figures = [
        Figure(
            "every file landed verified",
            "yes" if landed and not result.count("lost") else "no",
            "yes",
            landed and not result.count("lost"),
        ),
        Figure.zero("files lost", result.count("lost")),
        Figure.zero("files corrupt (SHA-256 against the source)", result.count("corrupt")),
        Figure.zero("files landed twice", result.count("duplicated") + events.duplicated),
        Figure.zero("partial files visible in the library", result.count("partial")),
        Figure.zero("files marked failed", result.count("failed") + int(status.get("failed_files", 0))),
        Figure.zero("files charged a failed attempt", charged),
        Figure(
            "cuts longer than the keepalive: /status went backoff and back to connected",
            f"{tally.backoff_and_back} of {tally.breaking}",
            "all",
            tally.backoff_and_back == tally.breaking > 0,
        ),
        Figure.at_least("transfers resumed from their partial", resumed_files, 1),
        Figure.info("bytes resumed from partials (not fetched again)", resumed_bytes),
        Figure.info("shorter cuts and loss spells ridden out on the same connection", tally.ridden_out),
        Figure.info("packets lost at random / blackholed by the link", f"{lost_pkts:,} / {holed:,}"),
    ]
    notes = [
        f"Link: {LINK.rtt_ms:g} ms RTT, {LINK.rate_mbit:g} Mbit/s, {LINK.queue_bdp:g} BDP queue; loss {LOSS:.0%} "
        f"both ways; keepalive {interval:g} s × {count} in the cycles"
        + ("" if quick else ", the default 15 s × 4 for the last, 90-second cut")
        + f"; {len(world.remote.sources)} files of 6–10 MiB.",
        "faults in order: " + ", ".join(tally.faults),
    ]
    return Section(TITLE, PROMISE, len(tally.faults), figures, notes)


def _world(work: Path, remote: WanRemote, interval: float, count: int) -> World:
    root = work / "remote" / "outputs"
    root.mkdir(parents=True)
    table: dict[str, Any] = {
        "name": "r1",
        "host": remote.host,
        "port": remote.port,
        "user": remote.user,
        "identity_file": str(remote.key_path),
        "known_hosts": str(remote.known_hosts_path),
        "kind": "generic",
        "roots": [str(root)],
        "poll_interval": "0.5s",
        "settle": "0s",
        "watch": "auto",  # the default: the remote agent
        "connect_timeout": "3s",
        "keepalive_interval": interval,
        "keepalive_count_max": count,
    }
    return make_world(work, [table], transfer={"concurrency": 4})


def _rewrite_keepalive(world: World, interval: float, count: int) -> None:
    text = world.config_path.read_text().splitlines()
    out = [
        f"keepalive_interval = {interval}"
        if line.startswith("keepalive_interval")
        else f"keepalive_count_max = {count}"
        if line.startswith("keepalive_count_max")
        else line
        for line in text
    ]
    world.config_path.write_text("\n".join(out) + "\n")


def _one(
    world: World,
    daemon: Daemon,
    remote: WanRemote,
    fault: Fault,
    cycle: int,
    rng: random.Random,
    tally: Tally,
) -> None:
    for n in range(2):
        world.remote.write(f"c{cycle:03d}/{n}.mp4", os.urandom(6 * MiB + rng.randrange(4 * MiB)))
    wait_until(lambda: daemon.remote_status("r1").get("state") == "connected", 60, 0.1)
    wait_until(lambda: _moving(daemon) > MiB, 30, 0.05)
    log.info("cycle %d: %s for %.1f s", cycle, fault.kind, fault.seconds)
    tally.faults.append(f"{fault.kind} {fault.seconds:g} s")
    states: set[str] = set()
    started = time.monotonic()
    if fault.kind == "loss":
        remote.set_loss(LOSS)
    else:
        remote.set_blackhole(True)
    try:
        while time.monotonic() - started < fault.seconds:
            states.add(str(daemon.remote_status("r1").get("state")))
            time.sleep(0.1)
    finally:
        remote.set_loss(0.0)
        remote.set_blackhole(False)
    if fault.breaks:
        tally.breaking += 1
        back = wait_until(lambda: daemon.remote_status("r1").get("state") == "connected", 60, 0.1)
        if "backoff" in states and back:
            tally.backoff_and_back += 1
    elif states <= {"connected"}:
        tally.ridden_out += 1


def _moving(daemon: Daemon) -> int:
    return sum(int(f.get("bytes_done", 0)) for f in daemon.remote_status("r1").get("in_flight", []))


def _all_landed(world: World) -> bool:
    remote = world.remote
    return all((world.library / remote.name / rel).is_file() for rel in remote.sources)
