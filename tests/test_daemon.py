"""`mediasyncd run` as a real process: crash safety, SIGHUP reload, status, WebSocket, sd_notify."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import (
    MEDIASYNCD,
    bytes_read_of,
    free_port,
    make_env,
    once,
    opens_of,
    remote_table,
    start_daemon,
    stop,
    wait_for,
    write_config,
)
from tests.sshd import SshServer


def status_of(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def port_of(config: Path) -> int:
    for line in config.read_text().splitlines():
        if line.startswith("status_listen"):
            return int(line.split(":")[-1].strip('"'))
    raise AssertionError("no status_listen")


def status_or_none(port: int) -> dict[str, Any] | None:
    try:
        return status_of(port)
    except OSError:
        return None


def in_flight(port: int, remote: str = "r1") -> list[dict[str, Any]]:
    s = status_or_none(port)
    if not s:
        return []
    return [f for r in s["remotes"] if r["name"] == remote for f in r["in_flight"]]


def test_kill_9_mid_transfer_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path, sshd_logged: SshServer
) -> None:
    """After SIGKILL mid-transfer: no partial in the library, and the restart resumes rather than re-reads."""
    env = make_env(tmp_path, sshd_logged, settle="0s")
    text = env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "2MiB"')
    env.config_path.write_text(text)
    data = os.urandom(8 << 20)
    remote = env.write("video/clip.mp4", data)
    small = env.write("a.png", b"small" * 100)
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d1.log")
    try:
        wait_for(lambda: any(f["bytes_done"] > 3 << 20 for f in in_flight(port)), timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partials = list((env.library / ".mediasyncd" / "partial").rglob("*.part"))
    assert len(partials) == 1 and partials[0].stat().st_size > 0
    kept = partials[0].stat().st_size
    visible = (
        [p for p in (env.library / "r1").rglob("*") if p.is_file()] if (env.library / "r1").exists() else []
    )
    assert all(p.name == "a.png" for p in visible)
    proc = start_daemon(env.config_path, tmp_path / "d2.log")
    try:
        wait_for(lambda: (env.library / "r1/video/clip.mp4").exists(), timeout=60)
    finally:
        assert stop(proc) == 0
    assert (env.library / "r1/video/clip.mp4").read_bytes() == data
    assert bytes_read_of(sshd_logged, remote)[-1] == len(data) - kept  # resumed where the partial ended
    assert opens_of(sshd_logged, small) == 1
    assert sorted(env.rows("SELECT rel, state FROM files")) == [
        ("a.png", "landed"),
        ("video/clip.mp4", "landed"),
    ]
    assert not list((env.library / ".mediasyncd" / "partial").rglob("*.part"))


def test_sighup_adds_a_remote_without_restarting_another(tmp_path: Path, sshd_logged: SshServer) -> None:
    """A reload that adds r2 keeps r1's connection and in-flight transfer (one open of its file)."""
    env = make_env(tmp_path, sshd_logged, settle="0s")
    text = env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    env.config_path.write_text(text)
    big = env.write("big.mp4", os.urandom(6 << 20))
    other_root = tmp_path / "remote2"
    env.write("new.png", b"png" * 1000, root=other_root)
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: any(f["bytes_done"] > 0 for f in in_flight(port)), timeout=30)
        r1 = remote_table(sshd_logged, "r1", env.remote_root, settle="0s")
        r2 = remote_table(sshd_logged, "r2", other_root, settle="0s")
        write_config(
            env.config_path, env.library, env.state_dir, [r1, r2],
            transfer={"bwlimit": "1MiB"}, daemon={"status_listen": f"127.0.0.1:{port}"},
        )  # fmt: skip
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (env.library / "r2" / "new.png").exists(), timeout=30)
        assert in_flight(port), "r1's transfer was still running when r2's file landed"
        wait_for(lambda: (env.library / "r1" / "big.mp4").exists(), timeout=60)
    finally:
        assert stop(proc) == 0
    assert opens_of(sshd_logged, big) == 1
    log = (tmp_path / "d.log").read_text()
    assert log.count('"event": "connected"') == 2  # r1 once, r2 once


