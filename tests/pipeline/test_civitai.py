"""Civitai JPEGs: UTF-16 UserComment in both byte orders, resources with AIR ids, hires and upscale."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples_civitai
from tests.pipeline.samples_civitai import CHECKPOINT_AIR, LORA_AIR


@pytest.mark.parametrize("byteorder", ["be", "le"])
def test_user_comment_in_either_utf16_byte_order(tmp_path: Path, byteorder: str) -> None:
    """ "UNICODE\\0" + UTF-16BE or UTF-16LE without a BOM: the same prompt, CJK intact, settings typed."""
    record = extract(samples_civitai.civitai_jpeg(tmp_path / "c.jpg", byteorder=byteorder)).record
    assert (record.generator, record.prompt, record.negative_prompt) == (
        "civitai",
        "cinematic still, a lighthouse keeper, 灯台守",
        "watermark, blurry",
    )
    assert (record.steps, record.cfg, record.seed, record.sampler, record.scheduler) == (
        30,
        4.0,
        2077001,
        "DPM++ 2M",
        "Karras",
    )


def test_resources_named_only_by_air_give_model_and_loras(tmp_path: Path) -> None:
    """Resources without names: the checkpoint and LoRA are their AIRs; the type comes from the AIR."""
    document = extract(samples_civitai.civitai_jpeg(tmp_path / "c.jpg")).record.as_json("c.jpg")
    assert document["model"] == CHECKPOINT_AIR
    assert document["loras"] == [{"name": LORA_AIR, "weight": 0.8}]
    assert document["resources"] == [
        {"type": "checkpoint", "name": None, "version": None, "weight": None, "air": CHECKPOINT_AIR},
        {"type": "lora", "name": None, "version": None, "weight": 0.8, "air": LORA_AIR},
    ]


def test_hires_variant_keeps_generation_and_pixel_sizes_apart(tmp_path: Path) -> None:
    """txt2img-hires: width/height are the Size, pixel_* the file's; the hires pass is grouped."""
    document = extract(samples_civitai.civitai_hires_jpeg(tmp_path / "h.jpg")).record.as_json("h.jpg")
    assert (document["width"], document["height"]) == (832, 1216)
    assert (document["pixel_width"], document["pixel_height"]) == (1248, 1824)
    assert document["hires"] == {
        "upscale": 1.5,
        "upscaler": "4x-UltraSharp",
        "steps": 10,
        "denoising_strength": 0.4,
        "scale": 1.5,
        "denoise": 0.4,
    }
    assert document["denoise"] is None


def test_upscale_variant_has_img2img_denoise_and_no_hires(tmp_path: Path) -> None:
    """img2img-upscale: Denoising strength without Hires keys is the record's `denoise`."""
    record = extract(samples_civitai.civitai_upscale_jpeg(tmp_path / "u.jpg")).record
    assert (record.denoise, record.hires) == (0.3, None)
    assert (record.width, record.height, record.pixel_width, record.pixel_height) == (832, 1216, 1664, 2432)
