"""The transfer workers pull no further ahead of the landings than the backlog allows (verify.Backlog):
a first pull of many small files held every pulled file in memory while the landings caught up."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.sources import Source, open_source
from mediasyncd.transfer import verify as verify_module
from mediasyncd.transfer.verify import Backlog, Pulled, Verifier
from tests.helpers import remote_table
from tests.sshd import SshServer
from tests.transfer.parts import puller_parts


def pulled(n: int) -> Pulled:
    return Pulled(None, "0" * 64, Path(f"{n}.part"))  # type: ignore[arg-type]  # only counted here


async def test_room_waits_until_enough_files_are_done() -> None:
    backlog = Backlog(3)
    for n in range(3):
        backlog.put_nowait(pulled(n))
    waiting = asyncio.create_task(backlog.room())
    await asyncio.sleep(0.01)
    backlog.get_nowait()  # taken by the verifier: still on its way to landing
    await asyncio.sleep(0.01)
    assert not waiting.done() and backlog.counted == 3
    backlog.task_done()  # landed
    await asyncio.wait_for(waiting, 1)
    assert backlog.counted == 2
    await asyncio.wait_for(backlog.room(), 1)  # below the bound: no wait


BATCH = 5
MOST = 10
STREAMS = 4  # caps.streams of an SSH source at most


async def test_a_pull_of_many_small_files_stays_within_the_backlog(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With landings slowed down, the pulled-and-not-landed files never exceed the bound (plus the
    batches of the streams already started), and every file lands."""
    root = tmp_path / "outputs"
    root.mkdir()
    files = {f"d{i % 3}/img {i}.png": os.urandom(1000 + i) for i in range(60)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_bytes(data)
    monkeypatch.setattr(verify_module, "BACKLOG_MOST", MOST)
    monkeypatch.setattr(verify_module, "LAND_MOST", 4)
    most_counted = 0
    real_put = Backlog.put_nowait

    def put_nowait(self: Backlog, item: Pulled) -> None:
        nonlocal most_counted
        real_put(self, item)
        most_counted = max(most_counted, self.counted)

    monkeypatch.setattr(Backlog, "put_nowait", put_nowait)
    real_land = Verifier._land_batch

    async def slow_land(self: Verifier, items: list[Pulled]) -> None:
        await asyncio.sleep(0.05)  # the landings are the slower end, as they are with tiny files
        await real_land(self, items)

    monkeypatch.setattr(Verifier, "_land_batch", slow_land)
    table = remote_table(sshd, "r1", root, settle="0s")
    parts = await puller_parts(tmp_path, table, transfer={"batch_files": BATCH})
    batches: list[int] = []

    async def opener() -> Source:
        source = await open_source(parts.remote, parts.config.daemon.state_dir)
        real_batch = source.pull_batch

        async def pull_batch(root: str, partials: dict[str, Path], **kw: Any) -> dict[str, str] | None:
            batches.append(len(partials))
            return await real_batch(root, partials, **kw)

        source.pull_batch = pull_batch  # type: ignore[method-assign]
        return source

    with ThreadPoolExecutor(2) as pool:
        counts = await parts.puller(opener, pool).sync_once()
    await parts.store.close()
    assert counts.landed == len(files) and counts.failed == 0
    for rel, data in files.items():
        assert (tmp_path / "lib" / "r1" / rel).read_bytes() == data
    assert len(batches) >= len(files) // BATCH and max(batches) <= BATCH  # small files came in streams
    assert 0 < most_counted <= MOST - 1 + STREAMS * BATCH