def test_invalid_config_on_sighup_keeps_the_old_one(tmp_path: Path, sshd: SshServer) -> None:
    """A broken config at reload is logged with its errors; the daemon keeps serving the old config."""
    env = make_env(tmp_path, sshd, settle="0s")
    port = port_of(env.config_path)
    good = env.config_path.read_text()
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: bool(status_or_none(port)), timeout=20)
        env.config_path.write_text(good.replace("[[remotes]]", "[[remotes]]\nbogus_key = 1"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload rejected" in (tmp_path / "d.log").read_text(), timeout=10)
        env.write("after.png", b"still syncing")
        wait_for(lambda: (env.library / "r1" / "after.png").exists(), timeout=20)
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    assert "remotes[0].bogus_key" in (tmp_path / "d.log").read_text()


def test_status_and_websocket_carry_real_progress(tmp_path: Path, sshd: SshServer) -> None:
    """/status shows the file in flight with bytes_done < size; /ws pushes growing bytes_done."""
    env = make_env(tmp_path, sshd, settle="0s")
    text = env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    env.config_path.write_text(text)
    env.write("slow.mp4", os.urandom(4 << 20))
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: bool(in_flight(port)), timeout=30)
        status = status_of(port)
        assert set(status) >= {"version", "uptime_s", "config", "remotes", "totals"}
        r1 = status["remotes"][0]
        assert r1["state"] == "connected"
        f = r1["in_flight"][0]
        assert f["path"] == "slow.mp4" and f["size"] == 4 << 20 and 0 <= f["bytes_done"] < f["size"]
        seen = asyncio.run(_ws_bytes(port, 6))
        assert seen[-1] > seen[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.load(resp) == {"ok": True}
    finally:
        assert stop(proc) == 0


async def _ws_bytes(port: int, messages: int) -> list[int]:
    out: list[int] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        while len(out) < messages:
            msg = await ws.receive_json(timeout=5)
            flights = msg["remotes"][0]["in_flight"]
            if flights:
                out.append(flights[0]["bytes_done"])
    return out


def test_sd_notify_ready_watchdog_reloading_stopping(tmp_path: Path, sshd: SshServer) -> None:
    """READY, WATCHDOG heartbeats, RELOADING then READY on SIGHUP, STOPPING on SIGTERM reach NOTIFY_SOCKET."""
    env = make_env(tmp_path, sshd)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(15)
    messages: list[str] = []

    def until(word: str) -> None:
        while not any(word in m for m in messages):
            messages.append(sock.recv(4096).decode())

    proc = start_daemon(
        env.config_path, tmp_path / "d.log", env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}
    )
    try:
        until("READY=1")
        until("WATCHDOG=1")
        proc.send_signal(signal.SIGHUP)
        until("RELOADING=1")
        messages.clear()
        until("READY=1")
        proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert proc.wait(15) == 0
    finally:
        stop(proc)
        sock.close()
    assert any(m.startswith("READY=1") and "STATUS=" in m for m in messages)


def test_a_down_remote_backs_off_and_never_stops_another(tmp_path: Path, sshd: SshServer) -> None:
    """With one remote unreachable, the other still lands files; the down one shows backoff and its error."""
    env = make_env(tmp_path, sshd, settle="0s")
    dead_port = free_port()
    dead = remote_table(sshd, "down", env.remote_root) | {"port": dead_port}
    r1 = remote_table(sshd, "r1", env.remote_root, settle="0s")
    port = free_port()
    write_config(
        env.config_path, env.library, env.state_dir, [dead, r1], daemon={"status_listen": f"127.0.0.1:{port}"}
    )
    env.write("x.png", b"x" * 100)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (env.library / "r1" / "x.png").exists(), timeout=20)

        def down() -> dict[str, Any]:
            return next(r for r in status_of(port)["remotes"] if r["name"] == "down")

        def backing_off() -> bool:
            d = down()
            return d["state"] == "backoff" and "cannot connect" in (d["last_error"] or "")

        # it retries (state "connecting" for a moment each time): a backoff with its error, not one instant
        wait_for(backing_off, timeout=20)
    finally:
        assert stop(proc) == 0


