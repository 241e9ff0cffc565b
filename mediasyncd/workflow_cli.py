"""`mediasyncd workflow status [--json]` and `mediasyncd workflow run [--from STAGE] [--to STAGE]
[--dry-run] [PATH...]` (SPEC §3.8).

`status` reads the state DB beside a running daemon. `run` asks the running daemon (its control API's
`workflow` job) when there is one; else it runs the pass itself under the state directory's lock (a dry
run takes no lock: it writes nothing).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from mediasyncd.config import Config
from mediasyncd.daemon_client import DaemonClient
from mediasyncd.errors import MediasyncError
from mediasyncd.lock import StateLock
from mediasyncd.state import Store
from mediasyncd.workflow.runner import PassResult, Workflow, select_stages


def status_main(config: Config, as_json: bool, out: TextIO = sys.stdout) -> int:
    stages = config.workflow.stages
    if not stages:
        if as_json:
            print(json.dumps({"stages": {}}), file=out)
        else:
            print("no workflow stages configured ([workflow] stages)", file=out)
        return 0

    async def go() -> dict[str, Any]:
        store = Store(config.daemon.db_path)
        await store.open()
        try:
            flow = Workflow(config, store)
            for name, stage in flow.stages.items():
                why = await stage.paused(dry_run=True)
                if why:
                    flow.paused[name] = why
            await flow.refresh()
            return flow.snapshot()
        finally:
            await store.close()

    doc = asyncio.run(go())
    if as_json:
        print(json.dumps(doc), file=out)
        return 0
    for name, s in doc["stages"].items():
        counts = ", ".join(f"{k} {v}" for k, v in s["counts"].items())
        print(f"{name}: {counts}", file=out)
        if s["paused"]:
            print(f"  paused: {s['paused']}", file=out)
        if s["oldest_waiting"]:
            age = time.time() - s["oldest_waiting"]
            print(f"  oldest waiting: landed {age / 3600:.1f} h ago", file=out)
        for f in s["failures"]:
            print(f"  failed: {f['remote']}:{f['path']}: {f['error']}", file=out)
    return 0


def run_main(
    config: Config,
    *,
    first: str | None,
    last: str | None,
    dry_run: bool,
    paths: Sequence[str],
    out: TextIO = sys.stdout,
) -> int:
    """A pass now: through the running daemon's `workflow` job when one runs, else in this process."""
    try:
        select_stages(config.workflow.stages, first, last)
    except ValueError as exc:
        print(f"mediasyncd workflow: {exc}", file=sys.stderr)
        return 2
    absolute = [str(Path(p).absolute()) for p in paths]
    client = DaemonClient.running(config)
    if client is not None:
        try:
            doc = asyncio.run(_via_daemon(client, first, last, dry_run, absolute))
        except (MediasyncError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            print(f"mediasyncd workflow: through the running daemon at {client.url}: {exc}", file=sys.stderr)
            return 1
    else:
        lock = StateLock(config.daemon.state_dir)
        if not dry_run:
            lock.acquire("workflow run")
        try:
            doc = asyncio.run(_run(config, first, last, dry_run, [Path(p) for p in absolute])).as_json()
        finally:
            lock.release()
    for line in render(doc, dry_run):
        print(line, file=out)
    return 1 if any(c.get("failed") for c in doc["stages"].values()) else 0


async def _via_daemon(
    client: DaemonClient, first: str | None, last: str | None, dry_run: bool, paths: list[str]
) -> dict[str, Any]:
    body = {"from": first, "to": last, "dry_run": dry_run, "paths": paths}
    job = await client.run_job("/api/v1/workflow/run", body)
    if job["state"] != "done":
        raise MediasyncError(f"the workflow job {job['state']}: {job.get('error')}")
    return dict(job["result"])


async def _run(
    config: Config, first: str | None, last: str | None, dry_run: bool, paths: list[Path]
) -> PassResult:
    store = Store(config.daemon.db_path)
    await store.open()
    try:
        flow = Workflow(config, store)
        return await flow.run_pass(first=first, last=last, paths=paths, dry_run=dry_run, retry_failed=True)
    finally:
        await store.close()


def render(doc: dict[str, Any], dry_run: bool) -> list[str]:
    """A pass's result (`PassResult.as_json()`) as lines."""
    lines = [f"would {p['stage']} {p['remote']}:{p['path']} -> {p['output']}" for p in doc["planned"]]
    for name, counts in doc["stages"].items():
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
        lines.append(f"{name}: {'(dry run) ' if dry_run else ''}{summary}")
        if name in doc["paused"]:
            lines.append(f"  paused: {doc['paused'][name]}")
    return lines
