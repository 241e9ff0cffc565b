"""`mediasyncd workflow status [--json]` and `mediasyncd workflow run [--from STAGE] [--to STAGE]
[--dry-run] [PATH...]` (SPEC §3.8).

`status` reads the state DB beside a running daemon. `run` takes the state directory's lock (a dry run
does not: it writes nothing), so with the daemon running it is refused; the daemon runs the stages itself,
and the control API's `workflow` job runs a pass in it on demand.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from mediasyncd.config import Config
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
    try:
        select_stages(config.workflow.stages, first, last)
    except ValueError as exc:
        print(f"mediasyncd workflow: {exc}", file=sys.stderr)
        return 2
    lock = StateLock(config.daemon.state_dir)
    if not dry_run:
        lock.acquire("workflow run")
    try:
        result = asyncio.run(_run(config, first, last, dry_run, [Path(p) for p in paths]))
    finally:
        lock.release()
    for line in render(result, dry_run):
        print(line, file=out)
    failed = any(c.get("failed") for c in result.counts.values())
    return 1 if failed else 0


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


def render(result: PassResult, dry_run: bool) -> list[str]:
    lines = [f"would {p.stage} {p.remote}:{p.path} -> {p.output}" for p in result.planned]
    for name, counts in result.counts.items():
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
        lines.append(f"{name}: {'(dry run) ' if dry_run else ''}{summary}")
        if name in result.paused:
            lines.append(f"  paused: {result.paused[name]}")
    return lines
