"""Local retention in the library: only old copies of purged files go, dry runs are exact, nothing is
followed out of the library. Real files, a real state DB, `mediasyncd purge --local-only` in-process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from mediasyncd.config import load_config
from mediasyncd.pipeline.thumbs import thumb_relpath
from mediasyncd.purge.commands import purge_main
from mediasyncd.purge.retention import Hold, select
from mediasyncd.state import LandedFile, NewFile, Store
from mediasyncd.state.purge import Landed, PurgeLedger
from tests.helpers import write_config

HOUR = 3600.0
MTIME = time.time() - 10 * 86400
ROOT = "/workspace/outputs"


@dataclass
class World:
    """A library with `.mediasyncd/`, a state DB and a config whose remote "r1" is never contacted."""

    library: Path
    state_dir: Path
    config_path: Path

    @property
    def db(self) -> Path:
        return self.state_dir / "state.db"

    def land(
        self,
        rel: str,
        data: bytes,
        *,
        age: float = 48 * HOUR,
        purged: bool = True,
        local_path: str | None = None,
    ) -> int:
        """A file as sync and purge leave it: its library copy (remote mtime kept), its row landed `age`
        ago, and purged from the remote unless `purged` is False. Returns the row id."""
        local = local_path or f"r1/{rel}"
        path = self.library / local
        if not path.is_symlink():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.utime(path, (MTIME, MTIME))
        return asyncio.run(self._row(rel, data, local, age, purged))

    async def _row(self, rel: str, data: bytes, local: str, age: float, purged: bool) -> int:
        store = Store(self.db)
        await store.open()
        try:
            (row,) = await store.add_seen("r1", [NewFile(ROOT, rel, len(data), MTIME)])
            digest = hashlib.sha256(data).hexdigest()
            await store.set_landing_intents([(row.id, digest, local)])
            await store.mark_landed([LandedFile(row, digest, local)])
            if purged:
                await PurgeLedger(store).mark_purged([row.id])
            with contextlib.closing(sqlite3.connect(self.db)) as db, db:
                db.execute("UPDATE files SET landed_at = ? WHERE id = ?", (time.time() - age, row.id))
        finally:
            await store.close()
        return row.id

    def record_outputs(
        self, local_path: str, sidecar: str | None = None, thumbnail: str | None = None
    ) -> None:
        """What the media pipeline records in the catalog for a processed file."""
        with contextlib.closing(sqlite3.connect(self.db)) as db, db:
            db.execute(
                "INSERT INTO media (path, sha256, record, updated_at, sidecar, thumbnail) "
                "VALUES (?, 'x', '{}', 'now', ?, ?)",
                (local_path, sidecar, thumbnail),
            )

    def purge(self, *, dry_run: bool = False) -> int:
        return purge_main(
            load_config(self.config_path), [], dry_run=dry_run, include_deleted_locally=False, local_only=True
        )

    def files(self) -> set[str]:
        """Every file and symlink under the library outside `.mediasyncd/`, library-relative."""
        return {
            str(p.relative_to(self.library))
            for p in self.library.rglob("*")
            if (p.is_file() or p.is_symlink()) and ".mediasyncd" not in p.parts
        }

    def expired(self) -> set[str]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT local_path FROM files WHERE library_expired_at IS NOT NULL").fetchall()
        return {r[0] for r in rows}


def make_world(
    tmp: Path, purge: dict[str, Any] | None = None, pipeline: dict[str, Any] | None = None
) -> World:
    library = tmp / "library"
    (library / ".mediasyncd").mkdir(parents=True)
    state_dir = tmp / "state"
    table: dict[str, Any] = {"name": "r1", "host": "gpu.invalid", "kind": "generic", "roots": [ROOT]}
    if purge is not None:
        table["purge"] = purge
    config_path = write_config(tmp / "config.toml", library, state_dir, [table])
    if pipeline:
        doc = tomllib.loads(config_path.read_text())
        doc["pipeline"] |= pipeline
        config_path.write_text(tomli_w.dumps(doc))
    return World(library, state_dir, config_path)


def printed(output: str, verb: str) -> set[str]:
    """Library-relative paths the CLI printed after `r1: <verb> <library>/`."""
    out = set()
    for line in output.splitlines():
        _, sep, rest = line.partition(f"r1: {verb} ")
        if sep and not line.startswith("{"):
            out.add(rest.split(" (", 1)[0].split(": ", 1)[0])
    return out


# ------------------------------------------------------------------------------------------ the rule


def test_select_refuses_paths_outside_the_remote_folder() -> None:
    """Only clean `<remote>/...` paths are candidates: other remotes, `.mediasyncd/`, `..` are refused."""
    rows = [
        Landed(i, "x.png", path, 1, MTIME, None, 0.0)
        for i, path in enumerate(
            ["r1/ok.png", "r2/x.png", ".mediasyncd/state.db", "r1/../etc/passwd", "/etc/passwd", "r1"]
        )
    ]
    due, held = select(rows, remote="r1", preserve=())
    assert [c.local_path for c in due] == ["r1/ok.png"]
    assert {h for _, h in held} == {Hold.OUTSIDE}


def test_select_keeps_preserved_and_shared_copies() -> None:
    """A copy matching `preserve`, or also used by a landed file that is not expiring, stays."""
    rows = [
        Landed(1, "fav/a.png", "r1/fav/a.png", 1, MTIME, None, 0.0),
        Landed(2, "b.png", "r1/b.png", 1, MTIME, None, 0.0),
        Landed(3, "c.png", "r1/c.png", 1, MTIME, None, 0.0),
    ]
    due, held = select(rows, remote="r1", preserve=("fav/**",), in_use=frozenset({"r1/b.png"}))
    assert [c.local_path for c in due] == ["r1/c.png"]
    assert {(c.local_path, h) for c, h in held} == {
        ("r1/fav/a.png", Hold.PRESERVED),
        ("r1/b.png", Hold.SHARED),
    }


# ----------------------------------------------------------------------------------- on real files


def test_with_retention_off_nothing_is_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old purged copies stay when `local_retention` is not set, and the run says retention is off."""
    w = make_world(tmp_path)
    w.land("old.png", b"a" * 100, age=400 * 86400)
    assert w.purge() == 0
    assert w.files() == {"r1/old.png"} and w.expired() == set()
    assert "local retention is off" in capsys.readouterr().out


