"""The poll watcher logs an unsafe name once while it stays on the remote, and remembers no more than
the current listing's (a remote that churns through hostile names must not grow the daemon)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from mediasyncd.config import RemoteConfig, load_config
from mediasyncd.sources import RemoteEntry, Source, open_source
from mediasyncd.watchers.poll import PollWatcher
from tests.helpers import write_config


def always_pending(entries: Sequence[RemoteEntry]) -> list[RemoteEntry]:
    return list(entries)


@asynccontextmanager
async def local_remote(tmp_path: Path, root: Path, settle: str) -> AsyncIterator[tuple[RemoteConfig, Source]]:
    """A local-folder remote over `root` and its open source."""
    table = {"name": "r1", "transport": "local", "roots": [str(root)], "settle": settle}
    config = load_config(
        write_config(tmp_path / "config.toml", tmp_path / "lib", tmp_path / "state", [table])
    )
    source = await open_source(config.remotes[0], config.daemon.state_dir)
    try:
        yield config.remotes[0], source
    finally:
        await source.close()


async def test_an_unsafe_name_is_logged_once_while_it_stays_and_again_when_it_comes_back(
    tmp_path: Path,
) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    async with local_remote(tmp_path, root, "0s") as (remote, source):
        watcher = PollWatcher(source, remote, always_pending)
        bad = root / "new\nline.png"
        bad.write_bytes(b"x")
        assert (await watcher.look()).rejected == 1
        assert (await watcher.look()).rejected == 0
        for n in range(50):  # names that come and go are not kept after they went
            (root / f"bell{n}\x07.png").write_bytes(b"x")
        assert (await watcher.look()).rejected == 50
        for n in range(50):
            (root / f"bell{n}\x07.png").unlink()
        bad.unlink()
        assert (await watcher.look()).rejected == 0
        assert not watcher._warned
        bad.write_bytes(b"x")
        assert (await watcher.look()).rejected == 1


async def test_a_one_pass_watcher_keeps_no_settle_map_after_its_pass(tmp_path: Path) -> None:
    """`sync --once` has no next pass to compare with: the files' settle times are not held while its
    transfers run (a first pass of 100,000 files held them all); a daemon's watcher keeps them."""
    root = tmp_path / "outputs"
    root.mkdir()
    for n in range(5):
        (root / f"{n}.png").write_bytes(b"x")
    async with local_remote(tmp_path, root, "1h") as (remote, source):
        for once in (True, False):
            watcher = PollWatcher(source, remote, always_pending, once=once)
            sightings = watcher.sightings()
            sighting = await anext(sightings)
            assert len(sighting.entries) == 5 and len(sighting.waiting or ()) == 5
            if once:
                assert watcher.settle.watching == 0 and [s async for s in sightings] == []
            else:
                assert watcher.settle.watching == 5
                await sightings.aclose()  # type: ignore[attr-defined]  # an async generator
                assert watcher.settle.watching == 5
