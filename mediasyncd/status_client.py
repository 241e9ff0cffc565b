"""`mediasyncd status`: ask the running daemon's status server and print what it says."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from typing import Any

import aiohttp

from mediasyncd.cli_progress import arrival_line, render
from mediasyncd.config import DaemonConfig
from mediasyncd.daemon_client import DaemonClient
from mediasyncd.errors import MediasyncError
from mediasyncd.units import format_size

RECENT = 8  # arrivals shown by `status --watch`
PIPE_EVERY = 2.0  # seconds between statuses printed by `status --watch` when stdout is no terminal


async def fetch_status(daemon: DaemonConfig) -> dict[str, Any]:
    """The running daemon's /status (found through its discovery file, else the config)."""
    return await DaemonClient.for_daemon(daemon).get("/status")


async def show_status(daemon: DaemonConfig, *, watch: bool, as_json: bool) -> int:
    try:
        snapshot = await fetch_status(daemon)
    except (aiohttp.ClientError, TimeoutError, OSError, MediasyncError) as exc:
        url = DaemonClient.for_daemon(daemon).url
        print(f"mediasyncd: no daemon answering on {url} ({exc})", file=sys.stderr)
        return 3
    if not watch:
        print(json.dumps(snapshot, indent=2)) if as_json else _print_plain(snapshot)
        return 0
    if as_json or not sys.stdout.isatty():
        return await _follow_plain(daemon, snapshot, as_json)
    return await _live(daemon, snapshot)


async def _live(daemon: DaemonConfig, snapshot: dict[str, Any]) -> int:
    """A live view on a terminal, fed by /api/v1/ws: the status as it changes and each arrival."""
    from rich.console import Console
    from rich.live import Live

    client = DaemonClient.for_daemon(daemon)
    recent: deque[str] = deque(maxlen=RECENT)
    try:
        async with (
            aiohttp.ClientSession(headers=client.headers) as session,
            session.ws_connect(f"{client.url}/api/v1/ws", heartbeat=30) as ws,
        ):
            with Live(render(snapshot), console=Console(), auto_refresh=False) as live:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    typed = json.loads(message.data)
                    if typed["type"] == "status":
                        snapshot = typed["data"]
                    elif typed["data"].get("type") == "file_synced":
                        recent.appendleft(arrival_line(typed["data"]))
                    live.update(render(snapshot, recent=list(recent)), refresh=True)
    except (aiohttp.ClientError, TimeoutError, OSError):
        pass
    print("mediasyncd: the daemon stopped answering", file=sys.stderr)
    return 3


async def _follow_plain(daemon: DaemonConfig, snapshot: dict[str, Any], as_json: bool) -> int:
    """`status --watch` into a pipe or file (or with --json): a status every PIPE_EVERY seconds, as
    text blocks separated by a blank line, or one JSON document per line."""
    while True:
        if as_json:
            print(json.dumps(snapshot), flush=True)
        else:
            _print_plain(snapshot)
            print(flush=True)
        await asyncio.sleep(PIPE_EVERY)
        try:
            snapshot = await fetch_status(daemon)
        except (aiohttp.ClientError, TimeoutError, OSError, MediasyncError):
            print("mediasyncd: the daemon stopped answering", file=sys.stderr)
            return 3


def _print_plain(s: dict[str, Any]) -> None:
    print("\n".join(plain_lines(s)))


def plain_lines(s: dict[str, Any]) -> list[str]:
    """The status as text: every field that is not known yet is left out, never printed as None."""
    t = s["totals"]
    head = f"mediasyncd {s['version']}, up {_duration(s['uptime_s'])}"
    lines = [head + (f", config {s['config']}" if s.get("config") else "")]
    library = s.get("library")
    if library and not library["available"]:
        lines.append(f"library unavailable, nothing is transferred: {library['reason']}")
    lines.append(
        f"landed {t['landed_files']} files ({format_size(t['landed_bytes'])}), failed {t['failed_files']}"
    )
    for r in s["remotes"]:
        parts = [r["state"]]
        if r["last_pass_at"]:
            detail = ", ".join(
                x
                for x in (
                    f"{r['last_pass_s']}s" if r["last_pass_s"] is not None else "",
                    r["last_pass_result"] or "",
                )
                if x
            )
            parts.append(f"last pass {r['last_pass_at']}" + (f" ({detail})" if detail else ""))
        else:
            parts.append("no pass yet")
        parts.append(
            f"settling {r['settling']}, queued {r['queued']}, in flight {len(r['in_flight'])}, "
            f"landed {r['landed_files']}"
        )
        lines.append(f"  {r['name']}: " + ", ".join(parts))
        if r.get("paused"):
            lines.append(f"    paused: {r['paused']}")
        if r["last_error"]:
            lines.append(f"    last error: {r['last_error']}")
    return lines


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s < 172800 else f"{s // 86400}d{s // 3600 % 24}h"
