"""The daemon's supervision seams on their own: a part or a remote that crashes is restarted with backoff
while the others go on; a stop is bounded; a reload restarts only the remotes that changed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import cast

import pytest

from mediasyncd import fleet as fleet_module
from mediasyncd.backoff import Backoff
from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.fleet import Fleet
from mediasyncd.progress import RemoteStatus
from mediasyncd.supervision import restarting, stop_within
from mediasyncd.transfer.puller import Puller

FAST = Backoff(base=0.01, cap=0.02)


@dataclass
class FakePuller:
    """Stands in for a Puller: records its runs; the first `crashes` runs of its remote raise."""

    remote: RemoteConfig
    runs: list[str]
    crashes: dict[str, int]
    status: RemoteStatus = field(default_factory=lambda: RemoteStatus("x"))

    async def run(self) -> None:
        self.runs.append(self.remote.name)
        if self.crashes.get(self.remote.name, 0) > 0:
            self.crashes[self.remote.name] -= 1
            raise RuntimeError("bug")
        await asyncio.Event().wait()


def make_fleet(runs: list[str], crashes: dict[str, int], made: list[FakePuller]) -> Fleet:
    def make(remote: RemoteConfig) -> Puller:
        p = FakePuller(remote, runs, crashes)
        made.append(p)
        return cast(Puller, p)

    return Fleet(make)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_a_crashing_remote_is_restarted_with_a_fresh_puller_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_module, "REMOTE_RESTART", FAST)
    runs: list[str] = []
    made: list[FakePuller] = []
    fleet = make_fleet(runs, {"bad": 2}, made)
    await fleet.apply([RemoteConfig("good"), RemoteConfig("bad")], TransferConfig())
    await settle()
    assert runs.count("good") == 1
    assert runs.count("bad") == 3  # two crashes, then it runs
    bad = [p for p in made if p.remote.name == "bad"]
    assert len(bad) == 3 and fleet.pullers()["bad"] is cast(
        Puller, bad[-1]
    )  # a fresh Puller after each crash
    assert bad[0].status.state == "error" and "restarting" in (bad[0].status.last_error or "")
    stuck = await stop_within(fleet.tasks(), 1.0, asyncio.Event())
    assert stuck == []


async def test_a_reload_restarts_only_changed_remotes_and_stops_removed_ones() -> None:
    runs: list[str] = []
    made: list[FakePuller] = []
    fleet = make_fleet(runs, {}, made)
    a, b, c = RemoteConfig("a"), RemoteConfig("b"), RemoteConfig("c")
    await fleet.apply([a, b, c], TransferConfig())
    await settle()
    assert sorted(runs) == ["a", "b", "c"]
    assert await fleet.remove_missing(["a", "b"]) == ["c"]
    await fleet.apply([a, replace(b, poll_interval=3.0)], TransferConfig())
    await settle()
    assert sorted(runs) == ["a", "b", "b", "c"]  # b restarted, a untouched, c gone
    assert set(fleet.pullers()) == {"a", "b"}
    await fleet.apply([a, replace(b, poll_interval=3.0)], TransferConfig(concurrency=1))
    await settle()
    assert sorted(runs) == ["a", "a", "b", "b", "b", "c"]  # a transfer change restarts every remote
    await stop_within(fleet.tasks(), 1.0, asyncio.Event())


async def test_restarting_returns_when_the_part_returns_and_counts_crashes() -> None:
    crashes: list[float] = []
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ValueError(calls)

    await restarting(flaky, FAST, lambda _e, delay: crashes.append(delay))
    assert calls == 4 and len(crashes) == 3
    assert all(0.005 <= d <= 0.02 for d in crashes)


async def test_a_stop_names_what_ignores_its_cancel_and_a_force_cuts_the_wait() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    async def polite() -> None:
        await asyncio.sleep(10)

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(stubborn(), name="stubborn"), loop.create_task(polite(), name="polite")]
    await asyncio.sleep(0)
    started = loop.time()
    assert await stop_within(tasks, 0.2, asyncio.Event()) == ["stubborn"]
    assert 0.15 <= loop.time() - started < 1.0
    force = asyncio.Event()
    force.set()
    started = loop.time()
    assert await stop_within(tasks, 30.0, force) == ["stubborn"]
    assert loop.time() - started < 1.0
    release.set()  # end the test's stubborn part
    tasks[0].cancel()
    await asyncio.wait(tasks, timeout=1.0)