def test_second_process_on_the_same_state_dir_says_who_holds_it(tmp_path: Path, sshd: SshServer) -> None:
    """While the daemon runs, `sync --once` on the same state dir refuses and names the holder."""
    env = make_env(tmp_path, sshd)
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: bool(status_or_none(port)), timeout=20)
        second = subprocess.run(
            [MEDIASYNCD, "sync", "--once", "--config", str(env.config_path)], capture_output=True, text=True
        )
        assert second.returncode == 1
        assert f"in use by pid {proc.pid}" in second.stderr and "mediasyncd run" in second.stderr
    finally:
        assert stop(proc) == 0


def test_demo_syncs_generated_images_end_to_end(tmp_path: Path) -> None:
    """`mediasyncd demo` serves a generated Forge tree over its embedded SSH server and lands images."""
    library = tmp_path / "demo"
    port = free_port()
    proc = subprocess.Popen(
        [MEDIASYNCD, "demo", "--library", str(library), "--listen", f"127.0.0.1:{port}", "--every", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: any((library / "demo-forge").rglob("*.png")), timeout=30)
        wait_for(lambda: any((library / "demo-comfyui").rglob("*.png")), timeout=30)
        wait_for(lambda: status_of(port)["totals"]["landed_files"] >= 2, timeout=10)
        status = status_of(port)
        assert {r["name"] for r in status["remotes"]} == {"demo-forge", "demo-comfyui"}
        assert all(r["capabilities"] == "find,openssl,tar" for r in status["remotes"])
        assert all(0 < r["round_trip_ms"] < 5 for r in status["remotes"])  # loopback: a fast link
        wait_for(lambda: all(r["watch_mode"] == "agent" for r in status_of(port)["remotes"]), timeout=20)
        assert status["totals"]["landed_files"] >= 2
    finally:
        assert stop(proc) == 0
    landed = next((library / "demo-forge" / "txt2img-images").rglob("*.png"))
    assert b"parameters" in landed.read_bytes()[:4096] or b"iTXt" in landed.read_bytes()


def test_status_command_reads_the_running_daemon(tmp_path: Path, sshd: SshServer) -> None:
    """`mediasyncd status --json` prints the daemon's /status; plain `status` a summary per remote."""
    env = make_env(tmp_path, sshd, settle="0s")
    env.write("s.png", b"s" * 10)
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (env.library / "r1" / "s.png").exists(), timeout=20)
        as_json = subprocess.run(
            [MEDIASYNCD, "status", "--json", "--config", str(env.config_path)], capture_output=True, text=True
        )
        assert as_json.returncode == 0 and json.loads(as_json.stdout)["totals"]["landed_files"] == 1
        plain = subprocess.run(
            [MEDIASYNCD, "status", "--config", str(env.config_path)], capture_output=True, text=True
        )
        assert "r1: connected" in plain.stdout and f"127.0.0.1:{port}" not in plain.stderr
        assert "None" not in plain.stdout

        # `status --watch` into a pipe prints a status every 2 s (rich's live display would print nothing)
        with subprocess.Popen(
            [MEDIASYNCD, "status", "--watch", "--config", str(env.config_path)],
            stdout=subprocess.PIPE,
            text=True,
        ) as watch:
            assert watch.stdout is not None
            blocks = [watch.stdout.readline() for _ in range(8)]
            watch.terminate()
        assert sum(line.startswith("mediasyncd ") for line in blocks) >= 2

        # a reload the daemon rejected: the file is broken, the daemon runs on; status still shows it
        text = env.config_path.read_text()
        env.config_path.write_text(text.replace("[[remotes]]", "[[remotes]]\nbogus_key = 1", 1))
        proc.send_signal(signal.SIGHUP)
        broken = subprocess.run(
            [MEDIASYNCD, "status", "--config", str(env.config_path)], capture_output=True, text=True
        )
        assert broken.returncode == 0 and "r1: connected" in broken.stdout
        assert "has 1 error(s)" in broken.stderr and "config check" in broken.stderr
        env.config_path.write_text(text)
    finally:
        assert stop(proc) == 0
    after = subprocess.run(
        [MEDIASYNCD, "status", "--config", str(env.config_path)], capture_output=True, text=True
    )
    assert after.returncode == 3 and "no daemon answering" in after.stderr


