"""A tool a pipeline worker runs (ffprobe, ffmpeg) ends with the worker: a kill -9 of the daemon ends the
workers (`exit_with_parent`), and `deathsig` ends what they were running (the fault harness found an
ffprobe still running 5 s after a kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mediasyncd.pipeline.orphans import deathsig
from tests.procs import descendants, still_alive

RUNNER = """
import subprocess, sys
from mediasyncd.pipeline.orphans import deathsig
command = ["sleep", "30"]
subprocess.run(deathsig(command) if sys.argv[1] == "deathsig" else command, check=False)
"""


def _tool_left_after_kill(mode: str) -> bool:
    worker = subprocess.Popen([sys.executable, "-c", RUNNER, mode])
    try:
        deadline = time.monotonic() + 20
        while not (tools := descendants(worker.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tools, "the worker never started its tool"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 5
        while still_alive(tools) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = still_alive(tools)
        for pid in left:
            os.kill(pid, signal.SIGKILL)  # ours: the sleep this test started
        return bool(left)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_tool_run_through_deathsig_ends_with_the_process_that_ran_it() -> None:
    assert deathsig(["ffprobe"])[-1] == "ffprobe"
    assert _tool_left_after_kill("plain")  # without it the tool runs on, reparented
    assert not _tool_left_after_kill("deathsig")
