"""The security half of the fault harness in quick mode, as `scripts/test` runs it: every scenario meets
its targets (exit 0) and reports its section (bench/faults: hostile, purge_race, hostkeys, config_fuzz,
api)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECURITY = ("hostile", "purge_race", "hostkeys", "config_fuzz", "api")
TITLES = ("## Hostile container", "## Purge races", "## Host keys", "## Config", "## API")

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_the_security_scenarios_meet_every_target_in_quick_mode() -> None:
    """`python -m bench.faults --quick --only hostile,purge_race,hostkeys,config_fuzz,api` exits 0 and
    prints a section with a figures table for each scenario, none crashed, none missed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--only", ",".join(SECURITY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    for title in TITLES:
        assert title in done.stdout, title
    assert "| figure | value | target | met |" in done.stdout
    assert "**no**" not in done.stdout and "scenario crashed" not in done.stdout
    assert all(f"{name}: " in done.stderr and "MISSED" not in done.stderr for name in SECURITY)
