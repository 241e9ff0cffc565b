"""compress with keep_original = false: the library file is replaced by its verified re-encode only once
the archived original verifies; the state DB, the catalog, the search index and the sidecar follow; a
kill at any step leaves the original or the replacement and the next run finishes; purge then verifies
the archived original."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.digest import sha256_file
from mediasyncd.purge.commands import purge_main
from mediasyncd.state import Store
from mediasyncd.state.catalog import Catalog
from mediasyncd.state.workflow import StageLedger, Switch
from mediasyncd.workflow.encode import encode, partial_of, write_partial
from mediasyncd.workflow.replace import rename_into_place
from tests.workflow.conftest import World, make_world, set_workflow
from tests.workflow.test_compress import A1111, png, record

PIPELINE = {"enabled": True, "thumbnails": False}


def replacing_world(
    tmp_path: Path, *, fmt: str = "webp", stages: tuple[str, ...] = ("archive", "compress")
) -> World:
    world = make_world(tmp_path, pipeline=PIPELINE)
    set_workflow(world.config_path, {
        "stages": list(stages), "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": fmt, "keep_original": False, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    return world


def row(world: World, rel: str) -> dict[str, Any]:
    with sqlite3.connect(world.state_dir / "state.db") as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM files WHERE rel = ? AND current = 1", (rel,)).fetchone()
        stage = db.execute(
            "SELECT state, output_path, output_sha256, last_error FROM file_stages WHERE file_id = ? "
            "AND stage = 'compress'",
            (found["id"],),
        ).fetchone()
    return dict(found) | {"compress": dict(stage) if stage else None}


def test_the_library_file_is_replaced_and_everything_follows(tmp_path: Path) -> None:
    """a.png becomes a.webp in the library: the file row (path, library hash), the catalog record, the
    search index and the sidecar follow; the archive keeps the original; inspect reads the same record."""
    world = replacing_world(tmp_path)
    source = png(tmp_path / "x.png", parameters=A1111)
    world.write("a.png", source.read_bytes())
    assert world.sync() == 0
    lib = world.library / "r1"
    assert not (lib / "a.png").exists() and not (lib / "a.png.xmp").exists()
    webp = lib / "a.webp"
    assert webp.is_file() and webp.stat().st_size < source.stat().st_size
    assert (world.nas / "r1/a.png").read_bytes() == source.read_bytes()
    r = row(world, "a.png")
    assert r["local_path"] == "r1/a.webp"
    assert r["sha256"] == sha256_file(source)
    assert r["library_sha256"] == sha256_file(webp) == r["compress"]["output_sha256"]
    assert r["compress"]["state"] == "done" and r["compress"]["output_path"] == str(webp)
    assert record(webp) == record(source)
    sidecar = lib / "a.webp.xmp"
    assert "a cat" in sidecar.read_text()
    with sqlite3.connect(world.state_dir / "state.db") as db:
        catalog = Catalog(db)
        assert [h.path for h in catalog.search("cat", 10)] == ["r1/a.webp"]
        media = db.execute("SELECT path, sha256, sidecar FROM media").fetchall()
        assert media == [("r1/a.webp", r["library_sha256"], "r1/a.webp.xmp")]
        assert catalog.file(r["id"])["metadata"]["prompt"] == "a cat"  # type: ignore[index]
    assert not list(world.library.rglob("*.mediasyncd-partial"))
    assert world.run() == 0  # nothing left to do
    assert world.staged_events().count("a.png") == 2
    with sqlite3.connect(world.state_dir / "state.db") as db:
        (data,) = db.execute(
            "SELECT data FROM events WHERE type = 'file_staged' AND json_extract(data, '$.stage') = 'compress'"
        ).fetchone()
    event = json.loads(data)
    assert (event["library_path"], event["library_sha256"]) == ("r1/a.webp", r["library_sha256"])
    assert event["sha256"] == r["sha256"]


def test_avif_replacement_round_trips_the_comfyui_graphs(tmp_path: Path) -> None:
    """format = "avif": the replacement carries ComfyUI's prompt and workflow; inspect reads the same."""
    from tests.workflow.test_compress import SAMPLES

    world = replacing_world(tmp_path, fmt="avif")
    source = png(tmp_path / "x.png", **SAMPLES["comfyui"])
    world.write("c.png", source.read_bytes())
    assert world.sync() == 0
    avif = world.library / "r1/c.avif"
    assert avif.read_bytes()[4:12] == b"ftypavif"
    assert record(avif) == record(source)
    assert record(avif)["generator"] == "comfyui"