def test_only_old_copies_of_purged_files_go(tmp_path: Path) -> None:
    """Purged and landed longer ago than local_retention: deleted and marked; a younger copy, a copy
    whose remote file is not purged yet, and a file mediasyncd did not land all stay."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("old.png", b"old")
    w.land("young.png", b"young", age=2 * HOUR)
    w.land("on-remote.png", b"unpurged", purged=False)
    (w.library / "r1/mine.png").write_bytes(b"the user's own file")
    os.utime(w.library / "r1/mine.png", (MTIME, MTIME))
    assert w.purge() == 0
    assert w.files() == {"r1/young.png", "r1/on-remote.png", "r1/mine.png"}
    assert w.expired() == {"r1/old.png"}


def test_dry_run_lists_exactly_what_the_real_run_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dry run deletes nothing and prints the very copies the real run then deletes, with totals."""
    w = make_world(tmp_path, {"local_retention": "1d", "preserve": ["keep/**"]})
    for i in range(5):
        w.land(f"d{i % 2}/{i}.png", bytes([i]) * 1000)
    w.land("young.png", b"y", age=HOUR)
    w.land("keep/fav.png", b"f")
    before = w.files()
    capsys.readouterr()
    assert w.purge(dry_run=True) == 0
    dry = capsys.readouterr().out
    assert w.files() == before and w.expired() == set()
    assert "5 file(s) would be deleted, 4.9 KiB would be freed" in dry
    assert w.purge() == 0
    real = capsys.readouterr().out
    would = printed(dry, "would delete from the library")
    assert would == printed(real, "deleted from the library") == {f"{w.library}/{p}" for p in w.expired()}
    assert len(would) == 5 and w.files() == before - {p.removeprefix(f"{w.library}/") for p in would}
    assert (
        printed(dry, "keep in the library")
        == printed(real, "keep in the library")
        == {f"{w.library}/r1/keep/fav.png"}
    )


