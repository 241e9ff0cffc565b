"""`mediasyncd run` as the benchmark drives it: started on a tool's config, read through GET /status.

Two measurements need the daemon rather than `sync --once`: the nothing-new pass on an already-open
connection (`remotes[0].last_pass_s` after each poll) and close→landed latency while it watches.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.datasets import PngFactory
from bench.tools import Child, Mediasyncd, RunStats, ToolFailed, tail


class RunningDaemon:
    """`with RunningDaemon(tool) as d:` starts `mediasyncd run` and stops it (SIGTERM, by PID) on exit."""

    def __init__(self, tool: Mediasyncd, start_timeout_s: float = 30.0) -> None:
        self.tool = tool
        self.start_timeout_s = start_timeout_s
        self.child: Child | None = None
        self.stats: RunStats | None = None
        self.url = ""

    def __enter__(self) -> RunningDaemon:
        port = _free_port()
        self.tool.write_config(status_port=port)
        self.url = f"http://127.0.0.1:{port}/status"
        options = self.tool.options
        argv = options.command("run", "--config", str(self.tool.config), "--log-level", "warning")
        self.child = Child(argv, self.tool.log, options.env())
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.child.proc.poll() is not None:
                raise ToolFailed(f"mediasyncd run exited {self.child.proc.returncode}: {tail(self.tool.log)}")
            with contextlib.suppress(OSError):
                self.status()
                return self
            time.sleep(0.05)
        self.stop()
        raise ToolFailed(f"mediasyncd run served no /status within {self.start_timeout_s}s")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url, timeout=5) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def remote_status(self) -> dict[str, Any]:
        remotes: list[dict[str, Any]] = self.status()["remotes"]
        return remotes[0] if remotes else {}

    def pass_times(self, count: int, skip: int = 1, timeout_s: float = 120.0) -> list[float]:
        """`last_pass_s` of the next `count` passes after `skip` ones (the first may load state)."""
        seen: list[float] = []
        last: tuple[object, object] | None = None
        deadline = time.monotonic() + timeout_s
        while len(seen) < skip + count:
            if time.monotonic() > deadline:
                raise ToolFailed(f"only {len(seen)} passes in {timeout_s}s: {self.remote_status()}")
            r = self.remote_status()
            mark = (r.get("last_pass_at"), r.get("last_pass_s"))
            if mark[1] is not None and mark != last:
                seen.append(float(r["last_pass_s"]))
                last = mark
            time.sleep(0.05)
        return seen[skip:]

    def stop(self) -> RunStats:
        """SIGTERM our daemon and wait for it (SIGKILL after 20 s); its rusage."""
        if self.stats is None:
            assert self.child is not None
            self.child.terminate()
            self.stats = self.child.wait(timeout_s=20, check=False)
        return self.stats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def close_to_landed(
    remote_folder: Path,
    landed_folder: Path,
    factory: PngFactory,
    count: int,
    max_gap_s: float,
    rng: random.Random,
    timeout_s: float = 60.0,
) -> list[tuple[str, float, int]]:
    """Write `count` PNGs one at a time on the remote side: (how, seconds from close to landed, bytes).

    Files alternate between a plain write+close and write-to-temp+rename (timed from the rename, when
    the complete file appears under its name). Before each file we wait a random 0..`max_gap_s` so the
    writes fall at random phases of the daemon's poll cycle. `landed_folder` is where the library holds
    `remote_folder`; a file is there only once verified (mediasyncd lands by rename after verifying).
    """
    results = []
    for i in range(count):
        time.sleep(rng.uniform(0, max_gap_s))
        seed = rng.randrange(2**32)
        name, data = f"{i:05d}-{seed}.png", factory.png(seed)
        mode = "rename" if i % 2 else "plain"
        target = remote_folder / name
        if mode == "plain":
            with target.open("wb") as f:
                f.write(data)
        else:
            tmp = remote_folder / f".{name}.tmp"
            with tmp.open("wb") as f:
                f.write(data)
            tmp.rename(target)
        closed = time.monotonic()
        landed = landed_folder / name
        while not landed.exists():
            if time.monotonic() - closed > timeout_s:
                raise ToolFailed(f"{name} did not land within {timeout_s}s")
            time.sleep(0.002)
        latency = time.monotonic() - closed
        if landed.stat().st_size != len(data):
            raise ToolFailed(f"{landed} landed with {landed.stat().st_size} bytes, not {len(data)}")
        results.append((mode, latency, len(data)))
    return results
