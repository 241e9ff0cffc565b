"""One purge of one remote, executed once: local retention first, then list, plan, hash, delete in
batches, tidy, record.

The only place that turns a `Plan` into remote deletions and a retention `select` into library ones.
The caller owns the connection (a `Source`) and the state DB; this module owns the order of
operations that keeps them consistent: intent -> delete -> mark purged on the remote; check -> delete
-> mark expired in the library (a crash between the last two leaves a purged file's copy unmarked and
missing: counted as already gone, never re-fetched). Every deletion is logged with remote, path, size
and age.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from mediasyncd.config import RemoteConfig
from mediasyncd.digest import sha256_file
from mediasyncd.errors import MediasyncError, UnsafePathError
from mediasyncd.paths import INTERNAL_DIR, check_rel
from mediasyncd.purge.eligibility import VERIFIED_STATES, Local, Reason, RemoteHash, Rules, Seen
from mediasyncd.purge.library_ops import Sweep, expire
from mediasyncd.purge.plan import Doomed, Evidence, Plan, Planner, deletion_order
from mediasyncd.purge.retention import Hold, select
from mediasyncd.sources import Expected, Source
from mediasyncd.sources.commands import BATCH_FILES, batches
from mediasyncd.state.purge import LibraryTotals, PurgeLedger, Tracked
from mediasyncd.state.workflow import StageLedger

HASH_WORKERS = 4


class PurgeError(MediasyncError):
    """A purge run could not complete (library unavailable); nothing was deleted by it."""


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    include_deleted_locally: bool = False
    local_only: bool = False  # only the library's local retention; the remote is not contacted
    record: bool = True  # write the run and per-file outcomes to the state DB
    source: str = "cli"  # 'schedule' | 'cli' | 'api'
    batch_files: int = BATCH_FILES


@dataclass(frozen=True)
class LibraryReport:
    """A run's local retention: what went (or would go) from the library and what stays and why."""

    root: Path
    keep_for: float
    now: float
    sweep: Sweep

    def kept_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(str(hold) for _, hold in self.sweep.held).items()))

    def totals(self) -> LibraryTotals:
        if not self.sweep.expired and not self.sweep.held:
            return LibraryTotals()
        return LibraryTotals(len(self.sweep.expired), self.sweep.freed_bytes, self.kept_counts())


@dataclass
class RunReport:
    remote: str
    dry_run: bool
    plan: Plan
    deleted: list[Doomed] = field(default_factory=list)
    refused: list[Doomed] = field(default_factory=list)
    stamps: dict[int, Stamp] = field(default_factory=dict)  # each hashed library copy's stat, by row id
    run_id: int | None = None
    remote_checked: bool = True  # False for a --local-only run
    library: LibraryReport | None = None  # None when local retention is off

    @property
    def freed_bytes(self) -> int:
        return sum(d.row.size for d in self.deleted)

    def kept_counts(self) -> dict[str, int]:
        counts = self.plan.kept_counts()
        if self.refused:
            counts[str(Reason.DELETE_FAILED)] = counts.get(str(Reason.DELETE_FAILED), 0) + len(self.refused)
        return counts


def rules_for(remote: RemoteConfig, include_deleted_locally: bool = False) -> Rules:
    p = remote.purge
    return Rules(p.older_than, p.preserve, p.min_free, include_deleted_locally)


