"""The status server under load: GET /status requests per second with 100 WebSocket clients attached, and
whether that load slows transfers (remote-mtime -> landed latency of the files that land meanwhile).

    .venv/bin/python -m bench.api_bench [--seconds 10] [--ws 100] [--clients 8]

It runs `mediasyncd demo` (its embedded container makes an image every 0.5 s) on a free port, measures
an idle phase and a loaded phase of the same length, and prints a Markdown table for docs/benchmarks.md.
The load generator runs on the same machine (a 2-core box: it competes with the daemon for the CPU, so
the figures are a lower bound of what the server does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

MEDIASYNCD = str(Path(sys.executable).with_name("mediasyncd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _hammer(url: str, clients: int, seconds: float) -> int:
    """GET `url` from `clients` keep-alive connections for `seconds`; the number of 200 answers."""
    done = 0
    deadline = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with session.get(url) as resp:
                await resp.read()
                done += resp.status == 200

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(clients)))
    return done


async def _watchers(url: str, count: int, stop: asyncio.Event) -> int:
    """`count` WebSocket clients reading /ws until `stop`; the messages they received in all."""
    received = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal received
        async with session.ws_connect(url) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await ws.receive()
                        received += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session) for _ in range(count)))
    return received


async def _latencies(api: str, since: int, session: aiohttp.ClientSession) -> tuple[list[float], int]:
    """Remote mtime -> landed seconds of each file_synced after `since`, and the last id."""
    async with session.get(
        f"{api}/events", params={"since": since, "types": "file_synced", "timeout": 0}
    ) as r:
        body = await r.json()
    out = []
    for event in body["events"]:
        landed = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        out.append(landed - event["data"]["mtime"])
    return out, body["last_id"]


async def measure(base: str, seconds: float, ws_clients: int, clients: int) -> dict[str, Any]:
    api = f"{base}/api/v1"
    async with aiohttp.ClientSession() as session:
        _, start = await _latencies(api, 0, session)
        await asyncio.sleep(seconds)  # idle phase: only the demo's own transfers
        idle, mark = await _latencies(api, start, session)
        stop = asyncio.Event()
        ws_url = base.replace("http://", "ws://") + "/ws"
        watchers = asyncio.ensure_future(_watchers(ws_url, ws_clients, stop))
        await asyncio.sleep(1.0)  # let them connect
        started = time.monotonic()
        answered = await _hammer(f"{base}/status", clients, seconds)
        elapsed = time.monotonic() - started
        stop.set()
        messages = await watchers
        loaded, _ = await _latencies(api, mark, session)
    return {
        "status_rps": answered / elapsed,
        "ws_clients": ws_clients,
        "ws_messages_per_s": messages / (elapsed + 1.0),
        "idle_latency_p50": statistics.median(idle) if idle else None,
        "loaded_latency_p50": statistics.median(loaded) if loaded else None,
        "idle_files": len(idle),
        "loaded_files": len(loaded),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--ws", type=int, default=100, help="WebSocket clients during the loaded phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent /status requesters")
    parser.add_argument("--quick", action="store_true", help="3 s phases (a smoke run)")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        demo = subprocess.Popen(
            [
                MEDIASYNCD,
                "demo",
                "--library",
                str(Path(tmp) / "lib"),
                "--listen",
                str(port),
                "--every",
                "0.5",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MEDIASYNCD_CONFIG": ""},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base, time.monotonic() + 60)
            result = asyncio.run(measure(base, seconds, args.ws, args.clients))
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(30)
    print(json.dumps(result, indent=2))
    print()
    print(
        "| /status requests/s (8 clients, 100 WS attached) | /ws messages/s | landed latency p50 idle | loaded |"
    )
    print("|---|---|---|---|")
    idle, loaded = result["idle_latency_p50"], result["loaded_latency_p50"]
    print(
        f"| {result['status_rps']:.0f} | {result['ws_messages_per_s']:.0f} | "
        f"{_s(idle)} ({result['idle_files']} files) | {_s(loaded)} ({result['loaded_files']} files) |"
    )
    return 0


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _wait_up(base: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