def test_a_symlinked_copy_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """A library path that is a symlink (to a file outside the library) is never followed or deleted."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"precious")
    os.utime(outside, (MTIME, MTIME))
    (w.library / "r1").mkdir()
    (w.library / "r1/link.png").symlink_to(outside)
    w.land("link.png", b"precious")
    assert w.purge() == 0
    assert outside.read_bytes() == b"precious" and (w.library / "r1/link.png").is_symlink()
    assert w.expired() == set()


def test_a_symlinked_directory_is_never_walked_into(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory on the way that is a symlink out of the library stops the walk: the file behind it stays."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.png").write_bytes(b"aaa")
    os.utime(elsewhere / "a.png", (MTIME, MTIME))
    (w.library / "r1").mkdir()
    (w.library / "r1/dir").symlink_to(elsewhere, target_is_directory=True)
    w.land("dir/a.png", b"aaa")
    assert w.purge() == 0
    assert (elsewhere / "a.png").read_bytes() == b"aaa" and w.expired() == set()
    assert "is or lies under a symlink" in capsys.readouterr().out


def test_a_path_outside_the_remote_folder_is_refused(tmp_path: Path) -> None:
    """A row pointing into `.mediasyncd/` or another remote's folder never deletes that file."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("a.png", b"a", local_path=".mediasyncd/a.png")
    w.land("b.png", b"b", local_path="r2/b.png")
    assert w.purge() == 0
    assert (w.library / ".mediasyncd/a.png").exists() and (w.library / "r2/b.png").exists()
    assert w.expired() == set()


def test_a_copy_changed_in_the_library_stays(tmp_path: Path) -> None:
    """A copy edited since it landed (different mtime or size) is the user's now and stays."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("edited.png", b"pixels")
    (w.library / "r1/edited.png").write_bytes(b"retouched pixels")
    assert w.purge() == 0
    assert w.files() == {"r1/edited.png"} and w.expired() == set()


def test_a_copy_another_landed_file_still_uses_stays(tmp_path: Path) -> None:
    """Same content landed twice at one library path: while the second is not purged, the copy stays."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("a.png", b"same", local_path="r1/a.png")
    w.land("again/a.png", b"same", local_path="r1/a.png", purged=False)
    assert w.purge() == 0
    assert w.files() == {"r1/a.png"} and w.expired() == set()


def test_sidecar_and_thumbnail_go_with_the_copy(tmp_path: Path) -> None:
    """`<name>.<ext>.xmp` goes with its image; the thumbnail goes once no kept copy has that content."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("a.png", b"alpha")
    w.land("b.png", b"beta")
    w.land("young-b.png", b"beta", age=HOUR)  # same content as b.png, still kept
    for name in ("a.png.xmp", "b.png.xmp"):
        (w.library / "r1" / name).write_text("<x:xmpmeta/>")
    thumbs = {d: w.library / thumb_relpath(hashlib.sha256(d).hexdigest()) for d in (b"alpha", b"beta")}
    for thumb in thumbs.values():
        thumb.parent.mkdir(parents=True, exist_ok=True)
        thumb.write_bytes(b"webp")
    for name, data in (("a.png", b"alpha"), ("b.png", b"beta"), ("young-b.png", b"beta")):
        sidecar = f"r1/{name}.xmp" if name != "young-b.png" else None
        w.record_outputs(f"r1/{name}", sidecar, str(thumbs[data].relative_to(w.library)))
    assert w.purge() == 0
    assert w.files() == {"r1/young-b.png"}
    assert not thumbs[b"alpha"].exists() and thumbs[b"beta"].exists()


def test_a_stem_sidecar_shared_with_a_sibling_stays(tmp_path: Path) -> None:
    """With `xmp_naming = "stem"`, `photo.xmp` stays while `photo.jpg` is still there."""
    w = make_world(tmp_path, {"local_retention": "1d"}, pipeline={"xmp_naming": "stem"})
    w.land("photo.png", b"png", age=48 * HOUR)
    w.land("photo.jpg", b"jpg", age=HOUR)
    w.land("solo.png", b"solo")
    (w.library / "r1/photo.xmp").write_text("<x:xmpmeta/>")
    (w.library / "r1/solo.xmp").write_text("<x:xmpmeta/>")
    for name in ("photo.png", "photo.jpg", "solo.png"):
        w.record_outputs(f"r1/{name}", f"r1/{name.rsplit('.', 1)[0]}.xmp")
    assert w.purge() == 0
    assert w.files() == {"r1/photo.jpg", "r1/photo.xmp"}


def test_a_sidecar_the_pipeline_did_not_record_stays(tmp_path: Path) -> None:
    """Retention deletes only what the catalog recorded: a sidecar another tool wrote stays."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("a.png", b"alpha")
    (w.library / "r1/a.png.xmp").write_text("<x:xmpmeta>someone else's</x:xmpmeta>")
    assert w.purge() == 0
    assert w.files() == {"r1/a.png.xmp"}