async def purge_remote(
    remote: RemoteConfig,
    source: Source | None,
    ledger: PurgeLedger,
    library: Path,
    options: RunOptions,
) -> RunReport:
    """Apply `remote`'s local retention to the library, then purge the remote through `source` (None:
    local retention only). Raises RemoteError/PurgeError when the run cannot complete."""
    log = structlog.get_logger("mediasyncd.purge").bind(remote=remote.name)
    run_id = await ledger.start_run(remote.name, options.source, options.dry_run) if options.record else None
    library_report: LibraryReport | None = None
    try:
        if not await asyncio.to_thread((library / INTERNAL_DIR).is_dir):
            raise PurgeError(
                f"library {library} is not available (no {INTERNAL_DIR}/ inside: is the NAS mounted?); "
                "purging nothing"
            )
        library_report = await expire_library(remote, ledger, library, options, log)
        if source is None:
            report = RunReport(remote.name, options.dry_run, Plan(), run_id=run_id, remote_checked=False)
        else:
            report = await _run(remote, source, ledger, library, options, run_id, log)
        report.library = library_report
    except MediasyncError as exc:
        if run_id is not None:
            totals = library_report.totals() if library_report else None
            await ledger.finish_run(run_id, error=str(exc), library=totals)
        log.error("purge failed", error=str(exc), dry_run=options.dry_run)
        raise
    except asyncio.CancelledError:
        # Cancelled (a job's cancel, a stop): the run is closed as such; a batch cut short is resolved by
        # the next run from its recorded intents, as after a crash.
        if run_id is not None:
            totals = library_report.totals() if library_report else None
            await asyncio.shield(ledger.finish_run(run_id, error="cancelled", library=totals))
        log.warning("purge cancelled", dry_run=options.dry_run)
        raise
    if run_id is not None:
        await ledger.finish_run(
            run_id,
            deleted_files=len(report.deleted),
            freed_bytes=report.freed_bytes,
            kept=report.kept_counts(),
            deleted_locally=report.plan.deleted_locally,
            library=library_report.totals() if library_report else None,
        )
    if source is not None:
        freed = report.plan.freed_bytes if options.dry_run else report.freed_bytes
        log.info(
            "purge finished",
            dry_run=options.dry_run,
            **(
                {"would_delete": len(report.plan.delete)}
                if options.dry_run
                else {"deleted": len(report.deleted)}
            ),
            freed_bytes=freed,
            kept=report.kept_counts(),
            deleted_locally=report.plan.deleted_locally,
        )
    return report


_REFUSALS = frozenset({Hold.OUTSIDE, Hold.SYMLINK, Hold.NOT_A_FILE, Hold.UNREADABLE, Hold.DELETE_FAILED})


async def expire_library(
    remote: RemoteConfig,
    ledger: PurgeLedger,
    library: Path,
    options: RunOptions,
    log: structlog.typing.FilteringBoundLogger,
) -> LibraryReport | None:
    """Local retention (`retention` module's rule): delete, or with a dry run list, the library copies
    of purged files landed more than `local_retention` ago. None when retention is off."""
    keep_for = remote.purge.local_retention
    if keep_for <= 0:
        return None
    now = time.time()
    view = await ledger.retention_view(remote.name, landed_before=now - keep_for)
    due, held = select(view.due, remote=remote.name, preserve=remote.purge.preserve, in_use=view.in_use)
    try:
        sweep = await asyncio.to_thread(
            expire,
            library,
            due,
            dry_run=options.dry_run,
            live_by_sha=view.live_by_sha,
            outputs=view.outputs,
            shared_sidecars=view.shared_sidecars,
        )
    except OSError as exc:  # only opening the library itself can fail here; each file's errors are held
        raise PurgeError(f"local retention cannot open the library {library}: {exc.strerror}") from exc
    sweep.held[:0] = held
    if not options.dry_run:
        await ledger.mark_expired([i for e in sweep.expired for i in e.copy.ids])
    for e in sweep.expired:
        log.info(
            "would expire from the library" if options.dry_run else "expired from the library",
            path=e.copy.local_path,
            size=e.copy.size,
            age_s=round(now - e.copy.landed_at),
            with_files=list(e.extras),
        )
    for copy, hold in sweep.held:
        if hold in _REFUSALS:
            log.warning("library copy kept", path=copy.local_path, reason=str(hold))
    report = LibraryReport(library, keep_for, now, sweep)
    log.info(
        "local retention finished",
        dry_run=options.dry_run,
        deleted=len(sweep.expired),
        freed_bytes=sweep.freed_bytes,
        kept=report.kept_counts(),
        already_gone=len(sweep.gone),
    )
    return report


