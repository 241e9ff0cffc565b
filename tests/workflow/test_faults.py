"""Fault runs for the workflow (issue 20's target: 0 files lost or purged early): `mediasyncd workflow
run` killed -9 again and again while it compresses (a copy, or replacing the library file), each time
checked, then run to the end. The archive stage's kill -9 run is in test_workflow_api.py, the peer
offline in test_syncthing.py."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from mediasyncd.digest import sha256_file
from tests.helpers import MEDIASYNCD
from tests.workflow.conftest import World, make_world, set_workflow

PIPELINE = {"enabled": True, "thumbnails": False}
FILES = 16
KILLS = 4


def fractal(i: int, side: int = 512) -> Image.Image:
    return Image.effect_mandelbrot((side, side), (-2 + i * 0.01, -1.5, 1, 1.5), 60 + i).convert("RGB")


def synced_world(tmp_path: Path) -> World:
    """FILES PNGs landed, processed and archived (compress not configured yet)."""
    world = make_world(tmp_path, pipeline=PIPELINE)
    set_workflow(world.config_path, {"stages": ["archive"], "purge_after": ["archive"],
                                     "archive": {"dest": str(world.nas)}}, PIPELINE)  # fmt: skip
    for i in range(FILES):
        path = tmp_path / f"src{i:02}.png"
        fractal(i).save(path, "PNG")
        world.write(f"f{i:02}.png", path.read_bytes())
    assert world.sync() == 0
    return world


def files(world: World) -> list[tuple[str, str, str, str | None]]:
    """(rel, local_path, sha256, library_sha256) of every landed file."""
    with sqlite3.connect(world.state_dir / "state.db", timeout=10) as db:
        rows = db.execute("SELECT rel, local_path, sha256, library_sha256 FROM files ORDER BY rel").fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def compress_states(world: World) -> dict[str, int]:
    with sqlite3.connect(world.state_dir / "state.db", timeout=10) as db:
        return dict(
            db.execute(
                "SELECT state, COUNT(*) FROM file_stages WHERE stage = 'compress' GROUP BY state"
            ).fetchall()
        )


def nothing_lost(world: World) -> None:
    """Every file's library copy (as the state DB names it) is there and verifies, and its original
    is in the archive, verified; the source still has every file."""
    for rel, local_path, sha256, library_sha256 in files(world):
        assert sha256_file(world.library / local_path) == (library_sha256 or sha256), rel
        assert sha256_file(world.nas / "r1" / rel) == sha256, rel
        assert sha256_file(world.source / rel) == sha256, rel


def compressed(world: World) -> int:
    """Files whose compress stage is done (0 before the workflow's tables exist)."""
    try:
        return compress_states(world).get("done", 0)
    except sqlite3.OperationalError:
        return 0


def kill_loop(world: World, log: Path) -> int:
    """Start `workflow run`, kill it -9 while it works — once one to three more files are compressed,
    plus a random few milliseconds, so the kill lands mid-work however fast the machine is — and
    check; KILLS times. How many kills landed while it was still working."""
    rng = random.Random(20)
    landed = 0
    with log.open("ab") as out:
        for _ in range(KILLS):
            target = compressed(world) + rng.randint(1, 3)
            proc = subprocess.Popen(
                [MEDIASYNCD, "workflow", "run", "--config", str(world.config_path)], stdout=out, stderr=out
            )
            deadline = time.monotonic() + 120
            while proc.poll() is None and compressed(world) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            if proc.poll() is None:
                landed += 1
            proc.kill()
            proc.wait()
            nothing_lost(world)
    return landed


@pytest.mark.parametrize("keep_original", [False, True])
def test_kill_9_during_compress_loses_nothing(tmp_path: Path, keep_original: bool) -> None:
    """Killed -9 four times while compressing: after each kill every file verifies where the state DB
    says it is and the archive holds every original; the last run finishes them all, each once."""
    world = synced_world(tmp_path)
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "webp", "keep_original": keep_original, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    landed = kill_loop(world, tmp_path / "runs.log")
    assert landed >= 1, "no kill landed while the stage was working: the test proves nothing"
    assert world.run() == 0
    assert compress_states(world) == {"done": FILES}
    nothing_lost(world)
    library = world.library / "r1"
    if keep_original:
        assert sorted(p.name for p in library.glob("*.png")) == [f"f{i:02}.png" for i in range(FILES)]
        copies = sorted((world.library / ".mediasyncd/compressed/r1").glob("*.webp"))
        assert len(copies) == FILES
    else:
        assert not list(library.glob("*.png"))
        assert all(local.endswith(".webp") and lib for _, local, _, lib in files(world))
    assert not list(world.library.rglob("*.mediasyncd-partial"))
    events = world.staged_events()
    assert all(events.count(f"f{i:02}.png") == 2 for i in range(FILES))  # archive + compress, once each
