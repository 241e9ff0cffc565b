"""The archive stage on a second real path: verified copies, sidecars along, no overwrite, an unmounted
destination pauses, kill -9 leftovers resume, every done stage has its `file_staged` event."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.digest import sha256_file
from mediasyncd.errors import UnsafePathError
from mediasyncd.state import Store
from mediasyncd.workflow.archive import MARKER, Conflict, copy_verified, destination_problem, target_path
from mediasyncd.workflow.runner import Workflow, select_stages
from mediasyncd.workflow_cli import status_main
from tests.workflow.conftest import World, make_world

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(50_000)
OTHER = b"\x89PNG\r\n\x1a\n" + os.urandom(30_000)


def test_sync_archives_every_landed_file_verified_with_its_event(tmp_path: Path) -> None:
    """After `sync --once` each landed file is at <dest>/<remote>/<path>, byte for byte, recorded done
    with its output and SHA-256, and announced by one `file_staged` event."""
    world = make_world(tmp_path)
    world.write("a/00001-1.png", PNG)
    world.write("b.png", OTHER)
    assert world.sync() == 0
    assert (world.nas / "r1/a/00001-1.png").read_bytes() == PNG
    assert (world.nas / "r1/b.png").read_bytes() == OTHER
    assert (world.nas / MARKER).is_file()
    assert world.stages() == {"a/00001-1.png": ("done", None), "b.png": ("done", None)}
    assert sorted(world.staged_events()) == ["a/00001-1.png", "b.png"]
    with sqlite3.connect(world.state_dir / "state.db") as db:
        data = [json.loads(d) for (d,) in db.execute("SELECT data FROM events WHERE type = 'file_staged'")]
    for d in data:
        assert d["stage"] == "archive"
        assert d["output_sha256"] == d["sha256"] == sha256_file(Path(d["output_path"]))
        assert {"file_id", "library_path"} <= set(d)
    assert not list(world.nas.rglob("*.mediasyncd-partial"))


def test_running_again_changes_nothing(tmp_path: Path) -> None:
    """A second `workflow run` finds nothing to do: no copy, no event."""
    world = make_world(tmp_path)
    world.write("a.png", PNG)
    assert world.sync() == 0
    events = world.staged_events()
    assert world.run() == 0
    assert world.staged_events() == events


def a1111_png() -> bytes:
    """A real PNG with A1111 generation parameters."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, Seed: 42, Size: 8x8")
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_the_xmp_sidecar_goes_along(tmp_path: Path) -> None:
    """With the media pipeline on, the file's XMP sidecar is archived next to it."""
    world = make_world(tmp_path, pipeline={"enabled": True, "thumbnails": False})
    world.write("a.png", a1111_png())
    assert world.sync() == 0
    sidecar = world.library / "r1/a.png.xmp"
    assert sidecar.is_file()
    assert (world.nas / "r1/a.png.xmp").read_bytes() == sidecar.read_bytes()


def test_a_different_file_at_the_destination_is_never_overwritten(tmp_path: Path) -> None:
    """The stage fails for that file (with the reason), leaves the foreign file alone and archives the
    others."""
    world = make_world(tmp_path)
    (world.nas / MARKER).write_text("")
    (world.nas / "r1").mkdir()
    (world.nas / "r1/a.png").write_bytes(b"someone else's")
    world.write("a.png", PNG)
    world.write("b.png", OTHER)
    assert world.sync() == 0
    assert (world.nas / "r1/a.png").read_bytes() == b"someone else's"
    state, error = world.stages()["a.png"]
    assert state == "failed" and error is not None and "different file" in error
    assert world.stages()["b.png"] == ("done", None)
    assert world.run() == 1  # retried on `workflow run`, still refused


def test_a_missing_destination_pauses_the_stage_and_is_never_created(tmp_path: Path) -> None:
    """No dest dir: nothing is written anywhere, files wait (not failed), `workflow status` says why;
    once it is there, the next run archives them."""
    world = make_world(tmp_path)
    world.nas.rmdir()
    world.write("a.png", PNG)
    assert world.sync() == 0
    assert not world.nas.exists()
    assert world.stages() == {}
    out = _status(world)
    assert out["stages"]["archive"]["paused"].startswith(f"archive destination {world.nas} does not exist")
    assert out["stages"]["archive"]["counts"]["pending"] == 1
    world.nas.mkdir()
    assert world.run() == 0
    assert (world.nas / "r1/a.png").read_bytes() == PNG


