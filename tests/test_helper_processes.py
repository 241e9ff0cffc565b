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
        while time.monotonic() < deadline and _alive(helpers):
            time.sleep(0.1)
        lingering = _alive(helpers)
        assert not lingering, f"helper processes alive 5 s after SIGKILL: {_describe(lingering)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(helpers):
            os.kill(pid, signal.SIGKILL)


def _helpers_of(root: int) -> dict[int, str]:
    """The multiprocessing helpers among `root`'s descendants, each PID with its start time."""
    found: dict[int, str] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except OSError:  # the task ended meanwhile
                continue
        if pid != root and "multiprocessing" in _cmdline(pid):
            started = _start_time(pid)
            if started is not None:
                found[pid] = started
    return found


def _alive(helpers: dict[int, str]) -> dict[int, str]:
    """Those of `helpers` still running: same PID and start time (not reused), and not a zombie."""
    return {pid: started for pid, started in helpers.items() if _start_time(pid) == started}


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    state, started = fields[0], fields[19]
    return None if state in ("Z", "X") else started


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _describe(pids: dict[int, str]) -> str:
    return "; ".join(f"{pid}: {_cmdline(pid)[:120]}" for pid in pids)
