"""`GET /metrics`: the Prometheus exposition, made by prometheus-client from the StatusView at scrape time.

The numbers are the ones /status shows, read when Prometheus asks: nothing is counted twice and a scrape
costs one snapshot. Names follow Prometheus conventions (`mediasyncd_…_total`, `_seconds`, `_bytes`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mediasyncd.progress import RemoteStatus, StatusView

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatusCollector(Collector):
    def __init__(self, view: StatusView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        yield from families(self.view.snapshot())
        yield from histograms(self.view.remotes.values())
        stages = HistogramMetricFamily(
            "mediasyncd_pipeline_stage_duration_seconds",
            "how long a media pipeline stage took for a file",
            labels=["stage"],
        )
        for stage, buckets in self.view.stages.items():
            stages.add_metric([stage], buckets.cumulative(), buckets.total)
        yield stages


def histograms(remotes: Iterable[RemoteStatus]) -> list[Metric]:
    passes = HistogramMetricFamily(
        "mediasyncd_pass_duration_seconds", "how long a pass (listing and diff) took", labels=["remote"]
    )
    latency = HistogramMetricFamily(
        "mediasyncd_landed_latency_seconds",
        "from the file's last write on the remote (its mtime) to landed in the library",
        labels=["remote"],
    )
    failures = CounterMetricFamily(
        "mediasyncd_transfer_failures",
        "failed transfers since the daemon started, by reason (verification, transfer, landing, local_io, "
        "unsafe_path)",
        labels=["remote", "reason"],
    )
    for r in remotes:
        for family, buckets in ((passes, r.pass_seconds), (latency, r.landed_latency)):
            family.add_metric([r.name], buckets.cumulative(), buckets.total)
        for reason, count in sorted(r.failures.items()):
            failures.add_metric([r.name, reason], count)
    return [passes, latency, failures]


def families(snapshot: dict[str, Any]) -> list[Metric]:
    """Metric families from a /status snapshot (pure)."""
    info = InfoMetricFamily("mediasyncd", "the running daemon")
    info.add_metric([], {"version": str(snapshot["version"])})
    uptime = GaugeMetricFamily("mediasyncd_uptime_seconds", "seconds since the daemon started")
    uptime.add_metric([], float(snapshot["uptime_s"]))
    labels = ["remote"]
    landed = CounterMetricFamily("mediasyncd_landed_files", "files landed and verified", labels=labels)
    landed_bytes = CounterMetricFamily("mediasyncd_landed_bytes", "bytes landed and verified", labels=labels)
    failed = GaugeMetricFamily("mediasyncd_failed_files", "files whose last transfer failed", labels=labels)
    resumed = CounterMetricFamily(
        "mediasyncd_resumed_bytes",
        "bytes not fetched again: transfers continued from a partial",
        labels=labels,
    )
    up = GaugeMetricFamily("mediasyncd_remote_up", "1 while the remote is connected", labels=labels)
    held = GaugeMetricFamily("mediasyncd_remote_held", "1 while the operator holds the remote", labels=labels)
    queue = GaugeMetricFamily("mediasyncd_queue_files", "files waiting, by state", labels=["remote", "state"])
    last_pass = GaugeMetricFamily(
        "mediasyncd_last_pass_duration_seconds", "how long the last pass took", labels=labels
    )
    watch = GaugeMetricFamily(
        "mediasyncd_remote_watch_mode", "1 for the way the remote is watched now", labels=["remote", "mode"]
    )
    skipped = CounterMetricFamily(
        "mediasyncd_skipped_names", "remote files skipped for an unsafe name", labels=labels
    )
    round_trip = GaugeMetricFamily(
        "mediasyncd_remote_round_trip_seconds",
        "the SSH connection's round trip as the kernel measured it (where known)",
        labels=labels,
    )
    for r in snapshot["remotes"]:
        name = [r["name"]]
        landed.add_metric(name, r["landed_files"])
        landed_bytes.add_metric(name, r["landed_bytes"])
        failed.add_metric(name, r["failed_files"])
        resumed.add_metric(name, r.get("resumed_bytes", 0))
        up.add_metric(name, 1.0 if r["state"] == "connected" else 0.0)
        held.add_metric(name, 1.0 if r.get("held") else 0.0)
        queue.add_metric([r["name"], "settling"], r["settling"])
        queue.add_metric([r["name"], "queued"], r["queued"])
        queue.add_metric([r["name"], "in_flight"], len(r["in_flight"]))
        if r["last_pass_s"] is not None:
            last_pass.add_metric(name, r["last_pass_s"])
        skipped.add_metric(name, r["skipped_names"])
        if r.get("watch_mode"):
            watch.add_metric([r["name"], r["watch_mode"]], 1.0)
        if r.get("round_trip_ms") is not None:
            round_trip.add_metric(name, r["round_trip_ms"] / 1000)
    out: list[Metric] = [
        info,
        uptime,
        landed,
        landed_bytes,
        failed,
        resumed,
        up,
        held,
        queue,
        last_pass,
        skipped,
        watch,
        round_trip,
    ]
    library = snapshot.get("library")
    if library is not None:
        available = GaugeMetricFamily("mediasyncd_library_available", "1 while the library can be written")
        available.add_metric([], 1.0 if library["available"] else 0.0)
        out.append(available)
    purge = snapshot.get("purge")
    if purge is not None:
        out += _purge_families(purge)
    out += _sink_families(snapshot.get("sinks") or [])
    return out


def _sink_families(sinks: list[dict[str, Any]]) -> list[Metric]:
    labels = ["sink", "type"]
    lag_events = GaugeMetricFamily("mediasyncd_sink_lag_events", "events not yet delivered", labels=labels)
    lag_s = GaugeMetricFamily(
        "mediasyncd_sink_lag_seconds", "age of the oldest event not yet delivered", labels=labels
    )
    parked = GaugeMetricFamily(
        "mediasyncd_sink_parked_events", "events the sink rejected, parked", labels=labels
    )
    up = GaugeMetricFamily("mediasyncd_sink_up", "1 while the sink is delivering (state ok)", labels=labels)
    acked = GaugeMetricFamily(
        "mediasyncd_sink_acked_event_id", "the last event id it confirmed", labels=labels
    )
    for sink in sinks:
        names = [str(sink["name"]), str(sink["type"])]
        lag_events.add_metric(names, sink["lag_events"])
        lag_s.add_metric(names, sink["lag_s"])
        parked.add_metric(names, sink["parked"])
        up.add_metric(names, 1.0 if sink["state"] == "ok" else 0.0)
        acked.add_metric(names, sink["acked_id"])
    return [lag_events, lag_s, parked, up, acked]


def _purge_families(purge: dict[str, Any]) -> list[Metric]:
    deleted = GaugeMetricFamily(
        "mediasyncd_purge_last_deleted_files", "files the last purge run deleted", labels=["remote"]
    )
    freed = GaugeMetricFamily(
        "mediasyncd_purge_last_freed_bytes", "bytes the last purge run freed on the remote", labels=["remote"]
    )
    deleted_total = CounterMetricFamily(
        "mediasyncd_purge_deleted_files",
        "files purged from the remote since the daemon started",
        labels=["remote"],
    )
    freed_total = CounterMetricFamily(
        "mediasyncd_purge_freed_bytes",
        "bytes purged from the remote since the daemon started",
        labels=["remote"],
    )
    held = GaugeMetricFamily("mediasyncd_purge_held", "1 while scheduled purges are held")
    held.add_metric([], 1.0 if purge.get("held") else 0.0)
    for r in purge["remotes"]:
        deleted_total.add_metric([r["name"]], r.get("deleted_files_total", 0))
        freed_total.add_metric([r["name"]], r.get("freed_bytes_total", 0))
        last = r.get("last_run") or {}
        if last:
            deleted.add_metric([r["name"]], last.get("deleted_files") or 0)
            freed.add_metric([r["name"]], last.get("freed_bytes") or 0)
    return [deleted, freed, deleted_total, freed_total, held]


def metrics_handler(view: StatusView) -> Handler:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(view))

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return metrics
