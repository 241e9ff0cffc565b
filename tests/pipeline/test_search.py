"""Prompt search: FTS5 over prompt, negative prompt, model, generator and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasyncd.pipeline.runner import Pipeline
from mediasyncd.state.catalog import Catalog
from tests.pipeline import samples, samples_apps
from tests.pipeline.conftest import sha256_of


@pytest.fixture
async def indexed(pipeline: Pipeline, library: Path, db_path: Path) -> Catalog:
    for name, builder in (
        ("lighthouse.png", samples.comfyui_png),
        ("fox.png", samples_apps.swarmui_png),
        ("tiger.png", samples_apps.fooocus_png),
        ("cat.png", samples.forge_png),
    ):
        path = builder(library / "forge1" / name)
        await pipeline.process(path, sha256_of(path), remote="forge1", rel=name)
    return Catalog.read_only(db_path)


def test_search_finds_by_prompt_words(indexed: Catalog) -> None:
    """Words from a prompt find the file, with a highlighted snippet."""
    hits = indexed.search("lighthouse dusk", 10)
    assert [hit.path for hit in hits] == ["forge1/lighthouse.png"]
    assert "[lighthouse]" in hits[0].snippet and hits[0].generator == "comfyui"


def test_search_by_model_and_generator(indexed: Catalog) -> None:
    """Model and generator names are searchable."""
    assert [hit.path for hit in indexed.search("juggernautXL_v8Rundiffusion", 10)] == ["forge1/tiger.png"]
    assert [hit.path for hit in indexed.search("swarmui", 10)] == ["forge1/fox.png"]


def test_search_by_negative_prompt(indexed: Catalog) -> None:
    """Negative prompt words are searchable too."""
    assert [hit.path for hit in indexed.search("cartoon", 10)] == ["forge1/fox.png"]


def test_search_syntax_errors_fall_back_to_words(indexed: Catalog) -> None:
    """Unbalanced quotes or stray operators are searched as plain words, not an error."""
    assert [hit.path for hit in indexed.search('"quoted cat', 10)] == ["forge1/cat.png"]
    assert indexed.search("AND OR (", 10) == []


def test_search_respects_limit(indexed: Catalog) -> None:
    """The limit caps the number of hits."""
    assert len(indexed.search("forge1", 2)) == 2


def test_search_finds_cjk_prompt(indexed: Catalog) -> None:
    """A CJK word written as its own token is found."""
    assert [hit.path for hit in indexed.search("灯台", 10)] == ["forge1/lighthouse.png"]


async def test_words_inside_japanese_and_chinese_prompts_are_found(
    pipeline: Pipeline, library: Path, db_path: Path
) -> None:
    """FTS5 keeps a run of kana or ideographs as one token; a word inside it is still found, by substring,
    in the prompt and the negative prompt, and every word of the query must be there."""
    parameters = (
        "夕暮れの灯台と海、傑作\nNegative prompt: 低品質、ぼやけ\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model: 动漫模型"
    )
    path = samples.png(library / "forge1" / "jp.png", itxt={"parameters": parameters})
    await pipeline.process(path, sha256_of(path), remote="forge1", rel="jp.png")
    samples.forge_png(library / "forge1" / "cat.png")
    cat = library / "forge1" / "cat.png"
    await pipeline.process(cat, sha256_of(cat), remote="forge1", rel="cat.png")
    catalog = Catalog.read_only(db_path)

    fts_only = catalog.conn.execute("SELECT rowid FROM media_fts WHERE media_fts MATCH ?", ('"灯台"',))
    assert fts_only.fetchall() == []  # what FTS5 alone finds
    hits = catalog.search("灯台", 10)
    assert [hit.path for hit in hits] == ["forge1/jp.png"]
    assert hits[0].snippet == "夕暮れの[灯台]と海、傑作"
    assert [hit.path for hit in catalog.search("ぼやけ", 10)] == ["forge1/jp.png"]
    assert [hit.path for hit in catalog.search("灯台 海", 10)] == ["forge1/jp.png"]
    assert [hit.path for hit in catalog.search("模型", 10)] == ["forge1/jp.png"]
    assert catalog.search("灯台 山", 10) == []
    assert [hit.path for hit in catalog.search("cat", 10)] == ["forge1/cat.png"]


def paths(catalog: Catalog, query: str) -> list[str]:
    return sorted(hit.path for hit in catalog.search(query, 10))


def test_field_filters_narrow_the_hits(indexed: Catalog) -> None:
    """model:, lora:, seed:, steps:, generator: and remote: filter on what the records say."""
    assert paths(indexed, "model:juggernaut") == ["forge1/cat.png", "forge1/tiger.png"]
    assert paths(indexed, "model:juggernaut lora:detail") == ["forge1/cat.png"]
    assert paths(indexed, "seed:987654321") == ["forge1/lighthouse.png"]
    assert paths(indexed, "steps:>=28 generator:comfyui") == ["forge1/lighthouse.png"]
    assert paths(indexed, "remote:forge1 generator:SwarmUI") == ["forge1/fox.png"]
    assert paths(indexed, "remote:elsewhere") == []


def test_words_filters_and_negation_combine(indexed: Catalog) -> None:
    """Words rank, filters narrow, `-` excludes words and filters alike."""
    assert paths(indexed, "forge1 -generator:comfyui -lora:fox") == ["forge1/cat.png", "forge1/tiger.png"]
    assert paths(indexed, "forge1 -cat -fox -tiger") == ["forge1/lighthouse.png"]
    assert paths(indexed, '"lighthouse at dusk"') == ["forge1/lighthouse.png"]
    assert paths(indexed, '"dusk at lighthouse"') == []
    assert paths(indexed, "lighthouse OR fox") == ["forge1/fox.png", "forge1/lighthouse.png"]


def test_dates_filter_on_when_the_file_landed(indexed: Catalog) -> None:
    """after:/before: compare with the landing (here: recording) time."""
    assert len(paths(indexed, "after:2000-01-01")) == 4
    assert paths(indexed, "before:2000-01-01") == []


def test_filters_alone_list_the_newest_first_with_a_prompt_snippet(indexed: Catalog) -> None:
    """No words: hits in recording order, newest first, each with the start of its prompt."""
    hits = indexed.search("remote:forge1", 10)
    assert hits[0].path == "forge1/cat.png"
    assert hits[0].snippet.startswith('masterpiece, a "quoted" cat')


async def test_search_filters_migration_backfills_existing_records(library: Path, db_path: Path) -> None:
    """The "search filters" migration fills seed, steps, LoRAs… from records stored before it."""
    import contextlib
    import json
    import sqlite3

    from mediasyncd.state.connection import migrate, open_connection
    from mediasyncd.state.schema import MIGRATIONS

    db_path.parent.mkdir()
    record = {"seed": 18446744073709551615, "steps": 30, "cfg": 5.5, "loras": [{"name": "a"}, {"name": "b"}]}
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        for number, script in enumerate(MIGRATIONS[:6], start=1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        conn.execute(
            "INSERT INTO media (path, sha256, record, updated_at) VALUES ('x.png', 'ab', ?, 'then')",
            (json.dumps(record),),
        )
    conn = open_connection(db_path)
    try:
        migrate(conn)
        row = conn.execute("SELECT seed, steps, cfg, loras FROM media").fetchone()
    finally:
        conn.close()
    assert row[1:] == (30, 5.5, "a\nb")
    assert row[0] is not None


def test_the_files_api_query_takes_the_same_language(indexed: Catalog, db_path: Path) -> None:
    """`Catalog.files(q=…)` (GET /api/v1/files?q=) applies words, filters and negation like search."""
    import contextlib
    import sqlite3

    from mediasyncd.state.catalog import FileQuery

    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        media = conn.execute("SELECT path, sha256 FROM media ORDER BY path").fetchall()
        for number, (path, sha) in enumerate(media):
            conn.execute(
                "INSERT INTO files (remote, root, rel, size, mtime, state, first_seen, sha256, local_path,"
                " landed_at) VALUES ('forge1', '/out', ?, 1, 0, 'processed', 0, ?, ?, ?)",
                (path.split("/", 1)[1], sha, path, 1_800_000_000 + number),
            )

    def found(q: str) -> list[str]:
        return sorted(row["library_path"] for row in indexed.files(FileQuery(q=q))[0])

    assert found("model:juggernaut -lora:detail") == ["forge1/tiger.png"]
    assert found("lighthouse steps:>20") == ["forge1/lighthouse.png"]
    assert found("after:2027-01-15T08:00:01") == [
        "forge1/fox.png",
        "forge1/lighthouse.png",
        "forge1/tiger.png",
    ]
