"""A purge run inside the daemon takes its files out of the puller's diff base at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mediasyncd.daemon import Daemon
from mediasyncd.purge.runner import RunOptions
from mediasyncd.purge.scheduler import PurgeScheduler
from tests.helpers import until
from tests.sources.test_transports_e2e import make_world


async def test_files_purged_by_the_daemon_leave_the_pullers_index(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Without this the index kept every file the daemon ever landed until it restarted: the slow growth
    a one-hour soak purging every five minutes showed (bench/faults/soak.py)."""
    world = make_world(request, tmp_path, "local", poll_interval="1s")
    names = [f"old/{n:03d}.png" for n in range(20)]
    for rel in names:
        world.write(rel, rel.encode() * 100)
    daemon = Daemon(world.config())
    running = asyncio.create_task(daemon.run())
    try:
        await until(lambda: set(world.landed()) == set(names))
        puller = daemon._fleet.pullers()["r1"] if daemon._fleet else None
        assert puller is not None
        # recorded landed in the state DB, not only renamed into the library (the renames come first): a
        # purge planned between the two finds them not verified yet
        await until(lambda: puller.status.landed_files == len(names))
        assert len(puller.ledger.index) == len(names)
        scheduler = next(s for s in daemon._services if isinstance(s, PurgeScheduler))
        report = await scheduler.purge("r1", RunOptions(source="api"))
        assert len(report.deleted) == len(names)
        assert len(puller.ledger.index) == 0
        world.write("new.png", b"n" * 100, mtime=time.time() - 3600)
        await until(lambda: "new.png" in world.landed())
        assert len(puller.ledger.index) == 1
        assert set(world.landed()) == {*names, "new.png"}  # nothing purged was pulled again
    finally:
        daemon.stop.set()
        await running
