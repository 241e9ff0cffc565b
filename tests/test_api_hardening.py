"""What a review of the control API found, each shown failing before its fix: cross-site WebSockets, other
local ports as Origins, bodies without JSON, a token that broke the guard, the token as the cookie,
scripts served from the library, secrets in a remote's settings, pause letting queued files through,
a stop held up by a long poll, and inputs that were 500s."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediasyncd.api.guard import COOKIE
from mediasyncd.config import RemoteConfig
from mediasyncd.control import remote_settings
from mediasyncd.progress import StatusView
from mediasyncd.status_server import make_app
from tests.helpers import OLD, start_daemon, stop, wait_for
from tests.purge.conftest import purge_env
from tests.sshd import SshServer
from tests.test_api_more import _get, _NoControl, raw
from tests.test_control_api import call, port_of


async def test_cross_site_origins_are_refused_everywhere_and_posts_must_be_json() -> None:
    app = make_app(StatusView("t", None), None, control=_NoControl(), loopback_bind=True)
    async with TestClient(TestServer(app)) as client:
        own = f"http://{client.server.host}:{client.server.port}"
        for origin in ("http://evil.example", f"http://{client.server.host}:3000", "null"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect("/ws", headers={"Origin": origin})
            assert refused.value.status == 403, origin
            posted = await client.post("/api/v1/purge/pause", json={}, headers={"Origin": origin})
            assert posted.status == 403, origin
            assert (await client.get("/status", headers={"Origin": origin})).status == 403
        async with client.ws_connect("/ws", headers={"Origin": own}) as ws:
            assert (await ws.receive_json())["version"] == "t"
        empty = await client.post("/api/v1/remotes/r1/pause", headers={"Content-Type": "text/plain"})
        assert empty.status == 415
        bare = await client.post("/api/v1/remotes/r1/pause")  # no body, no type: a form could send that
        assert bare.status == 415


async def test_the_session_cookie_is_not_the_token_and_logout_ends_it() -> None:
    token = "s3cret-token"
    app = make_app(StatusView("t", None), token, control=_NoControl())
    async with TestClient(TestServer(app)) as client:
        odd = await client.get(
            "/status", headers={"Authorization": "Bearer caf\u00e9\u00ff"}
        )  # not UTF-8 on the wire
        assert odd.status == 401  # not a 500 (and no traceback with the token in the log)
        assert (await client.get("/status", headers={"Authorization": f"bearer {token}"})).status == 200
        login = await client.post("/api/v1/login", json={"token": token})
        session = login.cookies[COOKIE].value
        assert session and token not in session
        assert (await client.get("/api/v1/remotes")).status == 200
        assert (await client.post("/api/v1/logout", json={})).status == 200
        client.session.cookie_jar.update_cookies({COOKIE: session})  # the old cookie, replayed
        assert (await client.get("/api/v1/remotes")).status == 401
        assert (await client.get("/status?token=" + token)).status == 401  # tokens never in URLs


def test_a_remotes_settings_hide_what_may_be_secret() -> None:
    remote = RemoteConfig(
        name="pod",
        transport="exec",
        command=("sh", "-c", "API_TOKEN=hunter2 exec sh"),
        docker_host="tcp://admin:pw@docker.lan:2376",
    )
    shown = json.dumps(remote_settings(remote))
    assert "hunter2" not in shown and "pw" not in shown and "admin" not in shown
    assert remote_settings(remote)["docker_host"] == "tcp://docker.lan:2376"
    assert remote_settings(RemoteConfig("d", docker_host="unix:///run/docker.sock"))["docker_host"] == (
        "unix:///run/docker.sock"
    )


def test_a_remotes_settings_show_how_its_files_come_and_how_it_is_watched() -> None:
    shown = remote_settings(RemoteConfig("d", transport="docker", container="forge", files_via="exec"))
    assert shown["files_via"] == "exec"
    assert shown["reconcile_interval"] == 600.0
    assert (shown["keepalive_interval"], shown["keepalive_count_max"]) == (15.0, 4)


def test_pause_holds_queued_files_bad_inputs_are_4xx_and_a_stop_is_not_held_up(
    tmp_path: Path, sshd: SshServer
) -> None:
    env = purge_env(tmp_path, sshd, settle="0s", poll_interval="0.3s")
    one_by_one = 'concurrency = 1\nbwlimit = "300KiB"\nbatch_below = "0"'  # no tar stream: a file at a time
    text = env.config_path.read_text().replace("concurrency = 4", one_by_one)
    text = text.replace('kind = "generic"', 'kind = "generic"\ninclude = ["*.png", "*.svg"]')
    env.config_path.write_text(text)
    for i in range(6):
        env.write(f"q/{i}.png", bytes([i]) * 200_000, mtime=OLD)
    env.write(
        "evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', mtime=OLD
    )
    proc = start_daemon(env.config_path, tmp_path / "d.log")
    try:
        wait_for(lambda: any(k.startswith("q/") for k in env.landed()), timeout=30)
        assert call(env, "POST", "/api/v1/remotes/r1/pause", {})[0] == 200
        assert json.loads(raw(env, "/status"))["remotes"][0]["held"] is True  # at once, not 50 ms later
        held_at = len(env.landed())
        time.sleep(3)  # at 300 KiB/s, two or three more files would have landed
        assert len(env.landed()) <= held_at + 1  # the one in flight may finish; no queued one starts
        assert call(env, "POST", "/api/v1/remotes/r1/resume", {})[0] == 200
        wait_for(lambda: len(env.landed()) == 7, timeout=30)

        def svgs() -> list[dict[str, Any]]:  # a file is in the library a moment before the state DB says so
            return [
                f for f in call(env, "GET", "/api/v1/files?limit=50")[1]["files"] if f["path"] == "evil.svg"
            ]

        wait_for(lambda: len(svgs()) == 1, timeout=10)
        [svg] = svgs()
        served = _headers(env, f"/api/v1/files/{svg['id']}/content")
        assert (
            "sandbox" in served["Content-Security-Policy"] and served["Content-Disposition"] == "attachment"
        )
        assert served["X-Content-Type-Options"] == "nosniff"

        for path in ("/api/v1/files/%C2%B2", "/api/v1/files/99999999999999999999",
                     "/api/v1/events?since=99999999999999999999", "/api/v1/files?q=a%00b"):  # fmt: skip
            assert call(env, "GET", path)[0] == 400, path
        assert _get(env, "/")[0] == 200  # the dashboard

        hanging: dict[str, Any] = {}
        poll = threading.Thread(
            target=lambda: hanging.update(answer=_try(lambda: call(env, "GET", "/api/v1/events?timeout=60")))
        )
        poll.start()
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert time.monotonic() - started < 10  # not the minute the long poll asked for
        poll.join(15)
    finally:
        stop(proc)


def _headers(env: Any, path: str) -> dict[str, str]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port_of(env)}{path}", timeout=10) as resp:
        return dict(resp.headers)


def _try(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # the connection may be cut by the stop
        return exc
