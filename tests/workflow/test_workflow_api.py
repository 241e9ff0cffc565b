"""The running daemon: stages follow landings, /status has a `workflow` section, and the control API's
`workflow` job runs a pass on demand."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import MEDIASYNCD, start_daemon, stop, wait_for
from tests.workflow.conftest import World, make_world, set_workflow
from tests.workflow.test_compress import A1111, png

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 5000


def call(world: World, method: str, path: str, body: object = None) -> Any:
    port = world.config().daemon.status_port
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_status_shows_a_paused_stage_and_a_workflow_job_archives_once_it_is_mounted(tmp_path: Path) -> None:
    """Unmounted: /status says why archive waits; mounted, `workflow run --dry-run` answers through the
    daemon and POST /api/v1/workflow/run archives the file, which /status counts done; an unknown stage
    is a 400."""
    world = make_world(tmp_path)
    world.nas.rmdir()
    world.write("a.png", PNG)
    proc = start_daemon(world.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (world.library / "r1/a.png").is_file(), timeout=30)

        def section() -> dict[str, Any]:
            status, doc = call(world, "GET", "/status")
            assert status == 200
            return doc.get("workflow", {}).get("stages", {}).get("archive", {})  # type: ignore[no-any-return]

        wait_for(lambda: bool(section().get("paused")), timeout=30)
        assert "does not exist" in section()["paused"]
        assert call(world, "POST", "/api/v1/workflow/run", {"from": "nope"})[0] == 400
        assert call(world, "POST", "/api/v1/workflow/run", {"paths": ["rel"]})[0] == 400
        world.nas.mkdir()
        dry = subprocess.run(
            [MEDIASYNCD, "workflow", "run", "--dry-run", "--config", str(world.config_path)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        assert f"would archive r1:a.png -> {world.nas}/r1/a.png" in dry.stdout
        assert not (world.nas / "r1").exists()
        status, doc = call(world, "POST", "/api/v1/workflow/run", {})
        assert status == 202 and doc["job"]["kind"] == "workflow"
        job = doc["job"]["id"]
        wait_for(lambda: call(world, "GET", f"/api/v1/jobs/{job}")[1]["job"]["state"] == "done", timeout=30)
        result = call(world, "GET", f"/api/v1/jobs/{job}")[1]["job"]["result"]
        assert result["stages"]["archive"] == {"done": 1}
        assert (world.nas / "r1/a.png").read_bytes() == PNG
        assert section()["counts"]["done"] == 1
    finally:
        assert stop(proc) == 0


def test_kill_9_during_the_archive_stage_loses_nothing(tmp_path: Path) -> None:
    """The daemon killed -9 while it archives, then restarted: every file ends archived, byte for byte,
    each with one done row, and no partial is left behind."""
    world = make_world(tmp_path)
    files = {f"batch/{i:03}.png": b"\x89PNG\r\n\x1a\n" + os.urandom(400_000) for i in range(40)}
    for rel, data in files.items():
        world.write(rel, data)

    def done() -> int:
        try:
            with sqlite3.connect(world.state_dir / "state.db", timeout=5) as db:
                return int(db.execute("SELECT COUNT(*) FROM file_stages WHERE state = 'done'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    proc = start_daemon(world.config_path, tmp_path / "d1.log")
    try:
        wait_for(lambda: done() >= 1, timeout=60, interval=0.01)
    finally:
        proc.kill()
        proc.wait()
    proc = start_daemon(world.config_path, tmp_path / "d2.log")
    try:
        wait_for(lambda: done() == len(files), timeout=90)
    finally:
        assert stop(proc) == 0
    for rel, data in files.items():
        assert (world.nas / "r1" / rel).read_bytes() == data
    assert not list(world.nas.rglob("*partial*"))
    assert world.staged_events().count("batch/000.png") == 1


def test_sighup_adopts_new_stages_without_a_restart(tmp_path: Path) -> None:
    """The daemon archives; the config gains a compress stage and SIGHUP: the already archived file is
    compressed by the same process and /status lists the new stage."""
    world = make_world(tmp_path)
    world.write("a.png", png(tmp_path / "x.png", parameters=A1111).read_bytes())
    proc = start_daemon(world.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (world.nas / "r1/a.png").is_file(), timeout=30)
        set_workflow(world.config_path, {
            "stages": ["archive", "compress"], "purge_after": ["archive", "compress"],
            "archive": {"dest": str(world.nas)}, "compress": {"format": "webp", "min_saving": "0%"},
        })  # fmt: skip
        proc.send_signal(signal.SIGHUP)
        copy = world.library / ".mediasyncd/compressed/r1/a.png.webp"
        wait_for(copy.is_file, timeout=30)

        def stages() -> list[str]:
            return list(call(world, "GET", "/status")[1].get("workflow", {}).get("stages", {}))

        wait_for(lambda: stages() == ["archive", "compress"], timeout=30)
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    assert "workflow settings reloaded" in (tmp_path / "d.log").read_text()
