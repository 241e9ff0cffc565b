"""The purge schedule inside the daemon: one APScheduler cron job per remote.

Jobs never overlap (max_instances=1, plus a per-remote lock shared with on-demand runs), at most
`PURGE_SLOTS` runs of different remotes go at once (the default schedule starts every remote's on the
same minute; each holds its remote's listing and plan), missed runs coalesce, and a run missed while the daemon was down (the last scheduled run in `purge_runs` is older
than the schedule's next fire time after it) runs once at start-up. `/status` gains a `purge` object.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import MediasyncError
from mediasyncd.progress import StatusView, iso
from mediasyncd.purge.crontab import crontab_trigger
from mediasyncd.purge.runner import RunOptions, RunReport
from mediasyncd.purge.session import purge_once
from mediasyncd.state import Store
from mediasyncd.state.purge import PurgeLedger, RunRecord

TriggerFactory = Callable[[str], BaseTrigger]


class PurgeBusy(MediasyncError):
    """A purge of that remote is already running."""


log = structlog.get_logger("mediasyncd.purge")

PURGE_SLOTS = 2  # runs at once; the rest wait their turn (shown as `waiting` in /status)


class PurgeScheduler:
    """A daemon service (wiring.Service): schedules, runs and reports purges of every remote."""

    def __init__(
        self, config: Config, store: Store, view: StatusView, *, trigger_for: TriggerFactory = crontab_trigger
    ) -> None:
        self.config = config
        self.ledger = PurgeLedger(store)
        self.trigger_for = trigger_for
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._schedules: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(PURGE_SLOTS)
        self._waiting: set[str] = set()
        self._last: dict[str, RunRecord] = {}
        self._totals: dict[str, tuple[int, int]] = {}  # files deleted and bytes freed since start
        self._jobs: set[asyncio.Task[Any]] = set()  # scheduled runs going now (or waiting for a slot)
        self.held = False  # scheduled runs are skipped (POST /api/v1/purge/pause, `mediasyncd pause --purge`)
        view.sections["purge"] = self.snapshot

    async def run(self) -> None:
        """Schedule every remote's purge and serve until cancelled."""
        interrupted = await self.ledger.close_abandoned()
        if interrupted:
            log.warning(
                "purge runs were interrupted; their deletions are checked on the next run", runs=interrupted
            )
        self._last = await self.ledger.last_runs()
        scheduled = await self.ledger.last_runs(source="schedule")
        self._scheduler.start()
        try:
            self._sync_jobs({name: r.started_at for name, r in scheduled.items()})
            await asyncio.Event().wait()
        finally:
            self._scheduler.shutdown(wait=False)
            await self._stop_jobs()

    def reload(self, config: Config) -> None:
        self.config = config
        if self._scheduler.running:
            self._sync_jobs({})

    async def run_now(
        self, name: str, *, source: str = "api", dry_run: bool | None = None
    ) -> RunReport | None:
        """Purge `name` now unless a purge of it is already running or the run fails (then None)."""
        try:
            return await self.purge(name, RunOptions(dry_run=bool(dry_run), source=source), dry_run is None)
        except PurgeBusy:
            log.info("purge already running; not starting another", remote=name, source=source)
        except MediasyncError as exc:
            log.error("purge run failed", remote=name, error=str(exc), source=source)
        return None

    async def purge(self, name: str, options: RunOptions, config_dry_run: bool = False) -> RunReport:
        """Purge `name` now with `options` (a dry run, too, where the remote's config says so, or where
        `config_dry_run` asks for the config's setting). Raises PurgeBusy when a purge of it runs, and
        MediasyncError when the run cannot complete."""
        remote = self._remote(name)
        if remote is None:
            raise MediasyncError(f"no remote named {name!r}")
        dry = remote.purge.dry_run or options.dry_run if not config_dry_run else remote.purge.dry_run
        # A dry run deletes nothing: it may run beside another purge, and only the schedule's are recorded.
        run = replace(
            options, dry_run=dry, record=options.record and (not dry or options.source == "schedule")
        )
        lock = self._locks.setdefault(name, asyncio.Lock())
        if not dry and lock.locked():
            raise PurgeBusy(f"a purge of {name} is already running")
        async with contextlib.nullcontext() if dry else lock, self._turn(name):
            try:
                report = await purge_once(self.config, remote, self.ledger, run)
                if not report.dry_run:
                    deleted, freed = self._totals.get(name, (0, 0))
                    self._totals[name] = (deleted + len(report.deleted), freed + report.freed_bytes)
                return report
            finally:
                self._last.update(await self.ledger.last_runs())

    def snapshot(self) -> dict[str, Any]:
        """The `purge` object of /status: per remote, the next scheduled run and the last run's result."""
        return {"held": self.held, "remotes": [self._remote_snapshot(r) for r in self.config.remotes]}

    # ------------------------------------------------------------------------------------ internals

    @contextlib.asynccontextmanager
    async def _turn(self, name: str) -> AsyncIterator[None]:
        """One of the `PURGE_SLOTS`: `name` is `waiting` in /status until it has one."""
        self._waiting.add(name)
        try:
            await self._slots.acquire()
        finally:
            self._waiting.discard(name)
        try:
            yield
        finally:
            self._slots.release()

    async def _job(self, name: str) -> None:
        if self.held:
            log.info("scheduled purge held; not run", remote=name)
            return
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            await self.run_now(name, source="schedule")
        except asyncio.CancelledError:
            # The daemon is stopping (a run waiting for its turn, or one cut short: the next run resolves
            # what it left). Not an error: APScheduler would log one for a job that raises.
            log.info("scheduled purge stopped with the daemon", remote=name)
        finally:
            self._jobs.discard(task)

    async def _stop_jobs(self) -> None:
        """Cancel the scheduled runs still going and wait until they ended: a run cut short records how
        far it got, and the daemon closes the state DB only after this service stopped (APScheduler's
        shutdown cancels its jobs without waiting for them)."""
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    def _remote(self, name: str) -> RemoteConfig | None:
        return next((r for r in self.config.remotes if r.name == name), None)

    def _sync_jobs(self, last_scheduled: dict[str, float]) -> None:
        wanted = {r.name: r.purge.schedule for r in self.config.remotes}
        for name, schedule in list(self._schedules.items()):
            if wanted.get(name) != schedule:
                self._scheduler.remove_job(name)
                del self._schedules[name]
        now = datetime.now(UTC)
        for name, schedule in wanted.items():
            if name in self._schedules:
                continue
            try:
                trigger = self.trigger_for(schedule)
            except ValueError as exc:
                log.error(
                    "purge schedule invalid; not scheduling", remote=name, schedule=schedule, error=str(exc)
                )
                continue
            options: dict[str, Any] = {}
            last = last_scheduled.get(name)
            if last is not None:
                due = trigger.get_next_fire_time(None, datetime.fromtimestamp(last, UTC))
                if due is not None and due <= now:
                    log.info("purge run was missed while the daemon was down; running it now", remote=name)
                    options["next_run_time"] = now
            self._scheduler.add_job(self._job, trigger, args=[name], id=name, name=f"purge {name}", **options)
            self._schedules[name] = schedule

    def _remote_snapshot(self, remote: RemoteConfig) -> dict[str, Any]:
        job = self._scheduler.get_job(remote.name) if self._scheduler.running else None
        next_run = job.next_run_time.timestamp() if job is not None and job.next_run_time else None
        last = self._last.get(remote.name)
        lock = self._locks.get(remote.name)
        return {
            "name": remote.name,
            "schedule": remote.purge.schedule,
            "older_than_s": remote.purge.older_than,
            "local_retention_s": remote.purge.local_retention,
            "dry_run": remote.purge.dry_run,
            "next_run_at": iso(next_run),
            "running": lock is not None and lock.locked() and remote.name not in self._waiting,
            "waiting": remote.name in self._waiting,
            "deleted_locally": last.deleted_locally if last else None,
            "last_run": _run_snapshot(last) if last else None,
            "deleted_files_total": self._totals.get(remote.name, (0, 0))[0],  # since the daemon started
            "freed_bytes_total": self._totals.get(remote.name, (0, 0))[1],
        }


def _run_snapshot(run: RunRecord) -> dict[str, Any]:
    return {
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "source": run.source,
        "dry_run": run.dry_run,
        "result": run.result,
        "error": run.error,
        "deleted_files": run.deleted_files,
        "freed_bytes": run.freed_bytes,
        "kept": run.kept,
        "library_deleted_files": run.library_deleted_files,
        "library_freed_bytes": run.library_freed_bytes,
        "library_kept": run.library_kept,
    }