def test_purge_verifies_the_archived_original_of_a_replaced_file(tmp_path: Path) -> None:
    """The replaced file leaves the source once its archived original verifies; an archive copy that
    changed or went away holds it (never "deleted locally")."""
    world = replacing_world(tmp_path)
    for name in ("a", "b", "c"):
        world.write(f"{name}.png", png(tmp_path / f"{name}-src.png", parameters=A1111 + name).read_bytes())
    assert world.sync() == 0
    (world.nas / "r1/b.png").write_bytes(b"bit rot")
    (world.nas / "r1/c.png").unlink()
    config = world.config()
    assert purge_main(config, [], dry_run=False, include_deleted_locally=True) == 0
    assert sorted(p.name for p in world.source.iterdir()) == ["b.png", "c.png"]
    with sqlite3.connect(world.state_dir / "state.db") as db:
        reasons = dict(db.execute("SELECT rel, COALESCE(purge_reason, state) FROM files").fetchall())
    assert reasons == {"a.png": "purged", "b.png": "corrupt_locally", "c.png": "local_unreadable"}


def test_an_unverifiable_archive_copy_leaves_the_library_file_alone(tmp_path: Path) -> None:
    """The archive copy damaged after archiving: compress waits (not failed) and the original stays."""
    world = replacing_world(tmp_path, stages=("archive",))
    world.write("a.png", png(tmp_path / "x.png", parameters=A1111).read_bytes())
    assert world.sync() == 0
    (world.nas / "r1/a.png").write_bytes(b"damaged")
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "webp", "keep_original": False, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    assert world.run() == 0
    assert (world.library / "r1/a.png").is_file() and not (world.library / "r1/a.webp").exists()
    r = row(world, "a.png")
    assert r["compress"]["state"] == "waiting" and "cannot be verified" in r["compress"]["last_error"]


# A kill -9 can stop a replacement after each of its steps; each state is built here with the stage's
# own functions, and the next run must end with the replacement in place and nothing lost.
STEPS = ("intent", "partial", "renamed", "switched")


@pytest.mark.parametrize("step", STEPS)
def test_a_replacement_killed_after_each_step_is_finished_by_the_next_run(tmp_path: Path, step: str) -> None:
    """After the intent, the verified partial, the rename or the DB switch: the next `workflow run`
    finishes (original gone only at the end), with the same state as an uninterrupted run."""
    world = replacing_world(tmp_path, stages=("archive",))
    source = png(tmp_path / "x.png", parameters=A1111)
    world.write("a.png", source.read_bytes())
    assert world.sync() == 0
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "webp", "keep_original": False, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    original = world.library / "r1/a.png"
    target = world.library / "r1/a.webp"
    data = encode(original, "webp", 90).data
    asyncio.run(_interrupted(world, original, target, data, STEPS.index(step)))
    assert original.is_file() or target.is_file()
    assert world.run() == 0
    assert not original.exists() and not partial_of(target).exists()
    r = row(world, "a.png")
    assert r["local_path"] == "r1/a.webp" and r["library_sha256"] == sha256_file(target)
    assert r["compress"]["state"] == "done"
    assert record(target) == record(source)


async def _interrupted(world: World, original: Path, target: Path, data: bytes, upto: int) -> None:
    store = Store(world.state_dir / "state.db")
    await store.open()
    try:
        ledger = StageLedger(store)
        file_id = row(world, "a.png")["id"]
        await ledger.begin(file_id, "compress")
        digest = await asyncio.to_thread(write_partial, data, partial_of(target))
        await ledger.intend(file_id, "compress", str(target), digest, "r1/a.png")
        if upto == 0:
            await asyncio.to_thread(partial_of(target).unlink)
        if upto >= 2:
            await asyncio.to_thread(rename_into_place, partial_of(target), target)
        if upto >= 3:
            stat = await asyncio.to_thread(target.stat)
            await ledger.switch(
                Switch(file_id, "r1/a.png", "r1/a.webp", digest, stat.st_size, stat.st_mtime_ns, None)
            )
    finally:
        await store.close()


def test_a_different_file_at_the_replacement_path_is_never_overwritten(tmp_path: Path) -> None:
    """Someone's a.webp beside a.png: the stage fails for a.png, both files stay as they were."""
    world = replacing_world(tmp_path, stages=("archive",))
    world.write("a.png", png(tmp_path / "x.png", parameters=A1111).read_bytes())
    assert world.sync() == 0
    (world.library / "r1/a.webp").write_bytes(b"mine")
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "webp", "keep_original": False, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    assert world.run() == 1
    assert (world.library / "r1/a.webp").read_bytes() == b"mine"
    assert (world.library / "r1/a.png").is_file()
    assert row(world, "a.png")["compress"]["state"] == "failed"


def test_the_whole_library_directory_is_kept_when_the_archive_is_unmounted(tmp_path: Path) -> None:
    """The archive share gone before compress: nothing in the library is replaced."""
    world = replacing_world(tmp_path, stages=("archive",))
    world.write("a.png", png(tmp_path / "x.png", parameters=A1111).read_bytes())
    assert world.sync() == 0
    shutil.rmtree(world.nas)
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"format": "webp", "keep_original": False, "min_saving": "0%"},
    }, PIPELINE)  # fmt: skip
    world.run()
    assert (world.library / "r1/a.png").is_file() and not (world.library / "r1/a.webp").exists()
