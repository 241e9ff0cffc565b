"""Output that is quiet and true: logs on stderr, reports on stdout, `--quiet` silent on success, per-file
lines only where they help, and a `sync --once` header with this run's totals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from mediasyncd.cli_progress import RunTotals, run_line
from mediasyncd.logging import audience_filter
from tests.helpers import MEDIASYNCD, make_env
from tests.sshd import SshServer

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 5000


def sync(env_config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIASYNCD, "sync", "--once", "--config", str(env_config), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_logs_go_to_stderr_and_the_report_to_stdout(tmp_path: Path, sshd: SshServer) -> None:
    env = make_env(tmp_path, sshd)
    env.write("a.png", PNG)
    done = sync(env.config_path)
    assert done.returncode == 0
    assert done.stdout == "r1: 1 landed (4.9 KiB)\n"
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert "landed" in events and "connected" in events
    assert "landed batch" not in events  # JSON keeps the per-file line; the summary is for people


def test_quiet_prints_nothing_on_success_and_everything_on_failure(tmp_path: Path, sshd: SshServer) -> None:
    env = make_env(tmp_path, sshd)
    env.write("a.png", PNG)
    done = sync(env.config_path, "--quiet")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    nothing_new = sync(env.config_path, "-q")
    assert (nothing_new.returncode, nothing_new.stdout, nothing_new.stderr) == (0, "", "")

    env.remote_root.rename(env.remote_root.with_name("moved"))
    failed = sync(env.config_path, "--quiet")
    assert failed.returncode == 1
    assert "r1: 0 landed" in failed.stdout  # the held-back report, because the run failed
    assert "is missing on the remote" in failed.stderr


def test_console_logs_show_a_line_per_batch_not_per_file(tmp_path: Path, sshd: SshServer) -> None:
    env = make_env(tmp_path, sshd)
    for i in range(3):
        env.write(f"{i}.png", PNG)
    done = sync(env.config_path, "--log-format", "console", "--no-progress")
    assert done.returncode == 0
    assert "landed batch" in done.stderr
    assert "sha256" not in done.stderr  # the per-file "landed" lines carry the hash
    debug = sync(env.config_path, "--log-format", "console", "--log-level", "debug")
    assert debug.returncode == 0


def test_quiet_config_check_is_silent_when_the_config_is_good(tmp_path: Path, sshd: SshServer) -> None:
    env = make_env(tmp_path, sshd)
    done = subprocess.run(
        [MEDIASYNCD, "config", "check", "-q", str(env.config_path)], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.parametrize(
    ("console", "debug", "kept"),
    [
        (True, False, {"summary"}),
        (True, True, {"detail", "summary"}),
        (False, False, {"detail"}),
        (False, True, {"detail"}),
    ],
)
def test_each_output_keeps_the_lines_for_its_reader(console: bool, debug: bool, kept: set[str]) -> None:
    keep = audience_filter(console=console, debug=debug)
    shown = set()
    for kind in ("detail", "summary"):
        event: dict[str, Any] = {"event": kind, kind: True}
        try:
            out = keep(None, "info", event)
        except structlog.DropEvent:
            continue
        assert kind not in out  # the tag itself is never rendered
        shown.add(kind)
    assert shown == kept
    assert keep(None, "info", {"event": "plain"}) == {"event": "plain"}


def test_the_run_line_counts_this_run_with_rate_and_eta() -> None:
    assert run_line(RunTotals(0, 0, 0, 0), 1.0) == "this run: looking for new files"
    line = run_line(RunTotals(120, 403, 150 * 2**20, 300 * 2**20), 10.0)
    assert line == "this run: 120/403 files, 150.0 MiB/300.0 MiB (50%), 15.0 MiB/s, ETA 0:10"
    assert run_line(RunTotals(403, 403, 2**20, 2**20), 2.0).endswith("(100%), 512.0 KiB/s")
    long = run_line(RunTotals(1, 10, 1, 10_000), 1.0)
    assert long.endswith("ETA 2:46:39")


def test_plain_status_never_prints_none() -> None:
    """A remote in backoff before its first pass, a demo without a config file, a library not mounted:
    unknown fields are left out, never shown as None."""
    from mediasyncd.status_client import plain_lines

    remote: dict[str, Any] = {
        "name": "r1",
        "state": "backoff",
        "last_pass_at": None,
        "last_pass_s": None,
        "last_pass_result": None,
        "last_error": "connection refused",
        "settling": 0,
        "queued": 0,
        "in_flight": [],
        "landed_files": 0,
        "paused": "library /srv/media does not exist (is the NAS mounted?)",
    }
    snapshot = {
        "version": "1.0",
        "uptime_s": 7300.0,
        "config": None,
        "totals": {"landed_files": 0, "landed_bytes": 0, "failed_files": 0},
        "library": {"path": "/srv/media", "available": False, "reason": remote["paused"]},
        "remotes": [remote, remote | {"name": "r2", "last_pass_at": "2026-11-30T10:00:00Z"}],
    }
    lines = plain_lines(snapshot)
    assert "None" not in "\n".join(lines)
    assert lines[0] == "mediasyncd 1.0, up 2h01m"
    assert lines[1].startswith("library unavailable, nothing is transferred: library /srv/media")
    assert "  r1: backoff, no pass yet, settling 0" in lines[3]
    assert "  r2: backoff, last pass 2026-11-30T10:00:00Z, settling" in lines[6]
    assert "    paused: library /srv/media does not exist (is the NAS mounted?)" in lines


def test_a_console_traceback_is_plain_and_shows_no_local_variables() -> None:
    """An exception logged on the console renders its traceback (without rich, which is not loaded for
    logging) and never the frame's local variables: a status-server frame holds the token."""
    script = (
        "import io\n"
        "from mediasyncd.logging import configure_logging\n"
        "import structlog\n"
        "out = io.StringIO()\n"
        "configure_logging('info', stream=out, json=False)\n"
        "def fail(token):\n"
        "    raise ValueError('boom')\n"
        "try:\n"
        "    fail('s3cr3t-token')\n"
        "except ValueError:\n"
        "    structlog.get_logger('t').exception('it failed')\n"
        "import sys\n"
        "print(out.getvalue(), 'rich' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert "it failed" in done.stdout and "Traceback" in done.stdout and "ValueError: boom" in done.stdout
    assert "s3cr3t-token" not in done.stdout
    assert done.stdout.rstrip().endswith("False")  # rich stayed unimported


def test_a_library_error_keeps_its_exception() -> None:
    """A stdlib-logging error with exc_info (APScheduler's "Job … raised an exception") reaches the JSON
    log with its traceback, so what raised is never lost."""
    script = (
        "import io, json, logging\n"
        "from mediasyncd.logging import configure_logging\n"
        "out = io.StringIO()\n"
        "configure_logging('info', stream=out, json=True)\n"
        "try:\n"
        "    raise OSError(24, 'Too many open files')\n"
        "except OSError:\n"
        "    logging.getLogger('apscheduler.executors.default').exception('Job \"x\" raised an exception')\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    entry = json.loads(done.stdout.strip().splitlines()[-1])
    assert entry["level"] == "error" and entry["event"] == 'Job "x" raised an exception'
    assert entry["exception"].rstrip().endswith("OSError: [Errno 24] Too many open files")
