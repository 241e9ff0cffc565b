"""The media pipeline's helper processes (forkserver, pool workers, resource tracker) die with the CLI."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
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


def test_ctrl_c_stops_run_without_a_traceback_from_its_helpers(tmp_path: Path, sshd: SshServer) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole foreground process group, the pipeline's pool workers
    included: `run` stops cleanly and nothing of them reaches the terminal (they used to print a
    KeyboardInterrupt traceback each)."""
    env = _pipeline_env(tmp_path, sshd, images=2)
    log = tmp_path / "run.log"
    code = _ctrl_c(
        ["run", "--config", str(env.config_path)],
        log,
        lambda pid: len(_helpers_of(pid)) >= 3 and b"pipeline.processed" in log.read_bytes(),
    )
    assert code == 0
    text = log.read_text(errors="replace")
    assert '"event": "stopped"' in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]


def test_ctrl_c_ends_sync_once_with_130_and_one_line(tmp_path: Path, sshd: SshServer) -> None:
    """Ctrl-C (SIGINT to the process group) mid-pull: exit 130 as shells expect, one line saying so,
    no traceback; the next run lands the rest."""
    env = _pipeline_env(tmp_path, sshd, images=2)
    env.config_path.write_text(
        env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    )
    env.write("zz-slow.mp4", os.urandom(8 << 20))
    log = tmp_path / "once.log"
    # Once the pool is up: while the forkserver starts (~6 ms, once per process) SIGINT is ignored
    # (pipeline/orphans.sigint_ignored), and a Ctrl-C in that moment is lost.
    code = _ctrl_c(
        ["sync", "--once", "--no-progress", "--config", str(env.config_path)],
        log,
        lambda pid: b"pipeline.processed" in log.read_bytes(),
    )
    assert code == 130
    text = log.read_text(errors="replace")
    assert "mediasyncd: interrupted" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "zz-slow.mp4" not in env.landed()
    env.config_path.write_text(env.config_path.read_text().replace('bwlimit = "1MiB"', ""))
    again = subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--no-progress", "--config", str(env.config_path)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert env.landed()["zz-slow.mp4"] == (env.remote_root / "zz-slow.mp4").read_bytes()


def _ctrl_c(args: list[str], log: Path, ready: Callable[[int], bool]) -> int:
    """Run `mediasyncd ARGS` in a process group of its own (as a terminal runs a foreground job), logging
    to `log`; once `ready(pid)`, send SIGINT to the whole group as Ctrl-C does; its exit code."""
    with log.open("wb") as out:
        proc = subprocess.Popen([MEDIASYNCD, *args], stdout=out, stderr=out, start_new_session=True)
    try:
        wait_for(lambda: ready(proc.pid), timeout=30)
        os.killpg(proc.pid, signal.SIGINT)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
