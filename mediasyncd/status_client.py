"""`mediasyncd status`: ask the running daemon's status server and print what it says."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from mediasyncd.cli_progress import render
from mediasyncd.config import Config
from mediasyncd.daemon_client import DaemonClient
from mediasyncd.errors import MediasyncError
from mediasyncd.units import format_size


async def fetch_status(config: Config) -> dict[str, Any]:
    """The running daemon's /status (found through its discovery file, else the config)."""
    return await DaemonClient.for_config(config).get("/status")


async def show_status(config: Config, *, watch: bool, as_json: bool) -> int:
    try:
        snapshot = await fetch_status(config)
    except (aiohttp.ClientError, TimeoutError, OSError, MediasyncError) as exc:
        url = DaemonClient.for_config(config).url
        print(f"mediasyncd: no daemon answering on {url} ({exc})", file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps(snapshot, indent=2))
        return 0
    if not watch:
        _print_plain(snapshot)
        return 0
    from rich.console import Console
    from rich.live import Live

    with Live(render(snapshot), console=Console(), auto_refresh=False) as live:
        while True:
            await asyncio.sleep(0.5)
            try:
                snapshot = await fetch_status(config)
            except (aiohttp.ClientError, TimeoutError, OSError, MediasyncError):
                return 3
            live.update(render(snapshot), refresh=True)


def _print_plain(s: dict[str, Any]) -> None:
    t = s["totals"]
    print(f"mediasyncd {s['version']}, up {s['uptime_s']:.0f}s, config {s['config']}")
    print(f"landed {t['landed_files']} files ({format_size(t['landed_bytes'])}), failed {t['failed_files']}")
    for r in s["remotes"]:
        last = (
            f"last pass {r['last_pass_at']} ({r['last_pass_s']}s, {r['last_pass_result']})"
            if r["last_pass_at"]
            else "no pass yet"
        )
        print(
            f"  {r['name']}: {r['state']}, {last}, settling {r['settling']}, queued {r['queued']}, "
            f"in flight {len(r['in_flight'])}, landed {r['landed_files']}"
        )
        if r["last_error"]:
            print(f"    last error: {r['last_error']}")
