"""Local folders are watched with watchfiles: a new file lands long before the next poll would find it,
still only once settled, and a root that comes back (a share mounted again) is watched again."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from mediasyncd.daemon import Daemon
from tests.helpers import until
from tests.sources.test_transports_e2e import make_world


async def test_a_new_local_file_lands_on_its_event_not_at_the_next_poll(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """With a 5-minute poll interval, a file written now lands within seconds (settle 0.5 s), a file that
    appears after its root was away and came back too; /status says `watchfiles`."""
    world = make_world(request, tmp_path, "local", poll_interval="5m", settle="0.5s")
    daemon = Daemon(world.config())
    running = asyncio.create_task(daemon.run())
    try:
        status = daemon.view.remote("r1")
        await until(lambda: status.snapshot()["watch_mode"] == "watchfiles")
        await asyncio.sleep(0.5)  # the watch is set up
        world.write("new.png", b"n" * 1000, mtime=time.time())
        took = await until(lambda: "new.png" in world.landed(), within=20)
        assert took < 10
        assert status.snapshot()["transport"] == "local"
        moved = tmp_path / "away"
        await asyncio.to_thread(os.rename, world.root, moved)
        await asyncio.sleep(3.0)  # the roots check sees it gone
        await asyncio.to_thread(os.rename, moved, world.root)
        await asyncio.sleep(3.0)  # ... and back
        world.write("later/back.png", b"b" * 10, mtime=time.time())
        await until(lambda: "later/back.png" in world.landed(), within=20)
    finally:
        daemon.stop.set()
        await running
