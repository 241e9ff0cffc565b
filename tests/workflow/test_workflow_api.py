"""The running daemon: stages follow landings, /status has a `workflow` section, and the control API's
`workflow` job runs a pass on demand."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import start_daemon, stop, wait_for
from tests.workflow.conftest import World, make_world

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
    """Unmounted: /status says why archive waits; mounted, POST /api/v1/workflow/run archives the file
    and /status counts it done; an unknown stage is a 400."""
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
