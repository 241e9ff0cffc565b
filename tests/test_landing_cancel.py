"""A landing cut short by cancellation (SIGTERM, reload) still records what it renamed; a hash mismatch is
a change or a failure depending on whether the source file moved on."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.progress import RemoteStatus
from mediasyncd.sources.local import LocalSource
from mediasyncd.state import NewFile, Store
from mediasyncd.transfer.landing import Arrival, Library, Plan, Renames
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.transfer.verify import Pulled, Verifier
from tests.sources.test_tar_hostile import Forced


class _SlowLibrary(Library):
    """Renames as usual, then holds the folders' flush (in a thread, wherever the renames ran) until the
    test lets it go; notes the thread of each step."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.renamed = threading.Event()
        self.release = threading.Event()
        self.threads: dict[str, int] = {}

    def plan_batch(self, arrivals: list[Arrival]) -> list[Plan | Exception]:
        self.threads["plan"] = threading.get_ident()
        return super().plan_batch(arrivals)

    def flush_before(self, plans: list[Plan | Exception]) -> None:
        self.threads["flush before"] = threading.get_ident()
        super().flush_before(plans)

    def rename(self, arrivals: list[Arrival], plans: list[Plan | Exception], batch: Renames) -> None:
        self.threads["rename"] = threading.get_ident()
        super().rename(arrivals, plans, batch)

    def flush_after(self, batch: Renames) -> None:
        self.threads["flush after"] = threading.get_ident()
        super().flush_after(batch)
        self.renamed.set()
        self.release.wait(10)


@pytest.mark.parametrize("loop", [True, False], ids=["on-loop", "in-thread"])
async def test_a_cancel_during_the_renames_waits_for_their_record(tmp_path: Path, loop: bool) -> None:
    """Cancelled (twice) while its renames are flushed, a landing still marks the file landed before the
    cancel ends it. The plans and renames run where the write place says; the flushes never on the loop."""
    library = _SlowLibrary(tmp_path / "lib")
    library.root.mkdir()
    library.check_available()
    store = Store(tmp_path / "state.db")
    await store.open()
    executor = ThreadPoolExecutor(max_workers=2)
    try:
        (row,) = await store.add_seen("r1", [NewFile("/out", "a.png", 5, 1_700_000_000.0)])
        partial = library.partial_path("r1", row.id)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"hello")
        digest = hashlib.sha256(b"hello").hexdigest()
        ledger = Ledger("r1", store, RemoteStatus("r1"))
        verifier = Verifier(
            "r1", library=library, ledger=ledger, executor=executor, landing_lock=asyncio.Lock(),
            place=Forced(loop),
        )  # fmt: skip
        task = asyncio.ensure_future(verifier._land_batch([Pulled(row, digest, partial)]))
        await asyncio.get_running_loop().run_in_executor(None, library.renamed.wait, 10)
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()  # a second cancel (a shutdown's bound running out) does not cut the wait short
        await asyncio.sleep(0.05)
        assert not task.done()
        library.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (library.root / "r1" / "a.png").read_bytes() == b"hello"
        stored = await store.get(row.id)
        assert stored is not None and stored.state == "landed"
        assert ledger.counts.landed == 1 and ledger.counts.failed == 0
        here = threading.get_ident()
        on_loop = {step for step, thread in library.threads.items() if thread == here}
        assert on_loop == ({"plan", "rename"} if loop else set()) and len(library.threads) == 4
    finally:
        library.release.set()
        executor.shutdown(wait=True)
        await store.close()


@pytest.mark.parametrize("rewritten", [True, False])
async def test_a_hash_mismatch_is_a_change_when_the_file_moved_on_and_a_failure_when_it_did_not(
    tmp_path: Path, rewritten: bool
) -> None:
    """The source's SHA-256 disagrees with what was received. If the source file is no longer the listed
    version (rewritten while it waited), that is a change — taken again once it settles, no attempt lost;
    if it still is, the received bytes were wrong: the file's own failure."""
    root = tmp_path / "src"
    root.mkdir()
    source_file = root / "a.png"
    source_file.write_bytes(b"listed")
    listed = source_file.stat()
    library = Library(tmp_path / "lib")
    library.root.mkdir()
    library.check_available()
    store = Store(tmp_path / "state.db")
    await store.open()
    executor = ThreadPoolExecutor(max_workers=2)
    try:
        (row,) = await store.add_seen("r1", [NewFile(str(root), "a.png", listed.st_size, listed.st_mtime)])
        partial = library.partial_path("r1", row.id)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"received")  # not what the source holds
        if rewritten:
            source_file.write_bytes(b"rewritten, longer")
        ledger = Ledger("r1", store, RemoteStatus("r1"))
        verifier = Verifier(
            "r1", library=library, ledger=ledger, executor=executor, landing_lock=asyncio.Lock()
        )
        queue: asyncio.Queue[Pulled] = asyncio.Queue()
        queue.put_nowait(Pulled(row, hashlib.sha256(b"received").hexdigest(), partial))
        source = LocalSource([str(root)])
        task = asyncio.create_task(verifier.run(source, queue))
        await asyncio.wait_for(queue.join(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await source.close()
        stored = await store.get(row.id)
        assert stored is not None and not partial.exists()
        assert not (library.root / "r1" / "a.png").exists()
        if rewritten:
            assert (stored.state, stored.attempts, ledger.counts.changed, ledger.counts.failed) == (
                "seen",
                0,
                1,
                0,
            )
        else:
            assert (stored.state, ledger.counts.failed) == ("failed", 1)
            assert any("sha256 mismatch" in f for f in ledger.counts.failures)
    finally:
        executor.shutdown(wait=True)
        await store.close()
