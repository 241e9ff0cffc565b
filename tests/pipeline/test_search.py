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

    assert catalog._search('"灯台"', 10) == []  # what FTS5 alone finds
    hits = catalog.search("灯台", 10)
    assert [hit.path for hit in hits] == ["forge1/jp.png"]
    assert hits[0].snippet == "夕暮れの[灯台]と海、傑作"
    assert [hit.path for hit in catalog.search("ぼやけ", 10)] == ["forge1/jp.png"]
    assert [hit.path for hit in catalog.search("灯台 海", 10)] == ["forge1/jp.png"]
    assert [hit.path for hit in catalog.search("模型", 10)] == ["forge1/jp.png"]
    assert catalog.search("灯台 山", 10) == []
    assert [hit.path for hit in catalog.search("cat", 10)] == ["forge1/cat.png"]
