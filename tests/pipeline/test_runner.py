"""`Pipeline.process`: every stage recorded per file, idempotent, resumable, never raising for bad files."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.runner import Pipeline
from tests.pipeline import samples, samples_apps
from tests.pipeline.conftest import sha256_of

REL = "txt2img-images/00001-1.png"


def land(library: Path, builder=samples.forge_png, rel: str = REL) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    path = library / "forge1" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    builder(path)
    return path, sha256_of(path)


def stage_rows(db_path: Path) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT path, stage, status, runs FROM pipeline_stages ORDER BY path, stage"
        ).fetchall()


async def test_all_stages_run_and_are_recorded(pipeline: Pipeline, library: Path, db_path: Path) -> None:
    """A landed image goes through metadata, xmp, thumbnail and index, each recorded done."""
    path, sha = land(library)
    result = await pipeline.process(path, sha, remote="forge1", rel=REL)
    assert result.ok and list(result.stages) == ["metadata", "xmp", "thumbnail", "index"]
    assert result.path == f"forge1/{REL}"
    assert result.record is not None and result.record.generator == "forge"
    assert (library / f"forge1/{REL}.xmp").exists()
    assert (library / ".mediasyncd" / "thumbs" / sha[:2] / f"{sha}.webp").exists()
    assert {(stage, status) for _, stage, status, _ in stage_rows(db_path)} == {
        ("metadata", "done"),
        ("xmp", "done"),
        ("thumbnail", "done"),
        ("index", "done"),
    }


async def test_second_run_redoes_nothing(pipeline: Pipeline, library: Path, db_path: Path) -> None:
    """Processing the same file and hash again resumes every stage and runs none."""
    path, sha = land(library)
    await pipeline.process(path, sha, remote="forge1", rel=REL)
    again = await pipeline.process(path, sha, remote="forge1", rel=REL)
    assert again.resumed == ("metadata", "xmp", "thumbnail", "index")
    assert again.record is not None and again.record.generator == "forge"
    assert {runs for *_, runs in stage_rows(db_path)} == {1}


async def test_library_relative_path_is_accepted(pipeline: Pipeline, library: Path) -> None:
    """local_path may be given relative to the library, as the core's files table stores it."""
    _, sha = land(library)
    result = await pipeline.process(Path("forge1") / REL, sha, remote="forge1", rel=REL)
    assert result.ok and result.path == f"forge1/{REL}"


async def test_corrupt_file_gives_error_result(pipeline: Pipeline, library: Path) -> None:
    """A truncated PNG: metadata and thumbnail errors recorded, no exception, still indexed by path."""
    path, _ = land(library)
    path.write_bytes(path.read_bytes()[:-40])
    result = await pipeline.process(path, sha256_of(path), remote="forge1", rel=REL)
    assert result.error is not None and result.error.startswith("metadata: truncated PNG")
    assert result.stages["thumbnail"].status == "error"
    assert result.stages["index"].status == "done"


async def test_zero_byte_file_gives_error_result(pipeline: Pipeline, library: Path) -> None:
    """A 0-byte file: "empty file" error, xmp skipped, no exception."""
    path = library / "forge1" / "empty.png"
    path.write_bytes(b"")
    result = await pipeline.process(path, sha256_of(path), remote="forge1", rel="empty.png")
    assert result.stages["metadata"].detail == "empty file (0 bytes)"
    assert result.stages["xmp"].status == "skipped"


async def test_image_without_metadata_gets_thumbnail_but_no_sidecar(
    pipeline: Pipeline, library: Path
) -> None:
    """No metadata: no sidecar (nothing to say), but a thumbnail; not an error."""
    path, sha = land(library, samples.png, "plain.png")
    result = await pipeline.process(path, sha, remote="forge1", rel="plain.png")
    assert result.ok
    assert (result.stages["metadata"].detail, result.stages["xmp"].status) == ("no metadata", "skipped")
    assert result.stages["thumbnail"].status == "done"
    assert not (path.parent / "plain.png.xmp").exists()


async def test_changed_file_is_processed_afresh(pipeline: Pipeline, library: Path, db_path: Path) -> None:
    """A re-landed file with a new SHA-256 runs every stage again and forgets the old version."""
    path, sha = land(library)
    await pipeline.process(path, sha, remote="forge1", rel=REL)
    samples.comfyui_png(path)
    result = await pipeline.process(path, sha256_of(path), remote="forge1", rel=REL)
    assert result.resumed == () and result.record is not None and result.record.generator == "comfyui"
    assert len(stage_rows(db_path)) == 4


