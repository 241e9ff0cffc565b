"""`mediasyncd sync --once`: one pass over the chosen remotes, standalone (no daemon, no port bound).

With `--adopt --dry-run` it only tells what the pass would do with files already in the library
(`adopt_dry_run`): it lists and hashes, and writes nothing (the state DB is opened read-only, no lock).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from mediasyncd import __version__
from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import LibraryUnavailable, RemoteError
from mediasyncd.lock import StateLock
from mediasyncd.progress import StatusView
from mediasyncd.sources import open_source
from mediasyncd.state import Store
from mediasyncd.state.reader import current_files
from mediasyncd.transfer.adopt import Survey, survey
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import PassCounts
from mediasyncd.transfer.puller import Puller
from mediasyncd.units import format_size
from mediasyncd.wiring import consumers

log = structlog.get_logger("mediasyncd.sync")


async def sync_once(
    config: Config,
    remotes: Sequence[RemoteConfig],
    *,
    show_progress: bool,
) -> int:
    """Run one pass per remote concurrently; 0 when every settled file landed, 1 otherwise."""
    cfg = config.daemon
    lock = StateLock(cfg.state_dir)
    lock.acquire("sync --once")
    library = Library(cfg.library, config.transfer.file_mode, config.transfer.dir_mode)
    store = Store(cfg.db_path)
    await store.open()
    try:
        library.check_available((await store.totals()).landed_files)
    except LibraryUnavailable:
        await store.close()
        lock.release()
        raise
    view = StatusView(__version__, str(config.path) if config.path else None)
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
    landing_lock = asyncio.Lock()
    space = SpaceGate(library.free_bytes, cfg.library_min_free)
    feeds = consumers(config, store)
    await store.enable_consumers([c.name for c in feeds])

    pullers = [
        Puller(
            r,
            config.transfer,
            library=library,
            store=store,
            status=view.remote(r.name),
            state_dir=cfg.state_dir,
            executor=executor,
            landing_lock=landing_lock,
            space=space,
        )
        for r in remotes
    ]
    try:
        async with asyncio.TaskGroup() as tg:
            feed_tasks = [tg.create_task(c.run()) for c in feeds]
            results = await _run_with_progress(pullers, view, show_progress)
            for c in feeds:
                await c.drain()
            for t in feed_tasks:
                t.cancel()
    finally:
        await store.close()
        executor.shutdown(wait=False)
        lock.release()
    return _report(pullers, results)


async def _one(puller: Puller) -> PassCounts | RemoteError:
    try:
        return await puller.sync_once()
    except RemoteError as exc:
        log.error("remote failed", remote=puller.remote.name, error=str(exc))
        return exc


async def _run_with_progress(
    pullers: list[Puller], view: StatusView, show_progress: bool
) -> list[PassCounts | RemoteError]:
    jobs = asyncio.gather(*(_one(p) for p in pullers))
    if not show_progress:
        return await jobs
    from mediasyncd.cli_progress import ProgressDisplay, RunTotals

    def totals() -> RunTotals:
        counts = [p.counts for p in pullers]
        in_flight = sum(f.bytes_done for r in view.remotes.values() for f in r.in_flight.values())
        return RunTotals(
            files_done=sum(c.landed + c.adopted + c.failed + c.changed + c.waiting_for_space for c in counts),
            files_total=sum(c.taken for c in counts),
            bytes_done=sum(c.landed_bytes + c.adopted_bytes for c in counts) + in_flight,
            bytes_total=sum(c.taken_bytes for c in counts),
        )

    with ProgressDisplay(view, totals) as display:
        while not jobs.done():
            display.refresh()
            await asyncio.wait({jobs}, timeout=0.2)
        display.refresh()
    return await jobs


def _report(pullers: list[Puller], results: list[PassCounts | RemoteError]) -> int:
    code = 0
    for puller, result in zip(pullers, results, strict=True):
        name = puller.remote.name
        if isinstance(result, RemoteError):
            print(f"{name}: FAILED: {result}", file=sys.stderr)
            code = 1
            continue
        line = f"{name}: {result.landed} landed ({format_size(result.landed_bytes)})"
        if result.adopted:
            line += f", {result.adopted} adopted from the library ({format_size(result.adopted_bytes)})"
        if result.mismatched:
            line += f", {result.mismatched} differing from their library copy (landed beside it)"
        if result.failed:
            line += f", {result.failed} failed"
            code = 1
        if result.waiting_for_space:
            line += f", {result.waiting_for_space} waiting for room on the library disk"
            code = 1
        for root in sorted(result.missing_roots):
            print(
                f"{name}: root {root} is missing on the remote (check roots / kind; `mediasyncd doctor` shows what is there)",
                file=sys.stderr,
            )
            code = 1
        if result.skipped_names:
            line += f", {result.skipped_names} unsafe name(s) skipped"
        if result.settling:
            line += (
                f", {result.settling} not settled yet (changed within settle = {puller.remote.settle:g}s:"
                " still being written? the next pass takes them)"
            )
        print(line)
        for failure in result.failures:
            print(f"  failed: {failure}", file=sys.stderr)
    return code


async def adopt_dry_run(config: Config, remotes: Sequence[RemoteConfig]) -> int:
    """What one pass would do with each remote's complete files: how many it would adopt from the library,
    fetch, and find differing from their library copy. Changes nothing; 1 if a remote failed."""
    library = Library(config.daemon.library, config.transfer.file_mode, config.transfer.dir_mode)
    if not library.root.is_dir():  # not check_available(): that creates the library's internal folder
        raise LibraryUnavailable(f"library {library.root} does not exist (is the NAS mounted?)")
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="io")

    async def one(remote: RemoteConfig) -> Survey | RemoteError:
        try:
            index = await asyncio.to_thread(current_files, config.daemon.db_path, remote.name)
            source = await open_source(remote, config.daemon.state_dir, config.transfer)
            try:
                return await survey(source, remote, index, library, executor)
            finally:
                await source.close()
        except RemoteError as exc:
            log.error("remote failed", remote=remote.name, error=str(exc))
            return exc

    try:
        results = await asyncio.gather(*(one(r) for r in remotes))
    finally:
        executor.shutdown(wait=False)
    code = 0
    for remote, result in zip(remotes, results, strict=True):
        if isinstance(result, RemoteError):
            print(f"{remote.name}: FAILED: {result}", file=sys.stderr)
            code = 1
            continue
        print(_survey_line(remote.name, result))
        for rel in result.mismatched:
            print(f"  differs from the remote (same size and mtime, other SHA-256): {rel}")
        if not result.remote_hashes:
            print(
                f"{remote.name}: the remote cannot compute SHA-256 (no shell with openssl or sha256sum): "
                "nothing can be adopted; identical copies are still recognised after the transfer",
                file=sys.stderr,
            )
    return code


def _survey_line(name: str, s: Survey) -> str:
    line = (
        f"{name}: would adopt {s.adopt} ({format_size(s.adopt_bytes)}), "
        f"would fetch {s.fetch} ({format_size(s.fetch_bytes)}), mismatched {len(s.mismatched)}"
    )
    if s.settling:
        line += f", {s.settling} not settled yet"
    return line + " (dry run: nothing changed)"
