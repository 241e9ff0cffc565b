"""What a `sync --once` loads: start-up is most of a nothing-new run's time (issue 21), so the parts it
does not use stay unimported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mediasyncd.errors import EXIT_CONFIG
from tests.helpers import write_config

HEAVY = (
    "rich",
    "greenlet",
    "aiohttp",
    "apscheduler",
    "PIL",
    "asyncpg",
    "prometheus_client",
    "mediasyncd.pipeline.runner",
    "mediasyncd.api",
)

PROBE = """
import json, sys
from mediasyncd.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": [m for m in HEAVY if m in sys.modules]}))
"""


def test_sync_once_leaves_the_daemon_parts_unimported(tmp_path: Path) -> None:
    """A whole `sync --once` (a local folder, one file) imports neither rich nor greenlet (structlog
    would, for tracebacks never rendered and a deprecated context it does not use), nor aiohttp,
    APScheduler, Pillow, asyncpg, prometheus-client, the pipeline or the API."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(b"x" * 100)
    os.utime(src / "a.png", (1.7e9, 1.7e9))
    library = tmp_path / "library"
    library.mkdir()
    table = {"name": "folder", "transport": "local", "roots": [str(src)], "settle": "1s"}
    config = write_config(tmp_path / "c.toml", library, tmp_path / "state", [table])
    probe = f"HEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run(
        [sys.executable, "-c", probe, "sync", "--once", "--config", str(config), "--quiet"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert (library / "folder" / "a.png").read_bytes() == b"x" * 100


def test_the_process_exits_with_every_object_frozen_out_of_the_gc(tmp_path: Path) -> None:
    """`python -m mediasyncd` (as the console script) exits with main()'s code, and by the time the
    interpreter shuts down every object is frozen, so its final collections walk none of them."""
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), 'tracked', len(gc.get_objects())))\n"
        "sys.argv[0] = 'mediasyncd'\n"
        "import runpy; runpy.run_module('mediasyncd', run_name='__main__')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, "config", "check", "--config", str(tmp_path / "missing.toml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    words = out.stdout.split()
    assert out.returncode == EXIT_CONFIG, out.stderr
    frozen, tracked = int(words[words.index("frozen") + 1]), int(words[words.index("tracked") + 1])
    assert frozen > 10_000 and tracked < 100


GC_PROBE = """
import asyncio, atexit, gc, json, runpy, sys
import mediasyncd  # the package (structlog) imports before launch.entry runs
seen = {}
collections = lambda: sum(s["collections"] for s in gc.get_stats())
before = collections()
real_run = asyncio.run

def run(main, **kwargs):
    seen.update(enabled=gc.isenabled(), collections=collections() - before, frozen=gc.get_freeze_count() > 0)
    return real_run(main, **kwargs)

asyncio.run = run
atexit.register(lambda: print(json.dumps(seen)))
sys.argv[0] = "mediasyncd"
runpy.run_module("mediasyncd", run_name="__main__")
"""


def test_start_up_imports_without_collections_and_the_pass_runs_with_the_gc_on(tmp_path: Path) -> None:
    """`python -m mediasyncd sync --once` (as the console script, launch.entry): no cyclic collection
    while the command's modules import; by the time the pass runs, start-up is frozen and the GC on."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(b"y" * 100)
    os.utime(src / "a.png", (1.7e9, 1.7e9))
    library = tmp_path / "library"
    library.mkdir()
    table = {"name": "folder", "transport": "local", "roots": [str(src)], "settle": "1s"}
    config = write_config(tmp_path / "c.toml", library, tmp_path / "state", [table])
    out = subprocess.run(
        [sys.executable, "-c", GC_PROBE, "sync", "--once", "--config", str(config), "--quiet"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "enabled": True,
        "collections": 0,
        "frozen": True,
    }
    assert (library / "folder" / "a.png").read_bytes() == b"y" * 100
