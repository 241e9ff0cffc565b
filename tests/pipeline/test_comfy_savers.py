"""ComfyUI custom savers in PNG, JPEG and WebP, graphs wired through primitive nodes, TensorArt's -1 seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mediasyncd.pipeline.metadata import extract
from mediasyncd.pipeline.record import GenerationRecord, Lora
from tests.pipeline import samples
from tests.pipeline import samples_comfy_savers as savers
from tests.pipeline.samples_comfy_savers import NEGATIVE, POSITIVE

EXPECTED = {
    "generator": "comfyui",
    "prompt": POSITIVE,
    "negative_prompt": NEGATIVE,
    "model": "juggernautXL_v9",
    "sampler": "dpmpp_2m",
    "scheduler": "karras",
    "steps": 32,
    "cfg": 6.0,
    "seed": 445566778899,
    "width": 1024,
    "height": 1024,
}


def fields(record: GenerationRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in EXPECTED}


SAVERS: list[tuple[str, Callable[[Path, str], Path], str]] = [
    ("comfy-image-saver", savers.comfy_image_saver, "png"),
    ("comfy-image-saver", savers.comfy_image_saver, "jpeg"),
    ("comfy-image-saver", savers.comfy_image_saver, "webp"),
    ("save-image-with-metadata", savers.save_image_with_metadata, "png"),
    ("save-image-with-metadata", savers.save_image_with_metadata, "jpeg"),
    ("save-image-with-metadata", savers.save_image_with_metadata, "webp"),
    ("save-image-extended", savers.save_image_extended, "png"),
    ("save-image-extended", savers.save_image_extended, "jpg"),
    ("save-image-extended", savers.save_image_extended, "webp"),
    ("comfyroll", savers.comfyroll_output, "png"),
    ("save-image-plus", savers.save_image_plus, "PNG"),
    ("save-image-plus", savers.save_image_plus, "JPEG"),
    ("save-image-plus", savers.save_image_plus, "WEBP (lossy)"),
    ("save-image-plus", savers.save_image_plus, "WEBP (lossless)"),
    ("layerstyle-save-image-plus", savers.layerstyle_save_image_plus, "png"),
]

_SUFFIX = {"PNG": "png", "JPEG": "jpg", "WEBP (lossy)": "webp", "WEBP (lossless)": "webp"}


@pytest.mark.parametrize(("saver", "build", "extension"), SAVERS)
def test_every_saver_and_format_gives_the_same_record(
    tmp_path: Path, saver: str, build: Callable[[Path, str], Path], extension: str
) -> None:
    """Prompt, negative, model, sampler/scheduler, steps, CFG, seed and size agree across savers."""
    suffix = _SUFFIX.get(extension, extension)
    extraction = extract(build(tmp_path / f"{saver}.{suffix}", extension))
    assert extraction.error is None
    assert fields(extraction.record) == EXPECTED


def test_graph_loras_join_a_savers_text(tmp_path: Path) -> None:
    """A PNG with both the saver's text and the graph: the LoRA comes from the graph's LoraLoader."""
    record = extract(savers.comfy_image_saver(tmp_path / "s.png", "png")).record
    assert record.loras == (Lora("add-detail-xl", 0.6),)
    assert record.model_hash == "1a2b3c4d5e"


@pytest.mark.parametrize("file_format", ["jpg", "webp"])
def test_comfyroll_jpeg_and_webp_carry_nothing_and_read_as_plain_images(
    tmp_path: Path, file_format: str
) -> None:
    """CR Image Output's JPEG/WebP hold no metadata: no error, no generator, pixel size only."""
    extraction = extract(savers.comfyroll_output(tmp_path / f"cr.{file_format}", file_format))
    assert extraction.error is None and not extraction.record.has_metadata
    assert (extraction.record.pixel_width, extraction.record.pixel_height) == (64, 64)


def test_layerstyle_save_image_plus_jpg_carries_nothing(tmp_path: Path) -> None:
    """LayerUtility: SaveImage Plus saves "jpg" with `quality` only: a plain image, no error."""
    extraction = extract(savers.layerstyle_save_image_plus(tmp_path / "ls.jpg", "jpg"))
    assert extraction.error is None and not extraction.record.has_metadata
    assert extraction.format == "JPEG"


def test_save_image_plus_keeps_the_workflow_in_raw(tmp_path: Path) -> None:
    """Save Image Plus's JPEG UserComment JSON: the graph is read and the workflow kept verbatim."""
    record = extract(savers.save_image_plus(tmp_path / "p.jpg", "JPEG")).record
    assert record.loras == (Lora("add-detail-xl", 0.6),)
    assert '"SaveImagePlus"' in record.raw["UserComment"] and '"last_node_id"' in record.raw["UserComment"]


def test_tensorart_seed_minus_one_is_replaced_by_the_graphs_seed(tmp_path: Path) -> None:
    """TensorArt writes seed -1 in generation_data; the graph's seed is the one used."""
    record = extract(savers.tensorart_with_graph(tmp_path / "t.png")).record
    assert (record.generator, record.seed, record.steps) == ("tensorart", 445566778899, 32)
    assert record.loras == (Lora("add-detail-xl", 0.6),)


def test_text_joiners_and_wildcards_give_the_encoded_prompt(tmp_path: Path) -> None:
    """WAS Text Concatenate joins text_a/text_b with its delimiter; Impact's wildcard processor encodes its
    populated_text (not the wildcard) — sources cited in bench/corpus_comfy.py."""
    graph = savers.literal_graph()
    graph["46"] = {"class_type": "Text Multiline", "inputs": {"text": " a glass teapot\n"}}
    graph["47"] = {
        "class_type": "Text Concatenate",
        "inputs": {"delimiter": " | ", "clean_whitespace": "true", "text_a": ["46", 0], "text_b": ["49", 0]},
    }
    graph["49"] = {"class_type": "Text Multiline", "inputs": {"text": "morning light"}}
    graph["48"] = {
        "class_type": "ImpactWildcardProcessor",
        "inputs": {"wildcard_text": "__bad__", "populated_text": "lowres, watermark", "mode": "fixed"},
    }
    path = samples.comfyui_png(tmp_path / "w.png", graph)
    record = extract(path).record
    assert (record.prompt, record.negative_prompt) == ("a glass teapot | morning light", "lowres, watermark")


def test_primitive_nodes_and_reroutes_feed_the_checkpoint_and_seed(tmp_path: Path) -> None:
    """Core PrimitiveString/PrimitiveInt (comfy_extras/nodes_primitive.py) reached through pysssss's
    ReroutePrimitive (value in, value out): the checkpoint name and the seed are the primitives' values."""
    graph = savers.literal_graph()
    graph["4"]["inputs"]["ckpt_name"] = ["61", 0]
    graph["60"] = {"class_type": "PrimitiveString", "inputs": {"value": "sdxl/zavychroma_v10.safetensors"}}
    graph["61"] = {"class_type": "ReroutePrimitive|pysssss", "inputs": {"value": ["60", 0]}}
    graph["62"] = {"class_type": "PrimitiveInt", "inputs": {"value": 99887766}}
    graph["63"] = {"class_type": "ReroutePrimitive|pysssss", "inputs": {"value": ["62", 0]}}
    graph["3"]["inputs"]["seed"] = ["63", 0]
    record = extract(samples.comfyui_png(tmp_path / "r.png", graph)).record
    assert (record.model, record.seed, record.steps) == ("zavychroma_v10", 99887766, 32)
