"""The /proc walker the tests and the fault harness use to find what a killed process left behind."""

from __future__ import annotations

import subprocess
import time

from tests.procs import children, descendants, subtree


def test_a_process_tree_is_listed_and_a_gone_process_has_no_children() -> None:
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(subtree(shell.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        sleeps = subtree(shell.pid)
        assert sorted(children(shell.pid)) == sorted(sleeps)
        assert set(descendants(shell.pid)) == set(sleeps)
    finally:
        shell.kill()
        shell.wait()
    # Gone (and reaped): its /proc directory is not there, which is an answer, not an error. The
    # orphaned sleeps are ended by their PIDs, which were read while the shell lived.
    assert children(shell.pid) == [] and subtree(shell.pid) == []
    for pid in sleeps:
        subprocess.run(["kill", str(pid)], check=False)
