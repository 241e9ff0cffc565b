"""The media pipeline's helper processes (forkserver, pool workers, resource tracker) die with the CLI."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from mediasyncd.demo.images import write_forge_image
from tests.helpers import MEDIASYNCD, OLD, Env, make_env, start_daemon, wait_for
from tests.procs import cmdline, descendants, still_alive
from tests.sshd import SshServer

WORKERS = 2


def test_kill_9_of_run_leaves_no_helper_process(tmp_path: Path, sshd: SshServer) -> None:
    """Five seconds after SIGKILL of `run`, none of its pipeline helper processes is alive."""
    env = _pipeline_env(tmp_path, sshd, images=4)
    proc = start_daemon(env.config_path, tmp_path / "run.log")
    _kill_and_check(proc)


def test_kill_9_of_sync_once_leaves_no_helper_process(tmp_path: Path, sshd: SshServer) -> None:
    """Five seconds after SIGKILL of `sync --once` mid-run, none of its pipeline helper processes is alive."""
    env = _pipeline_env(tmp_path, sshd, images=4)
    env.config_path.write_text(
        env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    )
    env.write("zz-slow.mp4", os.urandom(16 << 20))  # keeps the run busy for seconds after the images land
    with (tmp_path / "once.log").open("wb") as out:
        proc = subprocess.Popen(
            [MEDIASYNCD, "sync", "--once", "--config", str(env.config_path)], stdout=out, stderr=out
        )
    _kill_and_check(proc)


def _pipeline_env(tmp_path: Path, sshd: SshServer, images: int) -> Env:
    env = make_env(tmp_path, sshd, settle="0s")
    text = env.config_path.read_text().replace("enabled = false", f"enabled = true\nworkers = {WORKERS}")
    env.config_path.write_text(text)
    rng = random.Random(5)
    for index in range(images):
        image = write_forge_image(env.remote_root, index, rng, size=64)
        os.utime(image, (OLD, OLD))
    return env


def _kill_and_check(proc: subprocess.Popen[bytes]) -> None:
    helpers: dict[int, str] = {}
    try:
        # The resource tracker, the forkserver and at least one pool worker.
        wait_for(lambda: len(_helpers_of(proc.pid)) >= 3 and proc.poll() is None, timeout=30)
        helpers = _helpers_of(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and still_alive(helpers):
            time.sleep(0.1)
        lingering = still_alive(helpers)
        assert not lingering, f"helper processes alive 5 s after SIGKILL: {_describe(lingering)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in still_alive(helpers):
            os.kill(pid, signal.SIGKILL)


def _helpers_of(root: int) -> dict[int, str]:
    """The multiprocessing helpers among `root`'s descendants, each PID with its start time."""
    return {pid: t for pid, t in descendants(root).items() if "multiprocessing" in cmdline(pid)}


def _describe(pids: dict[int, str]) -> str:
    return "; ".join(f"{pid}: {cmdline(pid)[:120]}" for pid in pids)
