"""Plug-in sinks from the entry-point group `mediasyncd.sinks`: the example package delivers, a plug-in
that exits, raises or hangs is retried and cannot stop the daemon, `EventRejected` parks, and a missing
plug-in is an error the status shows."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mediasyncd.backoff import Backoff
from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.delivery import SinkDelivery
from mediasyncd.state import EventType, NewEvent, Store
from tests.helpers import until
from tests.sinks import plugins
from tests.sinks.test_delivery import Running, append, config

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = plugins.install(tmp_path_factory.mktemp("site"))
    sys.path.insert(0, str(path))
    yield path
    sys.path.remove(str(path))
    sys.modules.pop("mediasyncd_jsonl_sink", None)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "state.db")
    await s.open()
    yield s
    await s.close()


def run(tmp_path: Path, store: Store, *cfgs: SinkConfig) -> Running:
    return Running(SinkDelivery(config(tmp_path, *cfgs), store, outage=FAST, rejected=FAST))


def plugin(name: str, entry: str, **options: object) -> SinkConfig:
    return SinkConfig(name=name, type="plugin", plugin=entry, options=options, max_attempts=2, timeout=0.3)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_the_example_plugin_receives_envelopes(site: Path, tmp_path: Path, store: Store) -> None:
    """The example package, found by its entry point, appends each envelope to its file."""
    out = tmp_path / "events.jsonl"
    await store.append([NewEvent(EventType.SYNC_COMPLETE, "r1", None, "s1", {"landed": 1})])
    running = run(tmp_path, store, plugin("log", "jsonl", path=str(out)))
    await until(lambda: len(lines(out)) == 1)
    await running.stop()
    (event,) = [json.loads(line) for line in lines(out)]
    assert event["id"] == 1 and event["type"] == "sync_complete" and event["sync_id"] == "s1"


async def test_a_plugin_that_exits_raises_or_hangs_is_retried(
    site: Path, tmp_path: Path, store: Store
) -> None:
    """SystemExit, an exception and a hang (past the sink's timeout) are outages; then the events arrive."""
    plugins.Crashing.failures = 0
    out = tmp_path / "ids"
    await append(store, 3)
    running = run(tmp_path, store, plugin("c", "crashing", times=3, path=str(out)))
    await until(lambda: lines(out) == ["1", "2", "3"])
    assert plugins.Crashing.failures == 3 + 3  # three failed calls, then one event per call (batch 1)
    await running.stop()


async def test_a_plugin_rejecting_an_event_gets_it_parked(site: Path, tmp_path: Path, store: Store) -> None:
    """EventRejected: the batch is split, the event parked after max_attempts, the others delivered."""
    out = tmp_path / "ids"
    await append(store, 5)
    running = run(tmp_path, store, plugin("p", "picky", reject=[3], path=str(out)))
    await until(lambda: sorted(lines(out)) == ["1", "2", "4", "5"])
    await until(lambda: running.delivery.statuses["p"].parked == 1)
    await running.stop()


async def test_a_missing_plugin_is_an_error_in_the_status(site: Path, tmp_path: Path, store: Store) -> None:
    """No such entry point: backoff, and the status names the group and what is installed."""
    running = run(tmp_path, store, plugin("x", "nope"))

    def error() -> str:
        status = running.delivery.statuses.get("x")
        return (status.last_error if status else None) or ""

    await until(lambda: "no sink plugin 'nope'" in error())
    assert "jsonl" in error() and running.delivery.statuses["x"].state == "backoff"
    await running.stop()
