"""bench.tools.Child: a tool's wall time as it ran, and its timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.tools import Child, ToolFailed


def test_the_wall_time_is_not_rounded_up_to_a_poll(tmp_path: Path) -> None:
    """A child that ends after ~70 ms measures ~70 ms. `Popen.wait(timeout)` polls with growing sleeps
    (0.5, 1, 2 … 32, then 50 ms): it could not see this child end before 113.5 ms."""
    walls = [
        Child([sys.executable, "-S", "-c", "import time; time.sleep(0.07)"], tmp_path / "log").wait(30).wall_s
        for _ in range(3)
    ]
    assert min(walls) >= 0.07
    assert min(walls) < 0.105, walls


def test_a_child_past_its_timeout_is_ended_and_reported(tmp_path: Path) -> None:
    child = Child([sys.executable, "-S", "-c", "import time; time.sleep(30)"], tmp_path / "log")
    with pytest.raises(ToolFailed, match="timed out after"):
        child.wait(0.3)
    assert child.proc.returncode is not None
