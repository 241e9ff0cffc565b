"""The poll watcher logs an unsafe name once while it stays on the remote, and remembers no more than
the current listing's (a remote that churns through hostile names must not grow the daemon)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mediasyncd.config import load_config
from mediasyncd.sources import RemoteEntry, open_source
from mediasyncd.watchers.poll import PollWatcher
from tests.helpers import write_config


def always_pending(entries: Sequence[RemoteEntry]) -> list[RemoteEntry]:
    return list(entries)


async def test_an_unsafe_name_is_logged_once_while_it_stays_and_again_when_it_comes_back(
    tmp_path: Path,
) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    table = {"name": "r1", "transport": "local", "roots": [str(root)], "settle": "0s"}
    config = load_config(
        write_config(tmp_path / "config.toml", tmp_path / "lib", tmp_path / "state", [table])
    )
    remote = config.remotes[0]
    source = await open_source(remote, config.daemon.state_dir)
    try:
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
    finally:
        await source.close()
