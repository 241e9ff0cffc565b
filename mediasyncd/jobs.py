"""Jobs the control API starts (a pass now, a purge): each runs as a task and keeps what it did.

A job is `{"id", "kind", "state", "created_at", "started_at", "finished_at", "progress", "result",
"error"}` (SPEC §3.12); `state` is queued, running, done, failed or cancelled.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mediasyncd.progress import iso

KEEP = 200  # finished jobs kept for GET /api/v1/jobs/{id}


@dataclass
class Job:
    id: str
    kind: str
    state: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "state": self.state, "created_at": iso(self.created_at),
            "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
            "progress": self.progress, "result": self.result, "error": self.error,
        }  # fmt: skip


Work = Callable[[Job], Awaitable[dict[str, Any]]]


def _cancelled_before_start(job: Job) -> None:
    """A job cancelled before its task ever ran is cancelled, not queued forever."""
    if not job.finished:
        job.state, job.finished_at = "cancelled", time.time()


class Jobs:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def start(self, kind: str, work: Work) -> Job:
        """Run `work(job)` as a task; its return value becomes the job's result."""
        job = Job(secrets.token_hex(8), kind)
        self._jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, work), name=f"job-{kind}-{job.id}")
        job.task.add_done_callback(lambda _: _cancelled_before_start(job))
        self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and not job.finished and job.task is not None:
            job.task.cancel()
        return job

    async def close(self) -> None:
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: Job, work: Work) -> None:
        job.state, job.started_at = "running", time.time()
        try:
            job.result = await work(job)
            job.state = "done"
        except asyncio.CancelledError:
            job.state = "cancelled"
        except Exception as exc:  # the job's failure is its result; the daemon goes on
            job.state, job.error = "failed", str(exc) or type(exc).__name__
        finally:
            job.finished_at = time.time()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished]
        for job in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]
