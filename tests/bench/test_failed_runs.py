"""A tool that fails one run is reported with the tables and left out of the medians; the run goes on."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import bench.scenarios as scenarios
from bench.datasets import Dataset, PngFactory
from bench.tools import RunStats, ToolFailed


class FlakyTool:
    """Fails its first pull, then copies the dataset like a working tool."""

    calls = 0

    def __init__(self, name: str, source: Path, work: Path) -> None:
        self.name, self.source, self.dest = name, source, work / "dest"

    def pull(self, timeout_s: float) -> RunStats:
        FlakyTool.calls += 1
        if FlakyTool.calls == 1:
            raise ToolFailed(f"{self.name} exited 1: remote shell failed")
        self.dest.mkdir(parents=True, exist_ok=True)
        for f in self.source.iterdir():
            (self.dest / f.name).write_bytes(f.read_bytes())
        return RunStats(wall_s=2.0, cpu_s=0.5, maxrss_mb=10.0, machine_cpu_s=0.8)


def test_a_failed_run_is_recorded_and_the_others_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.png").write_bytes(b"x" * 1000)
    data = Dataset("PNG", source, 1, 1000)
    monkeypatch.setattr(scenarios, "check_link", lambda *args: None)
    monkeypatch.setattr(
        scenarios, "_make_tool", lambda name, endpoint, src, work, params: FlakyTool(name, src, work)
    )
    said: list[str] = []
    endpoint: Any = type("Endpoint", (), {"label": "loopback"})()
    params = scenarios.ScenarioParams(repeat=2, tools=("rsync",))
    result = scenarios.run_scenarios(
        endpoint, [data], params, PngFactory(8, random.Random(1), pool=1), tmp_path / "s", said.append
    )
    assert result.failures == ["#1 PNG rsync: rsync exited 1: remote shell failed"]
    assert result.samples[("full_s", "PNG", "rsync")] == [2.0]
    assert any("FAILED" in line for line in said)
