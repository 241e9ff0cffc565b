"""Agent mode against the real OpenSSH sshd: `mediasyncd run` with the agent deployed over SSH."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Env, make_env, start_daemon, stop, wait_for
from tests.sshd import SshServer, cut_link, session_pids
from tests.test_daemon import port_of, status_or_none

pytestmark = pytest.mark.slow


def agent_pids(server: SshServer) -> list[int]:
    """Agent processes below this test's sshd (`pgrep -f mediasyncd-agent`, limited to its sessions)."""
    found = []
    for pid in session_pids(server):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"mediasyncd-agent" in cmdline:
            found.append(pid)
    return found


def agents_for(root: Path) -> list[int]:
    """Live agent processes anywhere whose command line names this test's remote root (an orphan is
    no longer below sshd)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"mediasyncd-agent" in cmdline and os.fsencode(root) in cmdline.split(b"\0") and state != "Z":
            found.append(int(proc.name))
    return found


def watch_of(port: int) -> tuple[str | None, str | None]:
    s = status_or_none(port)
    if not s or not s["remotes"]:
        return None, None
    r = s["remotes"][0]
    return r["watch_mode"], r["watch_reason"]


def log_events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


@contextlib.contextmanager
def daemon(env: Env, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_daemon(env.config_path, log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            assert stop(proc) == 0


def agent_env(tmp_path: Path, sshd: SshServer, **extra: Any) -> Env:
    # poll_interval 60s: whatever lands within seconds was reported by the agent, not found by a poll
    return make_env(tmp_path, sshd, watch="agent", poll_interval="60s", settle="1s", **extra)


def test_events_land_sub_second_and_status_says_agent(tmp_path: Path, sshd: SshServer) -> None:
    """A file closed on the remote lands well within a second; /status shows watch_mode agent, no reason."""
    env = agent_env(tmp_path, sshd)
    env.write("old.png", b"already there")  # found by the reconciliation listing at start
    port = port_of(env.config_path)
    with daemon(env, tmp_path / "d.log"):
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        wait_for(lambda: (env.library / "r1/old.png").exists(), timeout=10)
        assert len(agent_pids(sshd)) == 1
        latencies = []
        for i in range(3):
            target = env.library / f"r1/new{i}.png"
            started = time.monotonic()
            (env.remote_root / f"new{i}.png").write_bytes(os.urandom(300_000))
            wait_for(target.exists, timeout=10, interval=0.01)
            latencies.append(time.monotonic() - started)
    assert sorted(latencies)[1] < 1.0, latencies  # the median, on a loaded test machine
    assert env.landed()[f"new{i}.png"] == (env.remote_root / f"new{i}.png").read_bytes()


def test_bursts_of_new_directories_and_rename_into_place(tmp_path: Path, sshd: SshServer) -> None:
    """Files in directories created in a burst all land once; a *.tmp renamed into place lands by its
    final name only."""
    env = agent_env(tmp_path, sshd)
    port = port_of(env.config_path)
    with daemon(env, tmp_path / "d.log"):
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        expected = {}
        for d in range(10):
            sub = env.remote_root / f"batch{d}" / "x"
            sub.mkdir(parents=True)
            for f in range(20):
                data = f"{d}-{f}".encode() * 50
                (sub / f"{f:03d}.png").write_bytes(data)
                expected[f"batch{d}/x/{f:03d}.png"] = data
        tmp = env.remote_root / "a1111.png.tmp"
        tmp.write_bytes(b"written then renamed")
        tmp.rename(env.remote_root / "a1111.png")
        expected["a1111.png"] = b"written then renamed"
        wait_for(lambda: len(env.landed()) >= len(expected), timeout=60)
        time.sleep(0.5)
    assert env.landed() == expected
    rows = env.rows("SELECT rel, count(*) FROM files GROUP BY rel HAVING count(*) > 1")
    assert rows == []  # none twice
    # passes are bursts: every landed file is counted in exactly one sync_complete, and there are
    # fewer passes than files (arrivals join the pass that is still open)
    passes = [json.loads(d) for (d,) in env.rows("SELECT data FROM events WHERE type = 'sync_complete'")]
    assert sum(p["landed"] for p in passes) == len(expected)
    assert len(passes) < len(expected) and not any(p.get("interrupted") for p in passes)
    synced = env.rows("SELECT count(DISTINCT sync_id) FROM events WHERE type = 'file_synced'")
    assert synced == [(len(passes),)]


def test_queue_overflow_rescans_and_everything_lands(tmp_path: Path, sshd: SshServer) -> None:
    """Agent stopped while more events than max_queued_events pile up: a rescan, and every file lands."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    env = agent_env(tmp_path, sshd)
    port = port_of(env.config_path)
    log = tmp_path / "d.log"
    with daemon(env, log):
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        [pid] = agent_pids(sshd)
        os.kill(pid, signal.SIGSTOP)
        try:
            for n in range(limit // 2 + 500):  # create + close-write: two events each; *.txt is excluded
                fd = os.open(env.remote_root / f"{n}.txt", os.O_CREAT | os.O_WRONLY)
                os.close(fd)
            expected = {}
            for d in range(3):
                sub = env.remote_root / f"during{d}"
                sub.mkdir()
                for f in range(5):
                    (sub / f"{f}.png").write_bytes(b"o" * (f + 1))
                    expected[f"during{d}/{f}.png"] = b"o" * (f + 1)
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: env.landed() == expected, timeout=60)
        (env.remote_root / "during0" / "after.png").write_bytes(b"still watched")  # watches came back
        wait_for(lambda: (env.library / "r1/during0/after.png").exists(), timeout=10)
    listings = [e for e in log_events(log) if e.get("event") == "reconciliation listing"]
    assert any(e.get("reason") == "inotify queue overflow" for e in listings), listings


