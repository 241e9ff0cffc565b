"""A tar stream cancelled mid-archive (its session ending: the state DB's disk full, the link gone, a
stop) ends with the cancel. Unpacking then stops at a cut archive; had that TransferError replaced the
cancel, the worker would have carried on with its cancel lost, and the session would never have ended
(found by bench/faults disk with the library and the state DB on one filesystem)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.sources.tar import Member, unpack_stream
from tests.sources.test_tar_hostile import Forced, archive, regular


class Stalling:
    """The first part of an archive, then nothing: a stream whose other end waits."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = False
        self.stalled = asyncio.Event()

    async def read(self, n: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return self.data
        self.stalled.set()
        await asyncio.Event().wait()
        return b""


@pytest.mark.parametrize("loop", [True, False], ids=["on-loop", "in-thread"])
@pytest.mark.parametrize("exact", [False, True], ids=["own-channel", "reused-shell"])
async def test_a_cancelled_stream_raises_the_cancel_not_a_transfer_error(
    tmp_path: Path, exact: bool, loop: bool
) -> None:
    whole = archive([regular("a.png", b"a" * 3000), regular("b.png", b"b" * 300_000)])
    stream = Stalling(whole[:100_000])  # a.png whole, b.png cut
    got: list[Member] = []
    with ThreadPoolExecutor(2) as pool:
        task = asyncio.create_task(
            unpack_stream(
                stream,
                "/r",
                {"a.png": tmp_path / "a.part", "b.png": tmp_path / "b.part"},
                executor=pool,
                on_member=got.append,
                exact=exact,
                place=Forced(loop),
            )
        )
        await asyncio.wait_for(stream.stalled.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    await asyncio.sleep(0)
    assert [m.rel for m in got] == ["a.png"]
