"""How fast the sinks drain a backlog (issue 16: at least 5,000 events/s into PostgreSQL; steady-state lag
p95 at most 1 s after an event is written).

    .venv/bin/python -m bench.sinks_drain [--events 100000] [--batch 500] [--webhook-events 5000] [--doc F]

A real PostgreSQL (initdb in a temp dir, as the tests do) and a state DB holding `--events` events (half
`file_synced`, half `file_processed` with a realistic metadata summary, each upserting `mediasyncd_files`).
The daemon's own SinkDelivery drains them into PostgreSQL; then single events are written one at a time
and the time until the sink acknowledged each is the steady-state lag. The webhook path drains
`--webhook-events` into a local aiohttp receiver that verifies every signature, one event per request
and in batches of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import write_section
from mediasyncd.config import Config, DaemonConfig
from mediasyncd.config_sinks import SinkConfig, parse_webhook_secret
from mediasyncd.logging import configure_logging
from mediasyncd.sinks.delivery import SinkDelivery
from mediasyncd.state import EventType, NewEvent, Store
from tests.postgres import PgServer, find_bin
from tests.sinks.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"bench-key-0123456789abcdef012345").decode()
PROMPT = "masterpiece, a lighthouse on a cliff at dusk, volumetric light, highly detailed, 8k, " * 3


def backlog(n: int) -> list[NewEvent]:
    out = []
    for i in range(n // 2):
        rel = f"txt2img-images/2026-11-{1 + i % 28:02d}/{i:06}-{i * 7919 % 10**9}.png"
        sha = hashlib.sha256(rel.encode()).hexdigest()
        base = {"file_id": i + 1, "sha256": sha, "library_path": f"forge1/{rel}"}
        out.append(
            NewEvent(EventType.FILE_SYNCED, "forge1", rel, "s1", base | {"size": 1_600_000, "mtime": 1.78e9})
        )
        summary = {
            "generator": "a1111", "prompt": PROMPT, "negative_prompt": "blurry, lowres", "model": "sdxl_base",
            "seed": 1234567890 + i, "steps": 30, "cfg": 7.0, "width": 1024, "height": 1024,
            "metadata": {"sampler": "DPM++ 2M", "prompt": PROMPT, "raw": {"parameters": PROMPT}},
        }  # fmt: skip
        out.append(NewEvent(EventType.FILE_PROCESSED, "forge1", rel, None, base | summary))
    return out


async def fill(store: Store, events: list[NewEvent]) -> None:
    for start in range(0, len(events), 5000):
        await store.append(events[start : start + 5000])


async def drain(store: Store, tmp: Path, sink: SinkConfig) -> tuple[float, SinkDelivery]:
    target = await store.last_event_id()
    delivery = SinkDelivery(Config(DaemonConfig(tmp, tmp), sinks=(sink,)), store)
    task = asyncio.get_running_loop().create_task(delivery.run())
    started = time.perf_counter()
    while await store.acked(sink.consumer) < target:  # noqa: ASYNC110 - the acked position, in SQLite
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed, delivery


async def steady_lag(store: Store, tmp: Path, sink: SinkConfig, samples: int) -> list[float]:
    delivery = SinkDelivery(Config(DaemonConfig(tmp, tmp), sinks=(sink,)), store)
    task = asyncio.get_running_loop().create_task(delivery.run())
    lags = []
    try:
        for i in range(samples):
            await store.append(backlog(2)[:1] if i % 2 else backlog(2)[1:])
            target = await store.last_event_id()
            written = time.perf_counter()
            while await store.acked(sink.consumer) < target:  # noqa: ASYNC110 - the acked position, in SQLite
                await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - written)
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return lags


async def bench(events: int, batch: int, webhook_events: int, samples: int) -> list[str]:
    bin_dir = find_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries are missing: run scripts/setup --dev")
    server = PgServer(bin_dir)
    lines: list[str] = []
    try:
        server.init()
        server.start()
        with tempfile.TemporaryDirectory(prefix="mediasyncd-sinks-bench-") as name:
            tmp = Path(name)
            store = Store(tmp / "state.db")
            await store.open()
            await fill(store, backlog(events))
            pg = SinkConfig(name="db", type="postgresql", dsn=server.dsn, schema="bench", batch=batch)
            elapsed, _ = await drain(store, tmp, pg)
            rows = server.psql("SELECT count(*) FROM bench.mediasyncd_events")
            files = server.psql("SELECT count(*) FROM bench.mediasyncd_files")
            lines.append(
                f"postgresql: {events:,} events (batch {batch}) in {elapsed:.2f} s = {events / elapsed:,.0f} events/s; "
                f"rows: {int(rows):,} events, {int(files):,} files"
            )
            lags = sorted(await steady_lag(store, tmp, pg, samples))
            p95 = lags[max(0, int(len(lags) * 0.95) - 1)]
            lines.append(
                f"postgresql steady state: {samples} single events, lag median {statistics.median(lags) * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
            )
            await store.close()
        for hook_batch in (1, 100):
            with tempfile.TemporaryDirectory(prefix="mediasyncd-sinks-bench-") as name:
                tmp = Path(name)
                store = Store(tmp / "state.db")
                await store.open()
                await fill(store, backlog(webhook_events))
                receiver = Receiver(SECRET)
                receiver.start()
                hook = SinkConfig(
                    name="hook", type="webhook", url=receiver.url, secret=parse_webhook_secret(SECRET),
                    batch=hook_batch,
                )  # fmt: skip
                elapsed, _ = await drain(store, tmp, hook)
                receiver.stop()
                await store.close()
                assert receiver.bad_signatures == 0 and len(set(receiver.ids)) == webhook_events
                lines.append(
                    f"webhook (batch {hook_batch}): {webhook_events:,} events in {elapsed:.2f} s = "
                    f"{webhook_events / elapsed:,.0f} events/s, every signature verified by the receiver"
                )
    finally:
        server.cleanup()
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--webhook-events", type=int, default=5_000)
    p.add_argument("--lag-samples", type=int, default=100)
    p.add_argument("--doc", type=Path, help="write the figures into this Markdown file's generated section")
    args = p.parse_args(argv)
    configure_logging("warning", json=True)
    figures = asyncio.run(bench(args.events, args.batch, args.webhook_events, args.lag_samples))
    load = os.getloadavg()[0]
    section = "\n".join(
        [
            "### Sinks: draining the event log (issue 16: at least 5,000 events/s into PostgreSQL, lag p95 at most 1 s)",
            "",
            f"Command: `.venv/bin/python -m bench.sinks_drain --events {args.events} --batch {args.batch} "
            f"--webhook-events {args.webhook_events} --lag-samples {args.lag_samples}`",
            "",
            "```",
            *figures,
            f"machine: {os.cpu_count()} cores, load average {load:.2f} (after the run)",
            "```",
        ]
    )
    print(section)
    if args.doc:
        write_section(args.doc, section, writer="bench/sinks_drain.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