def test_agent_killed_falls_back_to_poll_then_comes_back(tmp_path: Path, sshd: SshServer) -> None:
    """kill -9 of the agent: poll with the reason in /status (one warning), then the agent again."""
    env = make_env(tmp_path, sshd, watch="agent", poll_interval="1s", settle="0s")
    port = port_of(env.config_path)
    log = tmp_path / "d.log"
    with daemon(env, log):
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        [first] = agent_pids(sshd)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: watch_of(port)[0] == "poll", timeout=15, interval=0.05)
        assert watch_of(port)[1]
        env.write("while-polling.png", b"polled")
        wait_for(lambda: (env.library / "r1/while-polling.png").exists(), timeout=15)
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        assert agent_pids(sshd) and first not in agent_pids(sshd)
    warnings = [e for e in log_events(log) if e.get("event") == "agent unavailable; polling instead"]
    assert len(warnings) == 1


def test_no_agent_left_after_channel_cut_or_daemon_kill_9(tmp_path: Path, sshd: SshServer) -> None:
    """The link cut: the agent exits (the daemon starts a new one); the daemon killed -9: none left."""
    env = agent_env(tmp_path, sshd)
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: watch_of(port) == ("agent", None), timeout=30)
        [first] = agent_pids(sshd)
        assert agents_for(env.remote_root) == [first]
        cut_link(sshd)
        wait_for(lambda: first not in agents_for(env.remote_root), timeout=10)
        wait_for(lambda: len(agent_pids(sshd)) == 1, timeout=40)
        env.write("after-cut.png", b"reconnected")
        wait_for(lambda: (env.library / "r1/after-cut.png").exists(), timeout=20)
        [second] = agent_pids(sshd)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_for(lambda: not agents_for(env.remote_root), timeout=10)  # orphaned or not, it is gone
    assert not Path(f"/proc/{second}/cmdline").exists() or second not in agents_for(env.remote_root)


def test_a_file_rewritten_during_its_transfer_lands_once_in_its_final_form(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Agent mode: the event for the rewrite comes while the first version is in flight; the mixed copy
    is dropped and the final bytes land, once."""
    env = agent_env(tmp_path, sshd)
    env.config_path.write_text(
        env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    )
    path = env.write("render.mp4", os.urandom(4 << 20))
    port = port_of(env.config_path)
    with daemon(env, tmp_path / "d.log"):
        wait_for(
            lambda: any(
                f["bytes_done"] > 0
                for r in (status_or_none(port) or {"remotes": []})["remotes"]
                for f in r["in_flight"]
            ),
            timeout=30,
        )
        final = os.urandom(3 << 20)
        path.write_bytes(final)
        wait_for(lambda: (env.library / "r1" / "render.mp4").exists(), timeout=60)
        time.sleep(2)
    assert env.landed() == {"render.mp4": final}
    assert env.rows("SELECT state FROM files WHERE current = 1") == [("landed",)]


def test_auto_on_an_sftp_only_host_polls_with_the_reason(tmp_path: Path, sshd_sftp_only: SshServer) -> None:
    """watch = auto where the remote offers no shell: poll, the reason in /status, one warning line."""
    env = make_env(tmp_path, sshd_sftp_only, poll_interval="0.5s", settle="0s")
    env.write("a.png", b"polled")
    port = port_of(env.config_path)
    log = tmp_path / "d.log"
    with daemon(env, log):
        wait_for(lambda: (env.library / "r1/a.png").exists(), timeout=30)
        mode, reason = watch_of(port)
        assert mode == "poll" and reason and "no shell" in reason
        time.sleep(1.5)  # several passes
    warnings = [e for e in log_events(log) if e.get("event") == "agent unavailable; polling instead"]
    assert len(warnings) == 1
