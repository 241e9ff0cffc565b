"""The library stays true: files deleted or replaced outside mediasyncd leave the index or are re-indexed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mediasyncd.pipeline.audit import audit_library
from mediasyncd.pipeline.runner import Pipeline
from mediasyncd.state.catalog import Catalog
from tests.pipeline import samples, samples_apps
from tests.pipeline.conftest import sha256_of


async def land(
    pipeline: Pipeline, library: Path, name: str, builder: Callable[[Path], Path] = samples.forge_png
) -> Path:
    path = builder(library / "forge1" / name)
    await pipeline.process(path, sha256_of(path), remote="forge1", rel=name)
    return path


def thumbs(library: Path) -> list[Path]:
    return sorted((library / ".mediasyncd" / "thumbs").rglob("*.webp"))


async def test_an_untouched_library_changes_nothing(pipeline: Pipeline, library: Path) -> None:
    """Every file as processed: nothing removed, nothing reprocessed."""
    await land(pipeline, library, "a.png")
    result = await audit_library(pipeline)
    assert (result.checked, result.removed, result.reprocessed) == (1, (), ())


async def test_a_deleted_file_leaves_the_index_and_its_thumbnail_goes(
    pipeline: Pipeline, library: Path, db_path: Path
) -> None:
    """rm in the library: the record, the search hit and the thumbnail are gone after the audit."""
    path = await land(pipeline, library, "a.png")
    await land(pipeline, library, "fox.png", samples_apps.swarmui_png)
    assert len(thumbs(library)) == 2
    path.unlink()
    result = await audit_library(pipeline)
    assert result.removed == ("forge1/a.png",)
    catalog = Catalog.read_only(db_path)
    try:
        assert catalog.search("cat", 10) == [] and [h.path for h in catalog.search("fox", 10)] == [
            "forge1/fox.png"
        ]
        assert [row.path for row in catalog.media_rows()] == ["forge1/fox.png"]
    finally:
        catalog.close()
    assert len(thumbs(library)) == 1


async def test_a_replaced_file_is_reindexed_with_its_new_content(
    pipeline: Pipeline, library: Path, db_path: Path
) -> None:
    """An image overwritten with another: its new prompt is found, the old one not, one fresh thumbnail."""
    path = await land(pipeline, library, "a.png")
    old_thumbs = thumbs(library)
    samples_apps.swarmui_png(path)
    result = await audit_library(pipeline)
    assert result.reprocessed == ("forge1/a.png",)
    catalog = Catalog.read_only(db_path)
    try:
        assert [h.path for h in catalog.search("fox", 10)] == ["forge1/a.png"]
        assert catalog.search("cat", 10) == []
    finally:
        catalog.close()
    assert len(thumbs(library)) == 1 and thumbs(library) != old_thumbs


async def test_a_touched_but_identical_file_is_not_reprocessed(pipeline: Pipeline, library: Path) -> None:
    """Same bytes, new mtime: hashed once, the mtime recorded, nothing reprocessed; the next audit skips it."""
    path = await land(pipeline, library, "a.png")
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert (await audit_library(pipeline)).reprocessed == ()
    assert (await audit_library(pipeline)).reprocessed == ()