def test_transfers_pause_while_the_library_disk_is_low_and_resume(tmp_path: Path, sshd: SshServer) -> None:
    """Below library_min_free the puller pauses (status says why) and lands once space returns."""
    from concurrent.futures import ThreadPoolExecutor

    from mediasyncd.progress import RemoteStatus
    from mediasyncd.state import Store
    from mediasyncd.transfer.budget import SpaceGate
    from mediasyncd.transfer.landing import Library
    from mediasyncd.transfer.puller import Puller

    env = make_env(tmp_path, sshd, settle="0s", poll_interval="0.2s")
    env.write("wait.png", b"w" * 1000)
    config = env.config()

    async def scenario() -> None:
        store = Store(config.daemon.db_path)
        await store.open()
        status = RemoteStatus("r1")
        library = Library(env.library)
        space = SpaceGate(library.free_bytes, 1 << 60, check_every=0.2)
        with ThreadPoolExecutor(4) as pool:
            puller = Puller(
                config.remotes[0], config.transfer, library=library, store=store, status=status,
                state_dir=env.state_dir, executor=pool, landing_lock=asyncio.Lock(), space=space,
            )  # fmt: skip
            task = asyncio.create_task(puller.run())
            for _ in range(100):
                await asyncio.sleep(0.1)
                if status.paused:
                    break
            assert status.paused and "library disk low" in status.paused
            assert not (env.library / "r1" / "wait.png").exists()
            assert status.snapshot()["queued"] == 1  # what waits is shown
            space.floor = 0
            for _ in range(100):
                await asyncio.sleep(0.1)
                if (env.library / "r1" / "wait.png").exists():
                    break
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await store.close()
        assert status.snapshot()["paused"] is None
        assert (env.library / "r1" / "wait.png").read_bytes() == b"w" * 1000

    asyncio.run(scenario())


def last_pass_at(port: int, remote: str = "r1") -> float:
    """When the daemon's last pass of `remote` ended (0 before the first), from /status."""
    s = status_or_none(port)
    when = next((r["last_pass_at"] for r in (s or {}).get("remotes", []) if r["name"] == remote), None)
    return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() if when else 0.0


def test_a_file_rewritten_during_its_transfer_lands_once_in_its_final_form(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Rewritten mid-transfer: the mixed copy is dropped and only the final bytes land, once (poll mode:
    passes go on after it; tests/agent has agent mode's twin)."""
    env = make_env(tmp_path, sshd, settle="1s", watch="poll")
    text = env.config_path.read_text().replace("concurrency = 4", 'concurrency = 4\nbwlimit = "1MiB"')
    env.config_path.write_text(text)
    path = env.write("render.mp4", os.urandom(4 << 20))
    port = port_of(env.config_path)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: any(f["bytes_done"] > 0 for f in in_flight(port)), timeout=30)
        final = os.urandom(3 << 20)
        path.write_bytes(final)
        wait_for(lambda: (env.library / "r1" / "render.mp4").exists(), timeout=60)
        landed = time.time()
        wait_for(lambda: last_pass_at(port) >= landed + 2, timeout=30)  # passes after it: nothing more came
    finally:
        assert stop(proc) == 0
    assert env.landed() == {"render.mp4": final}
    assert env.rows("SELECT state FROM files WHERE current = 1") == [("landed",)]


def test_a_busy_status_port_is_one_clear_line_and_exit_78(tmp_path: Path, sshd: SshServer) -> None:
    """Another program holds the status port: one line that names the address and what to change, exit
    78 (systemd does not restart-loop on it), no traceback, and the state lock is released."""
    env = make_env(tmp_path, sshd)
    port = port_of(env.config_path)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = subprocess.run(
            [MEDIASYNCD, "run", "--config", str(env.config_path)], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 78
    errors = [line for line in result.stderr.splitlines() if line.startswith("mediasyncd:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0] and "status_listen" in errors[0]
    assert "Traceback" not in result.stderr
    assert once(env) == 0  # the lock was released


def test_the_demo_moves_to_a_free_port_when_its_port_is_taken(tmp_path: Path) -> None:
    """`mediasyncd demo` on a status port another program holds says so, serves on a free port instead,
    and syncs as usual."""
    library = tmp_path / "demo"
    port = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = subprocess.run(
            [MEDIASYNCD, "demo", "--library", str(library), "--listen", f"127.0.0.1:{port}", "--every", "0.5",
             "--duration", "4"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"127.0.0.1:{port} is in use by another program; using 127.0.0.1:" in result.stderr
    assert any((library / "demo-forge").rglob("*.png"))
