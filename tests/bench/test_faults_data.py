"""The data-path half of the fault harness (issue 22) in quick mode, as `scripts/test` runs it: kill -9 of
`run` in four phases, a cut and lossy WAN link, full disks, a mini soak. Every target must be met."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.faults import crash, disk, link, soak
from bench.faults.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parents[2]
DATA_PATH = ("crash", "link", "disk", "soak")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_data_path_scenarios_meet_every_target_in_quick_mode(tmp_path: Path) -> None:
    """`python -m bench.faults --quick --only crash,link,disk,soak` exits 0 (every target met) and its
    report has each scenario's section with its counted figures, in well under the suite's budget."""
    out = tmp_path / "reliability.md"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--only", ",".join(DATA_PATH), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    took = time.monotonic() - started
    print(done.stderr)  # each scenario's time, for the record (pytest -s / -rA)
    report = out.read_text() if out.exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + report
    for module in (crash, link, disk, soak):
        assert f"## {module.TITLE}" in report
    assert "| partial files visible in the library | 0 | 0 | yes |" in report
    assert "| files marked failed | 0 | 0 | yes |" in report
    assert "state fs full: /status says why transfers pause" in report
    assert "**no**" not in report
    assert took < 300, f"the data-path scenarios took {took:.0f} s in quick mode: {done.stderr}"


def test_the_data_path_scenarios_are_listed_first_in_their_group() -> None:
    assert SCENARIOS[: len(DATA_PATH)] == DATA_PATH


def test_the_soak_compares_window_medians_after_a_warm_up_past_the_periodic_jobs() -> None:
    """One sample can sit on either side of a heap trim; the median of a window cannot be moved by one."""
    series = [(float(t), 100 + (50 if t == 9 else 0)) for t in range(10)]  # one spike, at the last sample
    assert soak.window_median(series, 5.0, 10.0) == 100
    assert soak.window_median(series, 0.0, 3.0) == 100
    assert soak.window_median(series, 20.0, 30.0) == 150  # no sample inside: the last one
    assert (
        soak.warmup_for(3600.0) == 720.0
    )  # the hour: past the purges at 5 and 10 min, the first listing at 10
    assert soak.warmup_for(600.0) == 120.0
    assert soak.warmup_for(60.0) == 60.0


def test_a_crashed_scenario_says_where_it_crashed() -> None:
    """A scenario that raises is a finding: the report names the error and the innermost frames."""
    from bench.faults.__main__ import _where

    def innermost() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/proc/1/task")

    try:
        innermost()
    except OSError as e:
        where = _where(e)
    assert where[-1].startswith("test_faults_data.py:") and where[-1].endswith(" in innermost")
