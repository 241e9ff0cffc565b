"""The rest of the control API (SPEC §3.12) against the real daemon and sshd: remotes, pause and resume
(API and CLI), jobs, the event long poll, /metrics, JSON errors; the OpenAPI document is made from the
route table the server is wired from; and the auth rules route by route."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from mediasyncd.api import ROUTES, document
from mediasyncd.api.guard import COOKIE
from mediasyncd.progress import StatusView
from mediasyncd.status_server import make_app
from tests.helpers import MEDIASYNCD, OLD, Env, start_daemon, stop, wait_for
from tests.purge.conftest import purge_env
from tests.sshd import SshServer
from tests.test_control_api import _finished, call, port_of


def raw(env: Env, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(env)}{path}", timeout=10) as resp:
        return str(resp.read().decode())


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


def _get(env: Env, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port_of(env)}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


async def _ws_messages(port: int, since: int) -> tuple[set[str], list[str]]:
    """Read /api/v1/ws until two file_synced events came: the message types seen, the synced paths."""
    kinds: set[str] = set()
    synced: list[str] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/api/v1/ws?since={since}") as socket,
    ):
        async with asyncio.timeout(20):
            while len(synced) < 2:
                message = await socket.receive_json()
                kinds.add(message["type"])
                if message["type"] == "event" and message["data"]["type"] == "file_synced":
                    synced.append(message["data"]["path"])
    return kinds, synced


def cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIASYNCD, *args, "--config", str(env.config_path)], capture_output=True, text=True, timeout=60
    )


def test_remotes_pause_resume_jobs_events_and_metrics(tmp_path: Path, sshd: SshServer) -> None:
    env = purge_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    text = env.config_path.read_text()
    env.config_path.write_text(text.replace("[pipeline]\nenabled = false", "[pipeline]\nenabled = true"))
    env.write("a.png", b"a" * 700, mtime=OLD)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: "a.png" in env.landed(), timeout=30)

        code, body = call(env, "GET", "/api/v1/remotes")
        [remote] = body["remotes"]
        assert code == 200 and remote["name"] == "r1" and remote["held"] is False
        assert remote["config"]["host"] == "127.0.0.1" and remote["config"]["roots"] == [str(env.remote_root)]
        assert call(env, "GET", "/api/v1/remotes/r1")[1]["remote"]["name"] == "r1"
        assert call(env, "GET", "/api/v1/remotes/zz") == (
            404,
            {"error": "no remote named 'zz'", "field": "name"},
        )

        # pause: new files are seen but not taken; resume (through the CLI) takes them at once
        paused = cli(env, "pause", "r1")
        assert (paused.returncode, paused.stdout) == (0, "r1: paused\n")
        env.write("b.png", PNG, mtime=OLD)
        time.sleep(1.5)  # several passes
        assert "b.png" not in env.landed()
        status = json.loads(raw(env, "/status"))
        assert status["remotes"][0]["held"] is True and "mediasyncd resume" in status["remotes"][0]["paused"]
        last_id = call(env, "GET", "/api/v1/events?timeout=0")[1]["last_id"]

        answer: dict[str, Any] = {}

        def long_poll() -> None:
            answer["got"] = call(env, "GET", f"/api/v1/events?since={last_id}&types=file_synced&timeout=20")

        waiting = threading.Thread(target=long_poll)
        waiting.start()
        time.sleep(0.5)
        assert "got" not in answer  # nothing new yet: the request waits
        started = time.monotonic()
        assert cli(env, "resume", "r1").stdout == "r1: resumed\n"
        waiting.join(25)
        code, got = answer["got"]
        assert code == 200 and time.monotonic() - started < 10
        [event] = got["events"]
        assert event["type"] == "file_synced" and event["path"] == "b.png" and got["last_id"] == event["id"]

        # the purge schedule: held and released
        assert cli(env, "pause", "--purge").stdout == "scheduled purges: paused\n"
        assert json.loads(raw(env, "/status"))["purge"]["held"] is True
        assert cli(env, "resume", "--purge").stdout == "scheduled purges: resumed\n"

        # jobs: listed newest first; cancelling a finished one returns it unchanged
        job_id = call(env, "POST", "/api/v1/remotes/r1/sync", {})[1]["job"]["id"]
        assert _finished(env, job_id)["state"] == "done"
        code, jobs = call(env, "GET", "/api/v1/jobs")
        assert code == 200 and jobs["jobs"][0]["id"] == job_id
        assert call(env, "POST", f"/api/v1/jobs/{job_id}/cancel", {})[1]["job"]["state"] == "done"
        assert call(env, "POST", "/api/v1/jobs/nope/cancel", {})[0] == 404

        # errors name the field; unknown routes answer in the same JSON shape
        assert call(env, "GET", "/api/v1/events?since=-1")[1] == {
            "error": "since must be between 0 and 9223372036854775807, got -1",
            "field": "since",
        }
        assert call(env, "GET", "/api/v1/events?types=bogus")[1]["field"] == "types"
        assert call(env, "GET", "/api/v1/nothing-here") == (404, {"error": "Not Found", "field": None})

        # /metrics, parsed by prometheus-client's own parser
        metrics = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(raw(env, "/metrics"))
            for s in family.samples
        }
        assert metrics[("mediasyncd_landed_files_total", (("remote", "r1"),))] == 2
        assert metrics[("mediasyncd_landed_bytes_total", (("remote", "r1"),))] == 700 + len(PNG)
        assert metrics[("mediasyncd_remote_up", (("remote", "r1"),))] == 1
        assert metrics[("mediasyncd_remote_held", (("remote", "r1"),))] == 0
        assert ("mediasyncd_queue_files", (("remote", "r1"), ("state", "queued"))) in metrics
        assert metrics[("mediasyncd_library_available", ())] == 1
        modes = [labels for name, labels in metrics if name == "mediasyncd_remote_watch_mode"]
        assert modes and dict(modes[0])["mode"] in ("agent", "poll")
        assert 0 < metrics[("mediasyncd_remote_round_trip_seconds", (("remote", "r1"),))] < 0.005  # loopback
        assert metrics[("mediasyncd_landed_latency_seconds_count", (("remote", "r1"),))] == 2
        assert metrics[("mediasyncd_pass_duration_seconds_count", (("remote", "r1"),))] >= 3
        inf = (("le", "+Inf"), ("remote", "r1"))
        assert (
            metrics[("mediasyncd_pass_duration_seconds_bucket", inf)]
            == metrics[("mediasyncd_pass_duration_seconds_count", (("remote", "r1"),))]
        )

        # the library's files: newest first, paged, each with its content (ranges work) and thumbnail
        code, page = call(env, "GET", "/api/v1/files?limit=1")
        assert code == 200 and [f["path"] for f in page["files"]] == ["b.png"] and page["next_cursor"]
        code, rest = call(env, "GET", f"/api/v1/files?limit=1&cursor={page['next_cursor']}")
        assert [f["path"] for f in rest["files"]] == ["a.png"] and rest["next_cursor"] is None
        b = page["files"][0]
        assert b["remote"] == "r1" and b["library_path"] == "r1/b.png" and b["size"] == len(PNG)
        assert call(env, "GET", "/api/v1/files?remote=nope")[1]["files"] == []
        assert call(env, "GET", "/api/v1/files?cursor=zz")[1]["field"] == "cursor"
        assert _get(env, f"/api/v1/files/{b['id']}/content") == (200, PNG)
        assert _get(env, f"/api/v1/files/{b['id']}/content", {"Range": "bytes=0-7"}) == (206, PNG[:8])
        wait_for(lambda: _get(env, f"/api/v1/files/{b['id']}/thumbnail")[0] == 200, timeout=20)
        assert _get(env, f"/api/v1/files/{b['id']}/thumbnail")[1][8:12] == b"WEBP"
        stage_counts = {
            s.labels["stage"]: s.value
            for family in text_string_to_metric_families(raw(env, "/metrics"))
            for s in family.samples
            if s.name == "mediasyncd_pipeline_stage_duration_seconds_count"
        }
        assert stage_counts.get("thumbnail", 0) >= 1 and stage_counts.get("metadata", 0) >= 1
        code, one = call(env, "GET", f"/api/v1/files/{b['id']}")
        assert code == 200 and one["file"]["sha256"] == b["sha256"] and one["file"]["thumbnail"] is True
        assert call(env, "GET", "/api/v1/files/999999")[0] == 404
        assert call(env, "GET", "/api/v1/files/..%2f..%2fetc%2fpasswd/content")[0] in (400, 404)

        # /api/v1/ws: status messages and every event after `since`, from the log
        kinds, synced = asyncio.run(_ws_messages(port_of(env), since=0))
        assert "status" in kinds and synced == ["a.png", "b.png"]

        # the OpenAPI document, as served
        served = json.loads(raw(env, "/api/v1/openapi.json"))
        assert served == json.loads(json.dumps(document()))
    finally:
        assert stop(proc) == 0


def test_the_openapi_document_has_every_api_route_and_nothing_else() -> None:
    """The server is wired from the route table the document is made from: each /api/v1 route the app
    serves is in the document with its method, and the other way round."""
    app = make_app(StatusView("t", None), None, control=_NoControl())
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/v1") and r.method != "HEAD"
    }
    doc = document()
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented and len(served) == len(ROUTES)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["summary"] and op["responses"]
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}


class _NoControl:
    """A Control that answers nothing (the auth rules are decided before any handler runs)."""

    def remote_names(self) -> list[str]:
        return []

    def remotes(self) -> list[dict[str, Any]]:
        return []

    def jobs_list(self) -> list[Any]:
        return []

    def event_types(self) -> list[str]:
        return ["file_synced"]

    async def events(self, since: int, types: list[str], wait: float, limit: int) -> list[dict[str, Any]]:
        return []

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the auth tests do not reach {name}")


async def test_auth_rules_route_by_route() -> None:
    """With a token: every route but /healthz needs it (bearer, cookie from /api/v1/login, or none);
    /metrics too unless metrics_public. On a loopback bind a foreign Host is refused even with the token."""
    token = "s3cret-token"
    app = make_app(
        StatusView("t", None), token, control=_NoControl(), metrics=_metrics_stub, loopback_bind=True
    )
    async with TestClient(TestServer(app)) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        for path in ("/status", "/api/v1/remotes", "/api/v1/jobs", "/api/v1/events?timeout=0", "/metrics"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401, path
            assert (await client.get(path, headers=bearer)).status == 200, path
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/status", headers={**bearer, "Host": "evil.example"})).status == 403
        refused = await client.post("/api/v1/login", json={"token": "wrong"})
        assert refused.status == 401 and (await refused.json())["field"] == "token"
        login = await client.post("/api/v1/login", json={"token": token})
        assert login.status == 200
        cookie = login.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert (await client.get("/api/v1/remotes")).status == 200  # the session cookie now
        form = await client.post("/api/v1/purge", data="dry_run=1", headers=bearer)
        assert form.status == 415
        cross = await client.post(
            "/api/v1/purge", json={}, headers={**bearer, "Origin": "http://evil.example"}
        )
        assert cross.status == 403 and (await cross.json())["field"] == "Origin"

    public = make_app(StatusView("t", None), token, metrics=_metrics_stub, metrics_public=True)
    async with TestClient(TestServer(public)) as client:
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/status")).status == 401


async def _metrics_stub(request: web.Request) -> web.Response:
    return web.Response(text="# nothing\n")


def test_histogram_buckets_count_cumulatively() -> None:
    from mediasyncd.progress import Buckets

    b = Buckets((0.5, 1.0, 5.0))
    assert b.cumulative() == [("0.5", 0), ("1.0", 0), ("5.0", 0), ("+Inf", 0)]
    for value in (0.1, 0.5, 0.7, 3.0, 99.0):
        b.observe(value)
    assert b.cumulative() == [("0.5", 2), ("1.0", 3), ("5.0", 4), ("+Inf", 5)]
    assert b.total == 103.3 and b.observed == 5


def test_the_api_holds_up_to_fuzzing_from_its_own_openapi_document(tmp_path: Path, sshd: SshServer) -> None:
    """schemathesis, reading the served OpenAPI document, sends schema-valid and schema-violating requests
    to every route of the real daemon: no 5xx, no answer outside the document, valid requests accepted,
    invalid ones refused, 405 with Allow for other methods. (The event long poll and the WebSocket wait
    by design; their parameters are tested above.)"""
    env = purge_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    env.write("a.png", b"a" * 700, mtime=OLD)
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: "a.png" in env.landed(), timeout=30)
        fuzz = subprocess.run(
            [
                str(Path(MEDIASYNCD).with_name("schemathesis")),
                "run",
                f"http://127.0.0.1:{port_of(env)}/api/v1/openapi.json",
                "--checks", "all",
                "--max-examples", "25",
                "--seed", "20261130",
                "--request-timeout", "10",
                "--exclude-path-regex", "/api/v1/(events|ws)$",
                "--phases", "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )  # fmt: skip
        assert fuzz.returncode == 0, fuzz.stdout[-5000:] + fuzz.stderr[-2000:]
        assert " passed" in fuzz.stdout and "failure" not in fuzz.stdout.split("SUMMARY")[-1]
    finally:
        assert stop(proc) == 0


def test_status_watch_on_a_terminal_shows_arrivals_live(tmp_path: Path, sshd: SshServer) -> None:
    """`status --watch` on a terminal (script(1) gives it one) follows /api/v1/ws: a file that lands
    while it runs appears under "recent arrivals" without a restart."""
    env = purge_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: (env.state_dir / "daemon.json").exists(), timeout=20)
        command = f"timeout 6 {MEDIASYNCD} status --watch --config {env.config_path}"
        with subprocess.Popen(
            ["script", "-qec", command, "/dev/null"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as watch:
            time.sleep(2)
            env.write("live/arrived.png", PNG, mtime=OLD)
            out, _ = watch.communicate(timeout=30)
        text = out.decode(errors="replace")
        assert "recent arrivals" in text and "r1: live/arrived.png" in text
    finally:
        assert stop(proc) == 0


def test_sinks_and_purge_show_in_metrics() -> None:
    """The sinks' lag and state, and the purge schedule, as metric families (pure: from a snapshot)."""
    from mediasyncd.metrics import families

    snapshot: dict[str, Any] = {
        "version": "1",
        "uptime_s": 1.0,
        "remotes": [],
        "purge": {
            "held": True,
            "remotes": [
                {"name": "r1", "last_run": {"deleted_files": 3, "freed_bytes": 9}, "deleted_files_total": 5,
                 "freed_bytes_total": 20},
            ],
        },
        "sinks": [
            {"name": "db", "type": "postgresql", "state": "backoff", "acked_id": 41, "lag_events": 7,
             "lag_s": 2.5, "parked": 1, "last_error": "down"},
        ],
    }  # fmt: skip
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families(snapshot) for s in f.samples
    }
    db = (("sink", "db"), ("type", "postgresql"))
    assert samples[("mediasyncd_sink_lag_events", db)] == 7
    assert samples[("mediasyncd_sink_lag_seconds", db)] == 2.5
    assert samples[("mediasyncd_sink_up", db)] == 0
    assert samples[("mediasyncd_sink_parked_events", db)] == 1
    assert samples[("mediasyncd_purge_held", ())] == 1
    assert samples[("mediasyncd_purge_last_deleted_files", (("remote", "r1"),))] == 3
    assert samples[("mediasyncd_purge_deleted_files_total", (("remote", "r1"),))] == 5
    assert samples[("mediasyncd_purge_freed_bytes_total", (("remote", "r1"),))] == 20


def test_failures_are_counted_by_reason_in_metrics() -> None:
    from mediasyncd.metrics import histograms
    from mediasyncd.progress import RemoteStatus

    status = RemoteStatus("r1")
    status.failures = {"verification": 2, "local_io": 1}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in histograms([status]) for s in f.samples
    }
    assert (
        samples[("mediasyncd_transfer_failures_total", (("reason", "verification"), ("remote", "r1")))] == 2
    )
    assert samples[("mediasyncd_transfer_failures_total", (("reason", "local_io"), ("remote", "r1")))] == 1
