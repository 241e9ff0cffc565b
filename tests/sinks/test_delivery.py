"""The delivery engine against a sink in memory and a real state DB: id order, batches, acks only after
the sink confirmed, outages, poison events parked and re-queued, a 410, reloads and back-fill."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from mediasyncd.backoff import Backoff
from mediasyncd.config import Config, DaemonConfig
from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import Envelope
from mediasyncd.sinks.delivery import SinkDelivery
from mediasyncd.state import EventType, NewEvent, Store
from mediasyncd.state import sinks as ledger
from tests.helpers import until
from tests.sinks.memory import MemorySink

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "state.db")
    await s.open()
    yield s
    await s.close()


def config(tmp_path: Path, *sinks: SinkConfig) -> Config:
    return Config(DaemonConfig(tmp_path / "lib", tmp_path), sinks=sinks)


def sink_config(name: str = "mem", **more: object) -> SinkConfig:
    return SinkConfig(name=name, type="plugin", plugin="memory", **more)  # type: ignore[arg-type]


async def append(store: Store, n: int, kind: EventType = EventType.SYNC_COMPLETE) -> None:
    await store.append([NewEvent(kind, "r1", None, None, {"n": i}) for i in range(n)])


def state(run: Running, name: str = "mem") -> str | None:
    status = run.delivery.statuses.get(name)
    return status.state if status else None


class Running:
    def __init__(self, delivery: SinkDelivery) -> None:
        self.delivery = delivery
        self.task = asyncio.get_running_loop().create_task(delivery.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def start(tmp_path: Path, store: Store, sinks: dict[str, MemorySink], *cfgs: SinkConfig) -> Running:
    delivery = SinkDelivery(
        config(tmp_path, *cfgs), store, make=lambda c: sinks[c.name], outage=FAST, rejected=FAST
    )
    return Running(delivery)


async def test_delivers_every_event_in_id_order_in_batches_and_acks(tmp_path: Path, store: Store) -> None:
    """Events already in the log and new ones arrive once each, in id order, at most `batch` at a time;
    the position is acknowledged."""
    await append(store, 25)
    mem = MemorySink()
    run = start(tmp_path, store, {"mem": mem}, sink_config(batch=10))
    await until(lambda: len(mem.got) == 25)
    await append(store, 5)
    await until(lambda: len(mem.got) == 30)
    await run.stop()
    assert mem.got == sorted(mem.got) == list(range(1, 31))
    assert max(len(b) for b in mem.batches) <= 10
    assert await store.acked("sink:mem") == 30


async def test_only_the_wanted_types_are_delivered(tmp_path: Path, store: Store) -> None:
    """`events` filters what the sink gets; the position still passes the others."""
    await append(store, 3)
    await append(store, 2, EventType.PURGE_COMPLETE)
    mem = MemorySink()
    run = start(tmp_path, store, {"mem": mem}, sink_config(events=("purge_complete",)))
    await until(lambda: len(mem.got) == 2)
    await until(lambda: run.delivery.statuses["mem"].acked_id == 5)
    await run.stop()
    assert mem.got == [4, 5]


async def test_an_outage_holds_the_position_and_nothing_is_lost(tmp_path: Path, store: Store) -> None:
    """While the sink is down nothing is acknowledged and the state says backoff; back up, all arrive."""
    mem = MemorySink(down=True)
    await append(store, 4)
    run = start(tmp_path, store, {"mem": mem}, sink_config())
    await until(lambda: state(run) == "backoff")
    assert await store.acked("sink:mem") == 0
    assert "down" in (run.delivery.statuses["mem"].last_error or "")
    mem.down = False
    await until(lambda: len(mem.got) == 4)
    await until(lambda: state(run) == "ok")
    await run.stop()


async def test_a_poison_event_is_parked_and_retry_requeues_it(tmp_path: Path, store: Store) -> None:
    """A rejected event is found in its batch, retried, parked after max_attempts (the ones behind it go
    on), shown as parked; `events retry` re-queues it and it is delivered out of order."""
    await append(store, 10)
    mem = MemorySink(reject={4})
    run = start(tmp_path, store, {"mem": mem}, sink_config(batch=10, max_attempts=3))
    await until(lambda: len(mem.got) == 9)
    assert mem.got == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    status = run.delivery.statuses["mem"]
    await until(lambda: status.acked_id == 10)
    assert status.parked == 1 and "rejected" in (status.last_error or "")
    conn = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    (row,) = conn.execute("SELECT event_id, attempts, parked FROM sink_rejects").fetchall()
    assert row == (4, 3, 1)
    mem.reject.clear()
    assert ledger.requeue_parked(conn, "mem") == 1
    await until(lambda: 4 in mem.got)
    await until(lambda: status.parked == 0)
    assert conn.execute("SELECT COUNT(*) FROM sink_rejects").fetchone()[0] == 0
    await run.stop()


async def test_a_410_disables_the_sink_until_its_config_changes(tmp_path: Path, store: Store) -> None:
    """Gone: state disabled, the sink no longer holds the log back; a restart with the same config keeps
    it disabled, a changed config starts it again."""
    await append(store, 2)
    mem = MemorySink(gone=True)
    cfg = sink_config()
    run = start(tmp_path, store, {"mem": mem}, cfg)
    await until(lambda: state(run) == "disabled")
    await until(lambda: not run.delivery._running)
    await run.stop()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("SELECT enabled FROM consumers WHERE name = 'sink:mem'").fetchone() == (0,)
    mem.gone = False
    again = start(tmp_path, store, {"mem": mem}, cfg)
    await until(lambda: again.delivery.statuses.get("mem") is not None)
    await until(lambda: state(again) == "disabled")
    again.delivery.reload(config(tmp_path, replace(cfg, batch=7)))
    await until(lambda: len(mem.got) == 2)
    await again.stop()


async def test_reload_adds_and_removes_sinks_keeping_positions(tmp_path: Path, store: Store) -> None:
    """A sink removed by a reload stops holding the log back; added again, it resumes from its position."""
    await append(store, 3)
    a, b = MemorySink(), MemorySink()
    run = start(tmp_path, store, {"a": a, "b": b}, sink_config("a"))
    await until(lambda: len(a.got) == 3)
    run.delivery.reload(config(tmp_path, sink_config("a"), sink_config("b")))
    await until(lambda: len(b.got) == 3)
    run.delivery.reload(config(tmp_path, sink_config("b")))
    await until(lambda: "a" not in run.delivery.statuses)
    await append(store, 2)
    await until(lambda: len(b.got) == 5)
    conn = sqlite3.connect(tmp_path / "state.db")
    assert dict(conn.execute("SELECT name, enabled FROM consumers").fetchall()) == {"sink:a": 0, "sink:b": 1}
    run.delivery.reload(config(tmp_path, sink_config("a"), sink_config("b")))
    await until(lambda: len(a.got) == 5)
    assert a.got == [1, 2, 3, 4, 5]
    await run.stop()


async def test_a_crashing_sink_is_restarted_not_the_daemon(tmp_path: Path, store: Store) -> None:
    """A sink whose deliver raises something unexpected is an outage; the events still arrive later."""

    class Flaky(MemorySink):
        calls = 0

        async def deliver(self, events: Sequence[Envelope]) -> None:
            Flaky.calls += 1
            if Flaky.calls < 3:
                raise ZeroDivisionError("plugin bug")
            await super().deliver(events)

    await append(store, 2)
    flaky = Flaky()
    run = start(tmp_path, store, {"mem": flaky}, sink_config())
    await until(lambda: len(flaky.got) == 2)
    await run.stop()