async def _run(
    remote: RemoteConfig,
    source: Source,
    ledger: PurgeLedger,
    library: Path,
    options: RunOptions,
    run_id: int | None,
    log: structlog.typing.FilteringBoundLogger,
) -> RunReport:
    rules = rules_for(remote, options.include_deleted_locally)
    rows = [r for r in await ledger.tracked(remote.name) if r.root in remote.roots]
    listing = await source.list_roots(remote.roots)
    # Ages are measured on the remote's clock (mtimes are its own), but never on one that runs ahead of
    # ours: a container whose clock is years fast would make a render written a minute ago look old.
    now = min(listing.remote_now, time.time()) if listing.remote_now is not None else time.time()
    seen = {e.key: Seen(e.size, e.mtime) for e in listing.entries}
    verified = [r for r in rows if r.state in VERIFIED_STATES and r.local_path]
    local_missing = await asyncio.to_thread(_missing_locally, library, verified)
    stages = StageLedger(ledger.store)
    waiting = await stages.unfinished([r.id for r in verified], remote.purge.after_stages)
    originals = await stages.archived_originals([r.id for r in verified])  # compress replaced these
    free = None
    if rules.min_free > 0:
        free = await _free(source, [r for r in remote.roots if r not in listing.missing_roots])
    planner = Planner(
        rows,
        seen,
        now=now,
        rules=rules,
        free=free,
        local_missing=local_missing,
        missing_roots=listing.missing_roots,
        waiting=waiting,
    )
    stamps: dict[int, Stamp] = {}
    while batch := planner.to_verify():
        planner.record(await _evidence(source, library, batch, rules, stamps, originals))
    plan = planner.plan()
    report = RunReport(remote.name, options.dry_run, plan, run_id=run_id, stamps=stamps)
    if options.record:
        await ledger.mark_purged([r.id for r in plan.confirmed_gone])
        await ledger.clear_intent([r.id for r in plan.still_there])
        await ledger.record_kept(plan.kept)
    for row in plan.confirmed_gone:
        log.info("purge confirmed after interruption", path=row.rel, root=row.root, size=row.size)
    if options.dry_run:
        return report
    if run_id is None:
        raise AssertionError("a real purge is always recorded")
    for paths in batches([d.row.remote_path for d in deletion_order(plan)], max_files=options.batch_files):
        await _delete_batch(source, ledger, report, run_id, paths, library, log)
    for root in remote.roots:
        gone = [d.row.remote_path for d in report.deleted if d.row.root == root]
        await source.remove_empty_dirs(root, gone)
    return report


async def _delete_batch(
    source: Source,
    ledger: PurgeLedger,
    report: RunReport,
    run_id: int,
    paths: Sequence[str],
    library: Path,
    log: structlog.typing.FilteringBoundLogger,
) -> None:
    by_path = {d.row.remote_path: d for d in report.plan.delete}
    doomed = [by_path[p] for p in paths]
    # The remote hashes were taken when the plan was made, possibly minutes ago: a file rewritten since
    # then shows a new size or mtime in this lstat, taken right before its batch is deleted.
    same = await source.still_same([(d.row.remote_path, d.row.size, d.row.mtime) for d in doomed])
    # The library copies were hashed then too: one deleted or edited since must keep its remote copy.
    local_changed = await asyncio.to_thread(_changed_locally, library, doomed, report.stamps)
    kept = [(d, Reason.CHANGED_ON_REMOTE) for d in doomed if d.row.remote_path not in same]
    kept += [
        (d, Reason.LOCAL_CHANGED) for d in doomed if d.row.id in local_changed and d.row.remote_path in same
    ]
    if kept:
        await ledger.record_kept((d.row, reason) for d, reason in kept)
        report.plan.kept.extend((d.row, reason) for d, reason in kept)
        out = {id(d) for d, _ in kept}
        doomed = [d for d in doomed if id(d) not in out]
    await ledger.mark_intent(run_id, [d.row.id for d in doomed])
    log.info("deleting batch", files=len(doomed), bytes=sum(d.row.size for d in doomed))
    # Each file is set aside and re-verified on the remote before it goes (`Source.delete`).
    outcome = await source.delete(
        [Expected(d.row.remote_path, d.row.sha256 or "", d.row.size, d.row.mtime) for d in doomed]
    )
    gone = [d for d in doomed if d.row.remote_path not in outcome.kept]
    changed = [d for d in doomed if d.row.remote_path in outcome.changed]
    refused = [d for d in doomed if d.row.remote_path in outcome.failed]
    await ledger.mark_purged([d.row.id for d in gone])
    await ledger.clear_intent([d.row.id for d in refused], Reason.DELETE_FAILED)
    await ledger.clear_intent([d.row.id for d in changed], Reason.CHANGED_AT_DELETE)
    report.plan.kept.extend((d.row, Reason.CHANGED_AT_DELETE) for d in changed)
    for d in gone:
        log.info(
            "purged",
            path=d.row.rel,
            root=d.row.root,
            size=d.row.size,
            age_s=round(d.age),
            sha256=d.row.sha256,
            for_space=d.for_space,
            detail=True,
        )
    for d in changed:
        log.warning("changed when set aside for deletion: kept", path=d.row.rel, root=d.row.root)
    for d in refused:
        log.warning("remote refused to delete", path=d.row.rel, root=d.row.root, size=d.row.size)
    report.deleted.extend(gone)
    report.refused.extend(refused)


