"""The CLI talks to a running daemon (discovery file, control API): `purge` and `status` answer through
it, jobs report what they did, and the API refuses what a browser on another site could send."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import MEDIASYNCD, OLD, Env, start_daemon, stop, wait_for
from tests.purge.conftest import on_remote, purge_env
from tests.sshd import SshServer


def port_of(env: Env) -> int:
    return env.config().daemon.status_port


def call(env: Env, method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> Any:
    """(status, JSON body) of one request to the daemon's status server."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port_of(env)}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def synced_world(tmp_path: Path, sshd: SshServer) -> Env:
    env = purge_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    for i in range(3):
        env.write(f"old/{i}.png", bytes([i]) * 800, mtime=OLD)
    return env


def test_purge_answers_through_the_running_daemon(tmp_path: Path, sshd: SshServer) -> None:
    """With `mediasyncd run` holding the state, `purge --dry-run` and then a real `purge` work through
    it (the same report), and the discovery file is there while it runs and gone after."""
    env = synced_world(tmp_path, sshd)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    found = env.state_dir / "daemon.json"
    try:
        wait_for(lambda: len(env.landed()) == 3, timeout=30)
        assert json.loads(found.read_text())["pid"] == proc.pid
        assert stat.S_IMODE(found.stat().st_mode) == 0o644
        dry = subprocess.run(
            [MEDIASYNCD, "purge", "--dry-run", "--config", str(env.config_path)],
            capture_output=True,
            text=True,
        )
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("r1: would delete ") == 3 and "3 file(s) would be deleted" in dry.stdout
        assert on_remote(env) == {"old/0.png", "old/1.png", "old/2.png"}
        real = subprocess.run(
            [MEDIASYNCD, "purge", "--config", str(env.config_path)], capture_output=True, text=True
        )
        assert real.returncode == 0, real.stderr
        assert "3 file(s) deleted" in real.stdout and on_remote(env) == set()
    finally:
        assert stop(proc) == 0
    assert not found.exists()
    events = subprocess.run(
        [MEDIASYNCD, "events", "--json", "--type", "file_purged,purge_complete", "--config", str(env.config_path)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    kinds = [json.loads(line)["type"] for line in events]
    assert kinds.count("file_purged") == 3 and kinds.count("purge_complete") == 1


def test_jobs_sync_now_and_the_api_errors(tmp_path: Path, sshd: SshServer) -> None:
    """POST .../sync starts a job that ends after a fresh pass; unknown remotes and fields are 4xx with
    the field named; a purge job's result holds the plan."""
    env = synced_world(tmp_path, sshd)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: len(env.landed()) == 3, timeout=30)
        code, body = call(env, "POST", "/api/v1/remotes/r1/sync", {})
        assert code == 202 and body["job"]["kind"] == "sync"
        job = _finished(env, body["job"]["id"])
        assert job["state"] == "done" and job["result"]["remote"] == "r1" and job["result"]["last_pass_at"]
        assert call(env, "POST", "/api/v1/remotes/nope/sync", {}) == (
            404, {"error": "no remote named 'nope'", "field": "name"},
        )  # fmt: skip
        code, body = call(env, "POST", "/api/v1/purge", {"remote": "r1", "dry_run": True, "force": 1})
        assert code == 400 and body["field"] == "force"
        code, body = call(env, "POST", "/api/v1/purge", {"remote": "r1", "dry_run": "yes"})
        assert code == 400 and body["field"] == "dry_run"
        code, body = call(env, "POST", "/api/v1/purge", {"remote": "r1", "dry_run": True})
        (run,) = _finished(env, body["job"]["id"])["result"]["runs"]
        assert run["dry_run"] and sorted(d["path"].rsplit("/", 1)[1] for d in run["delete"]) == [
            "0.png", "1.png", "2.png",
        ]  # fmt: skip
        assert call(env, "GET", "/api/v1/jobs/nope")[0] == 404
    finally:
        assert stop(proc) == 0


def test_the_api_refuses_foreign_hosts_cross_site_origins_and_non_json(
    tmp_path: Path, sshd: SshServer
) -> None:
    """On a loopback bind without a token: a foreign Host is refused on every route (DNS rebinding), and
    a state-changing request from another site's Origin, or with a form body, is refused too."""
    env = synced_world(tmp_path, sshd)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (env.state_dir / "daemon.json").exists(), timeout=20)
        assert call(env, "GET", "/status", headers={"Host": "attacker.example:8765"})[0] == 403
        assert call(env, "GET", "/status", headers={"Host": f"localhost:{port_of(env)}"})[0] == 200
        code, body = call(env, "POST", "/api/v1/purge", {"dry_run": True}, {"Origin": "http://evil.example"})
        assert code == 403 and body["field"] == "Origin"
        code, body = call(env, "POST", "/api/v1/purge", {}, {"Content-Type": "text/plain"})
        assert code == 415
        assert (
            call(
                env,
                "POST",
                "/api/v1/purge",
                {"dry_run": True},
                {"Origin": f"http://127.0.0.1:{port_of(env)}"},
            )[0]
            == 202
        )
    finally:
        assert stop(proc) == 0


def _finished(env: Env, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        code, body = call(env, "GET", f"/api/v1/jobs/{job_id}")
        assert code == 200
        if body["job"]["state"] not in ("queued", "running"):
            return dict(body["job"])
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_discovery_file_left_behind_is_ignored(tmp_path: Path, sshd: SshServer) -> None:
    """A daemon.json whose daemon is gone (a kill -9 left it, and its pid now names another process)
    does not send `purge` anywhere: with the state lock free, it runs on its own."""
    env = synced_world(tmp_path, sshd)
    assert subprocess.run([MEDIASYNCD, "sync", "--once", "--config", str(env.config_path)]).returncode == 0
    stale = {"url": "http://127.0.0.1:9", "pid": os.getpid(), "state_dir": str(env.state_dir.resolve())}
    (env.state_dir / "daemon.json").write_text(json.dumps(stale))
    dry = subprocess.run(
        [MEDIASYNCD, "purge", "--dry-run", "--config", str(env.config_path)], capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    assert "3 file(s) would be deleted" in dry.stdout
