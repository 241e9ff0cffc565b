"""API: the real daemon (`mediasyncd run`, a local remote with a landed file, a status token) fuzzed from
its own OpenAPI document with schemathesis, then probed route by route:

- schemathesis with the token, every check: no 5xx, nothing outside the document;
- every route (the OpenAPI document's, plus /status, /metrics, /ws) without the token: 401, except
  /healthz; the dashboard page `/` and its `/ui/*` assets load without the token by design (README: they
  hold no data) and are counted apart;
- every POST with the token but a foreign `Origin`: refused; every GET with the token but a foreign
  `Host`: refused (DNS rebinding).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.faults.report import Figure, Mode, Section
from tests.helpers import MEDIASYNCD, free_port, start_daemon, stop, write_config

TITLE = "API: fuzzed from its OpenAPI document; token, Origin and Host checks"
PROMISE = (
    "Syncthing's REST API: every call needs the API key, the GUI checks Host against DNS rebinding and "
    "refuses cross-site requests (CSRF)."
)
TOKEN = "fault-harness-" + "t" * 24
FOREIGN_ORIGIN = "http://evil.example"
STATIC = {"/", "/ui/app.js", "/ui/index.html"}


def _request(
    base: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> int:
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _concrete(path: str) -> str:
    """An OpenAPI path with its parameters filled with plausible values."""
    return re.sub(r"\{[^}]+\}", lambda m: "1" if "id" in m.group(0) else "folder", path)


def _fuzz(base: str, work: Path, examples: int) -> tuple[int, int, str]:
    """(5xx responses, other failed checks, the summary line) from schemathesis."""
    done = subprocess.run(
        [
            str(Path(MEDIASYNCD).with_name("schemathesis")), "run", f"{base}/api/v1/openapi.json",
            "--checks", "all",
            "--header", f"Authorization: Bearer {TOKEN}",
            "--max-examples", str(examples),
            "--seed", "20261130",
            "--request-timeout", "10",
            "--exclude-path-regex", "/api/v1/(events|ws)$",
            "--phases", "examples,coverage,fuzzing",
        ],
        capture_output=True, text=True, timeout=600, cwd=work,
    )  # fmt: skip
    out = done.stdout
    summary = out.split("SUMMARY")[-1]
    server_errors = len(re.findall(r"Server error", summary))
    failures = 0 if done.returncode == 0 else max(1, len(re.findall(r"^\s*\d+\. ", summary, re.M)))
    (work / "schemathesis.txt").write_text(out + done.stderr)
    cases = re.search(r"(\d+) generated, .*", summary)
    tested = re.search(r"Tested: (\d+)", summary)
    told = f"{cases.group(0).strip() if cases else 'no test cases'} over {tested.group(1) if tested else '?'} operations"
    return server_errors, failures, told


def run(mode: Mode, work: Path) -> Section:
    quick = mode is Mode.QUICK
    src = work / "src"
    src.mkdir()
    (src / "a.png").write_bytes(os.urandom(2000))
    os.utime(src / "a.png", (1_700_000_000, 1_700_000_000))
    library = work / "library"
    library.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(
        work / "config.toml",
        library,
        work / "state",
        [{"name": "folder", "transport": "local", "roots": [str(src)], "settle": "0s"}],
        daemon={"status_listen": f"127.0.0.1:{port}", "status_token": TOKEN},
    )
    proc = start_daemon(config, work / "daemon.log")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _request(base, "GET", "/healthz") == 200 and (library / "folder" / "a.png").exists():
                    break
            except OSError:
                pass
            time.sleep(0.2)
        with urllib.request.urlopen(
            urllib.request.Request(base + "/api/v1/openapi.json", headers=bearer)
        ) as r:
            doc: dict[str, Any] = json.load(r)
        routes = [
            (method.upper(), path)
            for path, ops in doc["paths"].items()
            for method in ops
            if method in ("get", "post", "put", "patch", "delete")
        ]
        routes += [("GET", "/status"), ("GET", "/metrics"), ("GET", "/ws"), ("GET", "/api/v1/openapi.json")]
        routes = sorted(set(routes))
        server_errors, check_failures, summary = _fuzz(base, work, 5 if quick else 25)
        open_routes: list[str] = []
        login = _request(base, "POST", "/api/v1/login", body=json.dumps({"token": "wrong"}).encode())
        for method, path in routes:
            if path == "/api/v1/login":
                continue  # takes the token itself: judged below with a wrong one
            body = b"{}" if method != "GET" else None
            code = _request(base, method, _concrete(path), body=body)
            if code != 401:
                open_routes.append(f"{method} {path} -> {code}")
        healthz = _request(base, "GET", "/healthz")
        static_open = sum(_request(base, "GET", p) == 200 for p in STATIC)
        posts = [(m, p) for m, p in routes if m != "GET"]
        cross_site = sum(
            _request(base, m, _concrete(p), {**bearer, "Origin": FOREIGN_ORIGIN}, b"{}") not in (403,)
            for m, p in posts
        )
        gets = [(m, p) for m, p in routes if m == "GET" and p != "/ws"]
        foreign_host = sum(
            _request(base, m, _concrete(p), {**bearer, "Host": "evil.example"}) != 403 for m, p in gets
        )
        foreign_host += _request(base, "GET", "/", {"Host": "evil.example"}) != 403
    finally:
        exit_status = stop(proc)
    return Section(
        TITLE,
        PROMISE,
        1,
        [
            Figure.zero("5xx answers to schemathesis", server_errors),
            Figure.zero("other failed schemathesis checks", check_failures),
            Figure.zero(
                f"routes answering without the token (of {len(routes)}; /healthz apart)", len(open_routes)
            ),
            Figure("/healthz without the token", healthz, "200", healthz == 200),
            Figure("POST /api/v1/login with a wrong token", login, "4xx", 400 <= login < 500),
            Figure.info("static page, no data: `/` and `/ui/*` without the token (by design)", static_open),
            Figure.zero(f"POSTs with a foreign Origin not refused (of {len(posts)})", cross_site),
            Figure.zero(f"requests with a foreign Host not refused (of {len(gets) + 1})", foreign_host),
            Figure.zero("daemon exit status after the run", exit_status),
        ],
        [
            f"schemathesis {'5' if quick else '25'} examples per operation, all checks, with the token: {summary}",
            "The dashboard page `/` and its `/ui/*` assets load without the token by design (README: they "
            "hold no data; the page asks for the token); they are counted apart, not as failures.",
            *(f"Answered without the token: {r}" for r in open_routes),
        ],
    )
