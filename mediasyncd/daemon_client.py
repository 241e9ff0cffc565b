"""The CLI's side of a running daemon: find it (discovery file, else the config's `status_listen`) and
talk to its status server and control API."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp

from mediasyncd import discovery
from mediasyncd.config import Config, DaemonConfig
from mediasyncd.errors import MediasyncError

POLL = 0.2
JOB_WAIT = 6 * 3600.0  # a purge of a big remote takes a while, but not forever


class DaemonClient:
    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    @classmethod
    def for_daemon(cls, d: DaemonConfig) -> DaemonClient:
        """The daemon's address from its discovery file, else the config's `status_listen`."""
        found = discovery.locate(d.state_dir)
        return cls(found.url if found else discovery.url_of(d.status_host, d.status_port), d.status_token)

    @classmethod
    def running(cls, config: Config) -> DaemonClient | None:
        """A client of the daemon whose discovery file names a live process, or None."""
        found = discovery.locate(config.daemon.state_dir)
        return cls(found.url, config.daemon.status_token) if found else None

    async def get(self, path: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as session,
            session.get(self.url + path, headers=self.headers) as resp,
        ):
            return await _answer(resp)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as session,
            session.post(self.url + path, json=body, headers=self.headers) as resp,
        ):
            return await _answer(resp)

    async def run_job(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start a job and wait for it to finish; its final JSON."""
        job = (await self.post(path, body))["job"]
        deadline = asyncio.get_running_loop().time() + JOB_WAIT
        while job["state"] in ("queued", "running"):
            if asyncio.get_running_loop().time() > deadline:
                raise MediasyncError(f"job {job['id']} still {job['state']} after {JOB_WAIT:.0f}s")
            await asyncio.sleep(POLL)
            job = (await self.get(f"/api/v1/jobs/{job['id']}"))["job"]
        return dict(job)


async def _answer(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body: dict[str, Any] = await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        body = {"error": await resp.text()}
    if resp.status >= 400:
        raise MediasyncError(f"the daemon refused: {body.get('error') or resp.reason} (HTTP {resp.status})")
    return body


def purge_via_daemon(
    client: DaemonClient,
    remotes: list[str],
    *,
    dry_run: bool,
    include_deleted_locally: bool,
    local_only: bool,
) -> int:
    """`mediasyncd purge` through the running daemon: the same report, exit 0 when every run completed."""

    async def run() -> int:
        ok = True
        targets: list[str | None] = list(remotes) or [None]
        for remote in targets:
            body = {
                "remote": remote, "dry_run": dry_run, "include_deleted_locally": include_deleted_locally,
                "local_only": local_only,
            }  # fmt: skip
            job = await client.run_job("/api/v1/purge", body)
            if job["state"] != "done":
                print(f"purge through the daemon {job['state']}: {job.get('error')}", file=sys.stderr)
                ok = False
                continue
            for result in job["result"]["runs"]:
                if not result["ok"]:
                    print(f"{result['remote']}: FAILED: {result['error']}", file=sys.stderr)
                    ok = False
                    continue
                note = " (purge.dry_run = true in the config)" if result.get("config_dry_run") else ""
                print("\n".join(result["lines"]) + note, flush=True)
        return 0 if ok else 1

    try:
        return asyncio.run(run())
    except (MediasyncError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"mediasyncd: purge through the running daemon at {client.url} failed: {exc}", file=sys.stderr)
        return 1


def hold_via_daemon(client: DaemonClient, names: list[str] | None, *, held: bool) -> int:
    """Pause (`held`) or resume each remote of `names`, or the purge schedule (None); one line each."""
    verb = "pause" if held else "resume"
    paths = [f"/api/v1/purge/{verb}"] if names is None else [f"/api/v1/remotes/{n}/{verb}" for n in names]

    async def ask() -> list[dict[str, Any]]:
        return [await client.post(path, {}) for path in paths]

    try:
        answers = asyncio.run(ask())
    except (aiohttp.ClientError, TimeoutError, OSError, MediasyncError) as exc:
        print(f"mediasyncd: {verb} through the running daemon at {client.url} failed: {exc}", file=sys.stderr)
        return 1
    for answer in answers:
        what = answer["remote"] or "scheduled purges"
        print(f"{what}: {'paused' if answer['held'] else 'resumed'}")
    return 0
