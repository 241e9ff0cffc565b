"""How the verifier gathers pulled files into one remote hash command: a daemon waits VERIFY_WAIT for
more; one pass (`sync --once`) waits only while transfers are still running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.progress import RemoteStatus
from mediasyncd.state import NewFile, Store
from mediasyncd.transfer import verify as verify_module
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.transfer.verify import Pulled, Verifier

WAIT = 3.0  # VERIFY_WAIT for these tests: long enough that waiting it out cannot pass unnoticed


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Verifier, list[Pulled]]]:
    store = Store(tmp_path / "state.db")
    await store.open()
    rows = await store.add_seen("r1", [NewFile("/out", f"{i}.png", 5, 1_700_000_000.0) for i in range(2)])
    library = Library(tmp_path / "lib")
    with ThreadPoolExecutor(1) as executor:
        verifier = Verifier(
            "r1", library=library, ledger=Ledger("r1", store, RemoteStatus("r1")), executor=executor,
            landing_lock=asyncio.Lock(),
        )  # fmt: skip
        yield verifier, [Pulled(row, "0" * 64, tmp_path / f"{row.id}.part") for row in rows]
    await store.close()


async def _gather(
    verifier: Verifier, first: Pulled, later: Pulled | None, after: float
) -> tuple[list[Pulled], float]:
    queue: asyncio.Queue[Pulled] = asyncio.Queue()
    queue.put_nowait(first)
    if later is not None:
        asyncio.get_running_loop().call_later(after, queue.put_nowait, later)
    started = time.monotonic()
    batch = await verifier._gather_batch(queue)
    return batch, time.monotonic() - started


async def test_one_pass_with_the_transfers_done_sends_the_batch_at_once(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of a `sync --once` (nothing queued or in flight) the last files are hashed at once,
    not after VERIFY_WAIT."""
    monkeypatch.setattr(verify_module, "VERIFY_WAIT", WAIT)
    verifier, (a, _) = parts
    verifier.more_coming = lambda: False
    batch, took = await _gather(verifier, a, None, 0)
    assert batch == [a] and took < WAIT / 3


async def test_one_pass_with_transfers_running_still_gathers(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While transfers run, a file verified a moment later joins the same batch (one remote command)."""
    monkeypatch.setattr(verify_module, "VERIFY_WAIT", WAIT)
    verifier, (a, b) = parts
    done = asyncio.Event()  # the transfers end a moment after the second file is verified
    verifier.more_coming = lambda: not done.is_set()
    asyncio.get_running_loop().call_later(0.4, done.set)
    batch, took = await _gather(verifier, a, b, 0.2)
    assert batch == [a, b] and took < WAIT / 3


async def test_a_daemon_gathers_for_verify_wait(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon (no one-pass signal) waits VERIFY_WAIT for more, whatever its transfers do."""
    monkeypatch.setattr(verify_module, "VERIFY_WAIT", 0.5)
    verifier, (a, b) = parts
    assert verifier.more_coming is None
    batch, _ = await _gather(verifier, a, b, 0.2)
    assert batch == [a, b]


async def test_one_pass_gathers_past_verify_wait_while_transfers_run(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one pass a file verified after VERIFY_WAIT, while transfers still run, joins the same batch
    (ONE_PASS_VERIFY_WAIT): fewer remote hash commands, each a hasher process per folder."""
    monkeypatch.setattr(verify_module, "VERIFY_WAIT", 0.05)
    monkeypatch.setattr(verify_module, "ONE_PASS_VERIFY_WAIT", WAIT)
    verifier, (a, b) = parts
    done = asyncio.Event()
    verifier.more_coming = lambda: not done.is_set()
    asyncio.get_running_loop().call_later(0.6, done.set)
    batch, took = await _gather(verifier, a, b, 0.3)
    assert batch == [a, b] and took < WAIT / 3


async def test_one_pass_sends_a_large_batch_after_verify_wait(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that already holds ONE_PASS_VERIFY_BYTES goes after VERIFY_WAIT even in one pass: a large
    file is hashed while the pull goes on, not at its end."""
    monkeypatch.setattr(verify_module, "VERIFY_WAIT", 0.05)
    monkeypatch.setattr(verify_module, "ONE_PASS_VERIFY_WAIT", WAIT)
    monkeypatch.setattr(verify_module, "ONE_PASS_VERIFY_BYTES", 5)  # the fixture's files are 5 bytes
    verifier, (a, b) = parts
    done = asyncio.Event()
    verifier.more_coming = lambda: not done.is_set()
    asyncio.get_running_loop().call_later(0.6, done.set)
    batch, took = await _gather(verifier, a, b, 0.3)
    assert batch == [a] and took < 0.3


async def test_verified_files_land_in_batches_of_at_most_land_most(
    parts: tuple[Verifier, list[Pulled]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files verified faster than they land (their hashes came with the stream) wait together for
    LAND_GATHER, but a landing takes at most LAND_MOST of them (about: one verified batch more): the
    rest waits for the next, so a first pull of many small files does not land (and hold) all at once."""
    monkeypatch.setattr(verify_module, "LAND_MOST", 4)
    verifier, (a, b) = parts
    verifier.more_coming = lambda: True
    landing: asyncio.Queue[list[Pulled]] = asyncio.Queue()
    for _ in range(5):
        landing.put_nowait([a, b])
    started = time.monotonic()
    first = await verifier._gather_landing(landing)
    assert len(first) == 4 and landing.qsize() == 3
    assert time.monotonic() - started < verify_module.LAND_GATHER / 2  # full: it goes at once