def test_directories_left_empty_go_but_the_remote_folder_stays(tmp_path: Path) -> None:
    """Emptied date folders are removed; `<library>/<remote>/` itself and non-empty folders stay."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("txt2img/2026-01-01/a.png", b"a")
    w.land("txt2img/2026-01-02/b.png", b"b")
    w.land("txt2img/2026-01-02/c.png", b"c", age=HOUR)
    assert w.purge() == 0
    assert not (w.library / "r1/txt2img/2026-01-01").exists()
    assert (w.library / "r1/txt2img/2026-01-02/c.png").exists()
    w2 = make_world(tmp_path / "second", {"local_retention": "1d"})
    w2.land("only/a.png", b"a")
    assert w2.purge() == 0
    assert (w2.library / "r1").is_dir() and not (w2.library / "r1/only").exists()


def test_a_real_run_records_library_totals(tmp_path: Path) -> None:
    """The run's library totals (files, bytes, kept by reason) land in `purge_runs`."""
    w = make_world(tmp_path, {"local_retention": "1d", "preserve": ["keep.png"]})
    w.land("a.png", b"a" * 300)
    w.land("keep.png", b"k")
    assert w.purge() == 0
    with sqlite3.connect(w.db) as db:
        row = db.execute(
            "SELECT outcome, deleted_files, library_deleted_files, library_freed_bytes, library_kept FROM purge_runs"
        ).fetchone()
    assert row == ("ok", 0, 1, 300, '{"preserved": 1}')


def test_a_copy_already_gone_is_counted_not_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An old purged copy the user already deleted is reported as gone and not recorded as expired."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    w.land("a.png", b"a")
    (w.library / "r1/a.png").unlink()
    assert w.purge() == 0
    assert w.expired() == set()
    assert "1 old purged file(s) were already gone" in capsys.readouterr().out


def replace_in_library(w: World, file_id: int, local_path: str, data: bytes) -> None:
    """What `compress` with `keep_original = false` leaves: another file at another path, the row's
    `local_path` and `library_sha256` switched to it (workflow/replace.py)."""
    path = w.library / local_path
    path.write_bytes(data)
    with contextlib.closing(sqlite3.connect(w.db)) as db, db:
        db.execute(
            "UPDATE files SET local_path = ?, library_sha256 = ? WHERE id = ?",
            (local_path, hashlib.sha256(data).hexdigest(), file_id),
        )


def test_a_file_replaced_by_a_workflow_stage_expires_by_its_hash(tmp_path: Path) -> None:
    """A re-encode that replaced the landed file (other size, other mtime) expires like the file it
    replaced, checked by the replacement's SHA-256; once edited in the library, it is the user's."""
    w = make_world(tmp_path, {"local_retention": "1d"})
    kept = w.land("kept.png", b"png pixels")
    gone = w.land("gone.png", b"other png pixels")
    (w.library / "r1/kept.png").unlink()
    (w.library / "r1/gone.png").unlink()
    replace_in_library(w, kept, "r1/kept.webp", b"webp bytes")
    replace_in_library(w, gone, "r1/gone.webp", b"more webp bytes")
    (w.library / "r1/kept.webp").write_bytes(b"webp bytes, retouched")
    assert w.purge() == 0
    assert w.files() == {"r1/kept.webp"} and w.expired() == {"r1/gone.webp"}
