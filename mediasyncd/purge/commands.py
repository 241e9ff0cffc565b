"""`mediasyncd purge [--dry-run] [--include-deleted-locally] [REMOTE...]`: one purge run per remote.

Prints exactly what goes (or would go) and what stays and why, with totals. Exit status 0 when every
run completed (files kept for a reason are not errors), 1 when a run could not complete. A dry run only
reads the state DB, so it may run beside the daemon; a real run takes the state directory's lock.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import MediasyncError
from mediasyncd.lock import StateLock
from mediasyncd.purge.eligibility import Reason
from mediasyncd.purge.runner import RunOptions, RunReport
from mediasyncd.purge.session import purge_once
from mediasyncd.purge.store import PurgeLedger
from mediasyncd.state import Store
from mediasyncd.units import format_size

EXIT_CONFIG = 78  # as `mediasyncd sync`: an unknown remote name is a usage/config error


def purge_main(
    config: Config, remotes: Sequence[str], *, dry_run: bool, include_deleted_locally: bool
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
        return asyncio.run(_purge_all(config, chosen, dry_run, include_deleted_locally))
    finally:
        lock.release()


async def _purge_all(
    config: Config, remotes: Sequence[RemoteConfig], dry_run: bool, include_deleted_locally: bool
) -> int:
    store = Store(config.daemon.db_path)
    await store.open()
    ledger = PurgeLedger(store)
    try:
        if any(not (dry_run or r.purge.dry_run) for r in remotes):
            await ledger.close_abandoned()
        outcomes = await asyncio.gather(
            *(_one(config, r, ledger, dry_run, include_deleted_locally) for r in remotes)
        )
    finally:
        await store.close()
    return 0 if all(outcomes) else 1


async def _one(
    config: Config, remote: RemoteConfig, ledger: PurgeLedger, dry_run: bool, include_deleted_locally: bool
) -> bool:
    dry = dry_run or remote.purge.dry_run
    options = RunOptions(
        dry_run=dry, include_deleted_locally=include_deleted_locally, record=not dry, source="cli"
    )
    try:
        report = await purge_once(config, remote, ledger, options)
    except MediasyncError as exc:
        print(f"{remote.name}: FAILED: {exc}", file=sys.stderr)
        return False
    note = " (purge.dry_run = true in the config)" if dry and not dry_run else ""
    print("\n".join(render(report)) + note, flush=True)
    return True


def render(report: RunReport) -> list[str]:
    """The report as text: one line per file that goes or stays, then the totals."""
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
