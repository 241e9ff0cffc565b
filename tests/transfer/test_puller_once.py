"""`Puller.sync_once` loads the diff base while its source opens: whichever of the two fails, the other
is not left behind (no task still running, the source closed), and the next pass works."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.errors import RemoteError
from mediasyncd.sources import Source, open_source
from tests.transfer.parts import puller_parts


async def test_a_failed_open_or_load_leaves_nothing_behind_and_the_next_pass_lands(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    (root / "a.png").write_bytes(b"a" * 1000)
    table = {"name": "r1", "transport": "local", "roots": [str(root)], "settle": "0s"}
    parts = await puller_parts(tmp_path, table)
    remote, config, store = parts.remote, parts.config, parts.store
    opened: list[Source] = []
    closed: list[Source] = []

    async def refused() -> Source:
        await asyncio.sleep(0)  # the load has started
        raise RemoteError("connection refused")

    async def working() -> Source:
        source = await open_source(remote, config.daemon.state_dir)
        real_close = source.close

        async def close() -> None:
            closed.append(source)
            await real_close()

        source.close = close  # type: ignore[method-assign]
        opened.append(source)
        return source

    puller = parts.puller
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RemoteError, match="refused"):
            await puller(refused, pool).sync_once()
        assert asyncio.all_tasks() == {asyncio.current_task()}

        broken = puller(working, pool)

        async def load_fails(*_: object) -> None:
            raise RuntimeError("state DB unreadable")

        broken.ledger.load = load_fails  # type: ignore[method-assign,assignment]
        with pytest.raises(RuntimeError, match="unreadable"):
            await broken.sync_once()
        assert closed == opened and len(opened) == 1

        counts = await puller(working, pool).sync_once()
    await store.close()
    assert counts.landed == 1 and (tmp_path / "lib" / "r1" / "a.png").read_bytes() == b"a" * 1000
    assert closed == opened and len(opened) == 2
