"""Live progress of every remote, in memory: what /status, /ws and the CLI show (SPEC §3.10)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

RemoteState = Literal["connecting", "connected", "backoff", "error"]
SNAPSHOT_MAX_AGE = 0.05  # seconds a serialized snapshot is shared between clients
HELD = "paused by the operator (mediasyncd resume REMOTE)"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class InFlight:
    path: str
    size: int
    started: float = field(default_factory=time.monotonic)
    start_bytes: int | None = None
    bytes_done: int = 0

    def update(self, done: int) -> None:
        if self.start_bytes is None:
            self.start_bytes = done  # a resumed transfer starts past zero
        self.bytes_done = done

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = max(self.bytes_done - (self.start_bytes or 0), 0) / elapsed
        eta = (self.size - self.bytes_done) / rate if rate > 0 else None
        return {
            "path": self.path,
            "bytes_done": self.bytes_done,
            "size": self.size,
            "rate_bps": round(rate, 1),
            "eta_s": round(eta, 2) if eta is not None else None,
        }


PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass
class Buckets:
    """A histogram's counts (cumulative at export): what /metrics shows as a Prometheus histogram."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    observed: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        self.total += value
        self.observed += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs ending with +Inf, as the exposition format wants them."""
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts or [0] * len(self.bounds), strict=True):
            running += count
            out.append((repr(float(bound)), running))
        return [*out, ("+Inf", self.observed)]


@dataclass
class RemoteStatus:
    name: str
    state: RemoteState = "connecting"
    last_pass_at: float | None = None
    last_pass_s: float | None = None
    last_pass_result: str | None = None
    last_error: str | None = None
    settling: int = 0
    queued: int = 0
    paused: str | None = None
    held: bool = False  # paused by the operator (API, `mediasyncd pause`): no new files are taken
    capabilities: str | None = None
    round_trip_ms: float | None = None  # SSH: the connection's round trip (the kernel's figure), if known
    transport: str = "ssh"
    watch_mode: str | None = None  # "agent", "poll" or "watchfiles" once a session runs
    watch_reason: str | None = None  # why not the agent, or None
    landed_files: int = 0
    landed_bytes: int = 0
    resumed_files: int = 0  # transfers that continued a partial instead of starting over, since start
    resumed_bytes: int = 0  # bytes those did not fetch again
    failed_files: int = 0
    skipped_names: int = 0
    in_flight: dict[int, InFlight] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # failed transfers by reason, since start
    pass_seconds: Buckets = field(default_factory=lambda: Buckets(PASS_BUCKETS))
    landed_latency: Buckets = field(
        default_factory=lambda: Buckets(LATENCY_BUCKETS)
    )  # remote mtime -> landed

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "last_pass_at": iso(self.last_pass_at),
            "last_pass_s": round(self.last_pass_s, 3) if self.last_pass_s is not None else None,
            "last_pass_result": self.last_pass_result,
            "last_error": self.last_error,
            "settling": self.settling,
            "queued": self.queued,
            "in_flight": [f.snapshot() for f in self.in_flight.values()],
            "landed_files": self.landed_files,
            "landed_bytes": self.landed_bytes,
            "resumed_files": self.resumed_files,
            "resumed_bytes": self.resumed_bytes,
            "failed_files": self.failed_files,
            "skipped_names": self.skipped_names,
            "paused": self.paused or (HELD if self.held else None),
            "held": self.held,
            "capabilities": self.capabilities,
            "round_trip_ms": self.round_trip_ms,
            "transport": self.transport,
            "watch_mode": self.watch_mode,
            "watch_reason": self.watch_reason,
        }


@dataclass
class StatusView:
    """Everything the status server shows; components update their own RemoteStatus in place."""

    version: str
    config_path: str | None
    started: float = field(default_factory=time.monotonic)
    remotes: dict[str, RemoteStatus] = field(default_factory=dict)
    sections: dict[str, Callable[[], Any]] = field(default_factory=dict)  # more top-level keys, e.g. "purge"
    _cached: tuple[float, str] | None = field(default=None, repr=False)
    stages: dict[str, Buckets] = field(default_factory=dict)  # media pipeline stage durations (/metrics)

    def stage_seconds(self, stage: str) -> Buckets:
        return self.stages.setdefault(stage, Buckets(STAGE_BUCKETS))

    def serialized(self, max_age: float = SNAPSHOT_MAX_AGE) -> str:
        """The snapshot as compact JSON, made at most once per `max_age` seconds however many clients ask
        (every /ws client and /status request share it)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > max_age:
            self._cached = (now, json.dumps(self.snapshot(), separators=(",", ":")))
        return self._cached[1]

    def invalidate(self) -> None:
        """A change a client must see at once (it asked for it): the next `serialized` is fresh."""
        self._cached = None

    def remote(self, name: str) -> RemoteStatus:
        if name not in self.remotes:
            self.remotes[name] = RemoteStatus(name)
        return self.remotes[name]

    def snapshot(self) -> dict[str, Any]:
        remotes = [r.snapshot() for r in self.remotes.values()]
        extra = {key: provide() for key, provide in self.sections.items()}
        return extra | {
            "version": self.version,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "config": self.config_path,
            "remotes": remotes,
            "totals": {
                "landed_files": sum(r["landed_files"] for r in remotes),
                "landed_bytes": sum(r["landed_bytes"] for r in remotes),
                "failed_files": sum(r["failed_files"] for r in remotes),
            },
        }