async def _evidence(
    source: Source,
    library: Path,
    rows: Sequence[Tracked],
    rules: Rules,
    stamps: dict[int, Stamp],
    originals: Mapping[int, str | None] | None = None,
) -> Evidence:
    """Re-hash each local copy now (in threads), then ask the remote for the hashes of those still safe.
    Each hashed copy's stat goes into `stamps`, to be checked again right before its deletion. A library
    copy a workflow stage replaced (`originals`: file id -> its archived original) is verified through
    the archive copy instead (SPEC §3.8)."""
    gate = asyncio.Semaphore(HASH_WORKERS)
    archived = originals or {}

    async def local_of(row: Tracked) -> tuple[str | Local, Stamp | None]:
        async with gate:
            if row.id in archived:
                return await asyncio.to_thread(_archived_digest, archived[row.id]), None
            return await asyncio.to_thread(_local_digest, library, row.local_path or "")

    found = await asyncio.gather(*(local_of(r) for r in rows))
    locals_ = [digest for digest, _ in found]
    stamps.update((row.id, stamp) for row, (_, stamp) in zip(rows, found, strict=True) if stamp)
    still: list[Tracked] = []
    for row, local in zip(rows, locals_, strict=True):
        if local == row.sha256 or (local is Local.MISSING and rules.include_deleted_locally):
            still.append(row)
    hashes = await source.sha256([posixpath.join(r.root, r.rel) for r in still]) if still else {}
    evidence: dict[int, tuple[str | Local, str | RemoteHash]] = {}
    for row, local in zip(rows, locals_, strict=True):
        remote: str | RemoteHash = RemoteHash.UNSUPPORTED
        if hashes is not None:
            remote = hashes.get(posixpath.join(row.root, row.rel), RemoteHash.UNREADABLE)
        evidence[row.id] = (local, remote)
    return evidence


Stamp = tuple[int, int, int, int]  # a library copy's (device, inode, size, mtime_ns)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _local_digest(library: Path, local_path: str) -> tuple[str | Local, Stamp | None]:
    """The library copy's SHA-256 and its stat, taken before and after hashing (a copy that changed
    meanwhile is unreadable)."""
    try:
        check_rel(local_path)
        path = library / local_path
        before = _stamp(os.stat(path))
        digest = sha256_file(path)
        if _stamp(os.stat(path)) != before:
            return Local.UNREADABLE, None
        return digest, before
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return Local.MISSING, None
    except (OSError, UnsafePathError):
        return Local.UNREADABLE, None


def _changed_locally(library: Path, doomed: Sequence[Doomed], stamps: dict[int, Stamp]) -> set[int]:
    """Rows whose library copy, hashed when the plan was made, is gone or different now (a copy that was
    already missing, purged with --include-deleted-locally, has no stamp and is not checked)."""
    changed = set()
    for d in doomed:
        stamp = stamps.get(d.row.id)
        if stamp is None:
            continue
        try:
            now = _stamp(os.stat(library / (d.row.local_path or "")))
        except OSError:
            now = None
        if now != stamp:
            changed.add(d.row.id)
    return changed


def _archived_digest(path: str | None) -> str | Local:
    """The archived original's SHA-256 now; unreadable (never "missing": that may purge) when it is not
    there or the archive is not mounted."""
    if path is None:
        return Local.UNREADABLE
    try:
        return sha256_file(Path(path))
    except OSError:
        return Local.UNREADABLE


def _missing_locally(library: Path, rows: Sequence[Tracked]) -> frozenset[int]:
    missing = set()
    for row in rows:
        try:
            check_rel(row.local_path or "")
        except UnsafePathError:
            continue  # reported as unreadable when it is hashed
        if not os.path.isfile(library / (row.local_path or "")):
            missing.add(row.id)
    return frozenset(missing)


async def _free(source: Source, roots: Sequence[str]) -> int | None:
    """The least free space among the filesystems of `roots` (None if no root could be measured)."""
    values = [v for v in [await source.free_space(r) for r in roots] if v is not None]
    return min(values) if values else None
