"""What the control API may do in a running daemon: a pass now, a purge now, and the jobs they start.

The daemon hands over accessors, not itself: this module knows pullers and the purge scheduler only by
what they offer (`wake`, `status`; `purge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.errors import MediasyncError
from mediasyncd.jobs import Job, Jobs
from mediasyncd.progress import StatusView, iso
from mediasyncd.purge.commands import render
from mediasyncd.purge.runner import RunOptions, RunReport
from mediasyncd.purge.scheduler import PurgeScheduler
from mediasyncd.state import EventType, Store
from mediasyncd.state.catalog import Catalog, FileQuery
from mediasyncd.transfer.puller import Puller
from mediasyncd.workflow.runner import Workflow, select_stages

SYNC_WAIT = 120.0  # seconds a sync job waits for the pass it asked for
# What GET /api/v1/remotes shows of a remote's settings: named one by one, so that a field added later
# (which may hold a secret, as `command` can: `sh -c "API_TOKEN=… exec sh"`) is not shown by default.
SHOWN = (
    "name", "transport", "host", "port", "user", "kind", "roots", "include", "exclude", "watch",
    "poll_interval", "settle", "connect_timeout", "host_key", "container", "files_via", "purge",
    "reconcile_interval", "keepalive_interval", "keepalive_count_max",
)  # fmt: skip

log = structlog.get_logger("mediasyncd.control")


def remote_settings(remote: RemoteConfig) -> dict[str, Any]:
    """A remote's settings as JSON: the SHOWN fields, paths as strings; a docker_host without its
    credentials (`tcp://user:pass@host` shows as `tcp://host`)."""
    out = {name: _plain(getattr(remote, name)) for name in SHOWN}
    if remote.docker_host:
        parts = urlsplit(remote.docker_host)
        credentials = parts.username is not None or parts.password is not None
        netloc = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        out["docker_host"] = parts._replace(netloc=netloc).geturl() if credentials else remote.docker_host
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class DaemonControl:
    def __init__(
        self,
        config: Callable[[], Config],
        pullers: Callable[[], Mapping[str, Puller]],
        scheduler: Callable[[], PurgeScheduler | None],
        view: StatusView,
        store: Store,
        workflow: Callable[[], Workflow | None] = lambda: None,
    ) -> None:
        self._config = config
        self._pullers = pullers
        self._scheduler = scheduler
        self._view = view
        self._store = store
        self._workflow = workflow
        self.jobs = Jobs()

    def remote_names(self) -> list[str]:
        return [r.name for r in self._config().remotes]

    def remotes(self) -> list[dict[str, Any]]:
        """What /status says of each remote, plus its settings (secrets never shown)."""
        return [
            self._view.remote(r.name).snapshot() | {"config": remote_settings(r)}
            for r in self._config().remotes
        ]

    def job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def jobs_list(self) -> list[Job]:
        return self.jobs.all()

    def cancel(self, job_id: str) -> Job | None:
        return self.jobs.cancel(job_id)

    def hold(self, name: str | None, held: bool) -> dict[str, Any]:
        """Pause (`held`) or resume a remote (`name`), or the purge schedule (None)."""
        if name is None:
            scheduler = self._scheduler()
            if scheduler is None:
                raise MediasyncError("the purge scheduler is not running")
            scheduler.held = held
            self._view.invalidate()
            log.info("scheduled purges held" if held else "scheduled purges released")
            return {"remote": None, "held": held}
        self._view.remote(name).held = held
        self._view.invalidate()  # the next /status says so
        log.info("remote held; no new files are taken" if held else "remote released", remote=name)
        puller = self._pullers().get(name)
        if puller is not None and not held:
            puller.wake()  # take what waited at once
        return {"remote": name, "held": held}

    async def files(self, query: FileQuery) -> tuple[list[dict[str, Any]], str | None]:
        return await self._store.catalog(Catalog.files, query)

    async def file(self, file_id: int) -> dict[str, Any] | None:
        return await self._store.catalog(Catalog.file, file_id)

    async def thumbnail(self, file_id: int) -> str | None:
        return await self._store.catalog(Catalog.thumbnail_of, file_id)

    def library(self) -> Path:
        return self._config().daemon.library

    async def last_event_id(self) -> int:
        return await self._store.last_event_id()

    def serialized(self) -> str:
        """The /status JSON, shared between clients (StatusView.serialized)."""
        return self._view.serialized()

    def event_types(self) -> list[str]:
        return [t.value for t in EventType]

    async def events(self, since: int, types: list[str], wait: float, limit: int) -> list[dict[str, Any]]:
        """The events after `since`, waiting up to `wait` seconds for the first (long poll)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        follower = self._store.follow()
        try:
            while True:
                follower.clear()
                found = await self._store.events(since, types, limit)
                left = deadline - loop.time()
                if found or left <= 0:
                    return [e.envelope() for e in found]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await follower.wait()
        finally:
            self._store.unfollow(follower)

    def sync(self, name: str) -> Job:
        """A pass of `name` now; the job ends when that pass has been made."""

        async def work(job: Job) -> dict[str, Any]:
            puller = self._pullers().get(name)
            if puller is None:
                raise MediasyncError(f"remote {name} is not running")
            status, asked = puller.status, time.time()
            puller.wake()
            deadline = time.monotonic() + SYNC_WAIT
            # A pass that had started listing before the request does not count: wait for one that began after.
            while (status.last_pass_at or 0) - (status.last_pass_s or 0) < asked:
                if time.monotonic() > deadline:
                    raise MediasyncError(f"no pass of {name} within {SYNC_WAIT:.0f}s ({status.state})")
                job.progress = {"state": status.state}
                await asyncio.sleep(0.1)
            return {
                "remote": name, "state": status.state, "last_pass_at": iso(status.last_pass_at),
                "settling": status.settling, "queued": status.queued,
            }  # fmt: skip

        return self.jobs.start("sync", work)

    def purge(
        self, remote: str | None, *, dry_run: bool, include_deleted_locally: bool, local_only: bool
    ) -> Job:
        """A purge of one remote (or of every one) now; the result holds the plan, or what was done."""
        names = [remote] if remote is not None else self.remote_names()

        async def work(job: Job) -> dict[str, Any]:
            scheduler = self._scheduler()
            if scheduler is None:
                raise MediasyncError("the purge scheduler is not running")
            options = RunOptions(
                dry_run=dry_run, include_deleted_locally=include_deleted_locally, local_only=local_only,
                record=not dry_run, source="api",
            )  # fmt: skip
            runs: list[dict[str, Any]] = []
            for done, name in enumerate(names):
                job.progress = {"remote": name, "done": done, "of": len(names)}
                try:
                    runs.append(_run_result(await scheduler.purge(name, options), asked_dry=dry_run))
                except MediasyncError as exc:
                    runs.append({"remote": name, "ok": False, "error": str(exc)})
            job.progress = {"done": len(names), "of": len(names)}
            return {"runs": runs}

        return self.jobs.start("purge", work)

    def workflow(self, *, first: str | None, last: str | None, dry_run: bool, paths: list[str]) -> Job:
        """A pass of the workflow stages now (`mediasyncd workflow run`); the result holds the counts, the
        paused stages with their reasons and, for a dry run, what would be done."""

        async def work(job: Job) -> dict[str, Any]:
            flow = self._workflow()
            if flow is None:
                raise MediasyncError("no workflow stages run in this daemon ([workflow] stages)")
            try:
                select_stages(flow.configured, first, last)
            except ValueError as exc:
                raise MediasyncError(str(exc)) from None
            result = await flow.run_pass(
                first=first, last=last, paths=[Path(p) for p in paths], dry_run=dry_run, retry_failed=True
            )
            await flow.refresh()
            return result.as_json()

        return self.jobs.start("workflow", work)


def _run_result(report: RunReport, *, asked_dry: bool) -> dict[str, Any]:
    plan = report.plan
    doomed = plan.delete if report.dry_run else report.deleted
    return {
        "remote": report.remote,
        "ok": True,
        "dry_run": report.dry_run,
        "config_dry_run": report.dry_run and not asked_dry,  # purge.dry_run = true in the config
        "delete": [
            {"path": d.row.remote_path, "size": d.row.size, "age_s": round(d.age), "for_space": d.for_space}
            for d in doomed
        ],
        "kept": [
            {"path": row.remote_path, "reason": str(reason), "text": reason.text} for row, reason in plan.kept
        ],
        "freed_bytes": plan.freed_bytes if report.dry_run else report.freed_bytes,
        "kept_counts": report.kept_counts(),
        "lines": render(report),
    }