def test_a_destination_that_lost_its_marker_pauses_the_stage(tmp_path: Path) -> None:
    """An empty mount point (the share unmounted after first use) is not filled: the stage pauses with
    the reason until the marker is back."""
    world = make_world(tmp_path)
    world.write("a.png", PNG)
    assert world.sync() == 0
    shutil.rmtree(world.nas)
    world.nas.mkdir()  # the bare mount point
    world.write("b.png", OTHER)
    assert world.sync() == 0
    assert list(world.nas.iterdir()) == []
    assert "lost its marker" in (_status(world)["stages"]["archive"]["paused"] or "")
    assert "b.png" not in world.stages()


def test_a_stage_left_running_by_a_kill_resumes(tmp_path: Path) -> None:
    """A row left `running` with a stray partial (kill -9 mid-copy) is done by the next run."""
    world = make_world(tmp_path)
    world.nas.rmdir()
    world.write("a.png", PNG)
    assert world.sync() == 0
    world.nas.mkdir()
    with sqlite3.connect(world.state_dir / "state.db") as db:
        db.execute(
            "INSERT INTO file_stages (file_id, stage, state, attempts, updated_at) "
            "SELECT id, 'archive', 'running', 1, 0 FROM files"
        )
    (world.nas / "r1").mkdir()
    (world.nas / "r1/.a.png.mediasyncd-partial").write_bytes(PNG[:100])
    assert world.run() == 0
    assert (world.nas / "r1/a.png").read_bytes() == PNG
    assert world.stages()["a.png"] == ("done", None)
    assert not (world.nas / "r1/.a.png.mediasyncd-partial").exists()


def test_only_the_given_paths_run(tmp_path: Path) -> None:
    """`workflow run PATH` archives that file only; a dry run writes nothing."""
    world = make_world(tmp_path)
    world.nas.rmdir()
    world.write("a.png", PNG)
    world.write("b.png", OTHER)
    assert world.sync() == 0
    world.nas.mkdir()
    assert world.run(str(world.library / "r1/a.png"), dry_run=True) == 0
    assert list(world.nas.iterdir()) == []
    assert world.run(str(world.library / "r1/a.png")) == 0
    assert set(world.stages()) == {"a.png"}


# ------------------------------------------------------------------------------------------- pure parts


def test_copy_verified_refuses_a_library_copy_that_no_longer_verifies(tmp_path: Path) -> None:
    """A library file whose bytes differ from the landed hash is not archived."""
    src = tmp_path / "a.png"
    src.write_bytes(PNG)
    with pytest.raises(Exception, match="differs from the one verified"):
        copy_verified(src, tmp_path / "nas/a.png", "0" * 64)
    assert not (tmp_path / "nas/a.png").exists()


def test_copy_verified_keeps_an_identical_file_and_refuses_a_different_one(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(PNG)
    digest = sha256_file(src)
    first = copy_verified(src, tmp_path / "nas/a.png", digest)
    assert not first.already
    assert copy_verified(src, tmp_path / "nas/a.png", digest).already
    (tmp_path / "nas/b.png").write_bytes(b"x")
    with pytest.raises(Conflict):
        copy_verified(src, tmp_path / "nas/b.png", digest)


def test_destination_rules(tmp_path: Path) -> None:
    """Missing: paused; first use: marker written; used and no marker: paused."""
    assert destination_problem(tmp_path / "no", used=False) is not None
    assert destination_problem(tmp_path, used=False) is None
    assert (tmp_path / MARKER).is_file()
    (tmp_path / MARKER).unlink()
    assert "lost its marker" in (destination_problem(tmp_path, used=True) or "")


def test_target_paths_and_stage_selection() -> None:
    assert target_path(Path("/n"), "r1", "a/b.png") == Path("/n/r1/a/b.png")
    with pytest.raises(UnsafePathError):
        target_path(Path("/n"), "r1", "../x.png")
    assert select_stages(("archive", "compress", "syncthing"), "compress", None) == ("compress", "syncthing")
    assert select_stages(("archive", "compress"), None, "archive") == ("archive",)
    with pytest.raises(ValueError):
        select_stages(("archive",), "syncthing", None)


def _status(world: World) -> Any:
    out = io.StringIO()
    assert status_main(world.config(), as_json=True, out=out) == 0
    return json.loads(out.getvalue())


def test_the_daemon_consumer_archives_a_file_once_its_event_arrives(tmp_path: Path) -> None:
    """Workflow.run follows the log: a landed file is archived without a restart."""
    world = make_world(tmp_path)
    world.write("a.png", PNG)
    assert world.sync() == 0
    world.write("b.png", OTHER)

    async def go() -> None:
        store = Store(world.state_dir / "state.db")
        await store.open()
        try:
            flow = Workflow(world.config(), store, retry_interval=0.2)
            task = asyncio.create_task(flow.run())
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await store.close()

    asyncio.run(go())
    assert (world.nas / "r1/a.png").read_bytes() == PNG
