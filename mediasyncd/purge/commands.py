"""`mediasyncd purge [--dry-run] [--include-deleted-locally] [--local-only] [REMOTE...]`: one purge run
per remote, with the library's local retention first (`--local-only`: that alone, no connection).

Prints exactly what goes (or would go) and what stays and why, with totals. Exit status 0 when every
run completed (files kept for a reason are not errors), 1 when a run could not complete. A dry run only
reads the state DB, so it may run beside the daemon; a real run takes the state directory's lock.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import EXIT_CONFIG, MediasyncError
from mediasyncd.lock import StateLock
from mediasyncd.purge.eligibility import Reason
from mediasyncd.purge.runner import LibraryReport, RunOptions, RunReport
from mediasyncd.purge.session import purge_once
from mediasyncd.state import Store
from mediasyncd.state.purge import PurgeLedger
from mediasyncd.units import format_size


def purge_main(
    config: Config,
    remotes: Sequence[str],
    *,
    dry_run: bool,
    include_deleted_locally: bool,
    local_only: bool = False,
) -> int:
    unknown = set(remotes) - {r.name for r in config.remotes}
    if unknown:
        print(f"mediasyncd: unknown remote(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_CONFIG
    chosen = [r for r in config.remotes if not remotes or r.name in remotes]
    real = [r for r in chosen if not (dry_run or r.purge.dry_run)]
    lock = StateLock(config.daemon.state_dir)
    if real:
        lock.acquire("purge")
    try:
        options = RunOptions(
            dry_run=dry_run,
            include_deleted_locally=include_deleted_locally,
            local_only=local_only,
            source="cli",
        )
        return asyncio.run(_purge_all(config, chosen, options))
    finally:
        lock.release()


async def _purge_all(config: Config, remotes: Sequence[RemoteConfig], options: RunOptions) -> int:
    store = Store(config.daemon.db_path)
    await store.open()
    ledger = PurgeLedger(store)
    try:
        if any(not (options.dry_run or r.purge.dry_run) for r in remotes):
            await ledger.close_abandoned()
        outcomes = await asyncio.gather(*(_one(config, r, ledger, options) for r in remotes))
    finally:
        await store.close()
    return 0 if all(outcomes) else 1


async def _one(config: Config, remote: RemoteConfig, ledger: PurgeLedger, options: RunOptions) -> bool:
    dry = options.dry_run or remote.purge.dry_run
    try:
        report = await purge_once(config, remote, ledger, replace(options, dry_run=dry, record=not dry))
    except MediasyncError as exc:
        print(f"{remote.name}: FAILED: {exc}", file=sys.stderr)
        return False
    note = " (purge.dry_run = true in the config)" if dry and not options.dry_run else ""
    print("\n".join(render(report)) + note, flush=True)
    return True


def render(report: RunReport) -> list[str]:
    """The report as text: one line per file that goes or stays, then the totals; the library's
    local retention first, then the remote."""
    lines = render_library(report.remote, report.library, report.dry_run)
    if report.remote_checked:
        lines += _render_remote(report)
    elif report.library is None:
        lines.append(f'{report.remote}: local retention is off ([purge] local_retention = "0")')
    return lines


def render_library(name: str, library: LibraryReport | None, dry_run: bool) -> list[str]:
    """Local retention's lines: each library copy that goes or stays (and why), then the totals."""
    if library is None:
        return []
    sweep = library.sweep
    verb = "would delete from the library" if dry_run else "deleted from the library"
    lines: list[str] = []
    for e in sorted(sweep.expired, key=lambda e: e.copy.local_path):
        age = _age(library.now - e.copy.landed_at)
        with_ = f"; with {', '.join(e.extras)}" if e.extras else ""
        path = library.root / e.copy.local_path
        lines.append(f"{name}: {verb} {path} ({format_size(e.copy.size)}, landed {age} ago{with_})")
    for copy, hold in sorted(sweep.held, key=lambda k: (str(k[1]), k[0].local_path)):
        lines.append(f"{name}: keep in the library {library.root / copy.local_path}: {hold.text}")
    kept = library.kept_counts()
    summary = ", ".join(f"{k} {v}" for k, v in kept.items()) or "none"
    size = format_size(sweep.freed_bytes)
    if dry_run:
        total = f"{len(sweep.expired)} file(s) would be deleted, {size} would be freed"
    else:
        total = f"{len(sweep.expired)} file(s) deleted, {size} freed"
    retention = f"local_retention {_age(library.keep_for)}"
    lines.append(f"{name}: library ({retention}): {total}; kept {sum(kept.values())} ({summary})")
    if sweep.gone:
        lines.append(f"{name}: library: {len(sweep.gone)} old purged file(s) were already gone from it")
    return lines


def _render_remote(report: RunReport) -> list[str]:
    plan = report.plan
    name = report.remote
    lines: list[str] = []
    doomed = plan.delete if report.dry_run else report.deleted
    verb = "would delete" if report.dry_run else "deleted"
    for d in sorted(doomed, key=lambda d: d.row.remote_path):
        why = ", to free space" if d.for_space else ""
        lines.append(
            f"{name}: {verb} {d.row.remote_path} ({format_size(d.row.size)}, {_age(d.age)} old{why})"
        )
    for d in report.refused:
        lines.append(f"{name}: keep {d.row.remote_path}: {Reason.DELETE_FAILED.text}")
    for row, reason in sorted(plan.kept, key=lambda k: (str(k[1]), k[0].remote_path)):
        lines.append(f"{name}: keep {row.remote_path}: {reason.text}")
    for row in plan.confirmed_gone:
        lines.append(f"{name}: already gone {row.remote_path} (deleted by an interrupted run)")
    kept = report.kept_counts()
    summary = ", ".join(f"{k} {v}" for k, v in kept.items()) or "none"
    if report.dry_run:
        total = f"{len(plan.delete)} file(s) would be deleted, {format_size(plan.freed_bytes)} would be freed"
    else:
        total = f"{len(report.deleted)} file(s) deleted, {format_size(report.freed_bytes)} freed"
    lines.append(f"{name}: {total}; kept {sum(kept.values())} ({summary})")
    if plan.deleted_locally:
        lines.append(
            f"{name}: {plan.deleted_locally} file(s) deleted from the library are still on the remote "
            "(mediasyncd purge --include-deleted-locally removes them)"
        )
    if plan.free is not None:
        lines.append(f"{name}: remote free space before the run: {format_size(plan.free)}")
    return lines


def _age(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