async def test_path_outside_library_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    """A path outside the library is an error result, nothing written."""
    outside = samples.forge_png(tmp_path / "elsewhere.png")
    result = await pipeline.process(outside, "0" * 64, remote="forge1", rel="x")
    assert result.error is not None and "outside the library" in result.error
    assert not (tmp_path / "elsewhere.png.xmp").exists()


async def test_disabled_stages_are_not_run(library: Path, db_path: Path) -> None:
    """xmp = false and thumbnails = false leave only metadata and index."""
    db_path.parent.mkdir()
    pipeline = Pipeline(db_path, library, PipelineOptions(xmp=False, thumbnails=False, workers=1))
    try:
        path, sha = land(library)
        result = await pipeline.process(path, sha, remote="forge1", rel=REL)
    finally:
        await pipeline.aclose()
    assert list(result.stages) == ["metadata", "index"]
    assert not (library / ".mediasyncd").exists()


async def test_stem_naming_option(library: Path, db_path: Path) -> None:
    """xmp_naming = "stem" writes name.xmp instead of name.png.xmp."""
    db_path.parent.mkdir()
    pipeline = Pipeline(db_path, library, PipelineOptions(xmp_naming="stem", workers=1))
    try:
        path, sha = land(library)
        await pipeline.process(path, sha, remote="forge1", rel=REL)
    finally:
        await pipeline.aclose()
    assert path.with_suffix(".xmp").exists() and not (path.parent / (path.name + ".xmp")).exists()


async def test_many_files_in_parallel(pipeline: Pipeline, library: Path, db_path: Path) -> None:
    """Concurrent process() calls all complete, each with four recorded stages."""
    builders = [
        samples.forge_png,
        samples.comfyui_png,
        samples_apps.swarmui_png,
        samples_apps.novelai_png,
    ] * 4
    landed = [land(library, builder, f"batch/{i:03}.png") for i, builder in enumerate(builders)]
    results = await asyncio.gather(*(pipeline.process(p, s, remote="forge1", rel=p.name) for p, s in landed))
    assert all(result.ok for result in results)
    assert len(stage_rows(db_path)) == 4 * len(builders)


async def test_catalog_tables_an_earlier_version_made_are_adopted_by_the_migration(
    library: Path, db_path: Path
) -> None:
    """A state DB whose catalog tables the pipeline created itself (before they were a migration) keeps
    its rows: the migration adopts the tables, and processing goes on in the same file."""
    from mediasyncd.state.schema import MIGRATIONS

    db_path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        conn.executescript(MIGRATIONS[4])  # what the pipeline used to create on its own
        conn.execute(
            "INSERT INTO media (path, sha256, record, updated_at) VALUES ('old/x.png', 'ab', '{}', 'then')"
        )
    pipeline = Pipeline(db_path, library, PipelineOptions(workers=1))
    path, sha = land(library)
    await pipeline.process(path, sha, remote="forge1", rel=REL)
    await pipeline.aclose()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        paths = sorted(p for (p,) in conn.execute("SELECT path FROM media"))
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert "old/x.png" in paths and len(paths) == 2


async def test_a_registered_stage_runs_after_what_it_needs_and_reruns_with_it(
    pipeline: Pipeline, library: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new stage is one registration: it runs after the stages it needs, sees their record, is
    recorded like the others, and `reprocess --stage metadata` runs it again."""
    from mediasyncd.pipeline import stages
    from mediasyncd.pipeline.outcome import StageOutcome

    monkeypatch.setattr(stages, "REGISTRY", dict(stages.REGISTRY))
    seen: list[str | None] = []

    async def shout(runner: stages.Runner, job: stages.Job) -> StageOutcome:
        seen.append(job.record.generator if job.record else None)
        return StageOutcome("done", "shouted")

    stages.register(stages.Stage("shout", shout, needs=("metadata",)))
    path, sha = land(library)
    result = await pipeline.process(path, sha, remote="forge1", rel=REL)
    assert list(result.stages) == ["metadata", "xmp", "thumbnail", "index", "shout"]
    assert seen == ["forge"] and ("shout", "done") in {(s, st) for _, s, st, _ in stage_rows(db_path)}
    assert stages.dependents("metadata") == ("metadata", "xmp", "index", "shout")
    (again,) = await pipeline.reprocess([path], "metadata")
    assert again.ok and seen == ["forge", "forge"]
