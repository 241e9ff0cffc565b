"""The normalization helpers every parser shares."""

from __future__ import annotations

from mediasyncd.pipeline.formats.a1111 import parse_settings
from mediasyncd.pipeline.record import (
    JSON_KEYS,
    GenerationRecord,
    Lora,
    model_name,
    prompt_loras,
    size_pair,
    split_sampler,
)


def test_model_name_drops_directories_and_weight_extensions() -> None:
    """Model names lose folders (either slash) and .safetensors-style extensions."""
    assert model_name("SDXL/juggernaut.safetensors") == "juggernaut"
    assert model_name("C:\\models\\v1-5.ckpt") == "v1-5"
    assert model_name("flux1-dev-Q8_0.gguf") == "flux1-dev-Q8_0"
    assert model_name("Pony Diffusion V6 XL") == "Pony Diffusion V6 XL"


def test_split_sampler_only_when_no_scheduler_given() -> None:
    """A scheduler suffix is split off unless the scheduler is known separately."""
    assert split_sampler("DPM++ 2M SDE Karras") == ("DPM++ 2M SDE", "Karras")
    assert split_sampler("Euler a") == ("Euler a", None)
    assert split_sampler("DPM++ 2M Karras", "Exponential") == ("DPM++ 2M Karras", "Exponential")


def test_size_pair_formats() -> None:
    """Sizes: "512x768", "1024 x 1024", "(1152, 896)" and [w, h]."""
    assert [size_pair(v) for v in ("512x768", "1024 x 1024", "(1152, 896)", [3, 4], "big")] == [
        (512, 768),
        (1024, 1024),
        (1152, 896),
        (3, 4),
        (None, None),
    ]


def test_prompt_lora_tags() -> None:
    """<lora:name:weight>, <lyco:…> with extra args, and weightless tags."""
    assert prompt_loras("a <lora:one:0.5> b <lyco:two:1:te=0.3> <lora:three>") == [
        Lora("one", 0.5),
        Lora("two", 1.0),
        Lora("three", None),
    ]


def test_settings_line_with_quoted_and_json_values() -> None:
    """Quoted values keep their commas and colons; bare JSON values are decoded."""
    settings = parse_settings(
        'Steps: 5, Lora hashes: "a: 1, b: 2", Civitai resources: [{"x": 1, "y": 2}], Seed: 7'
    )
    assert settings == {
        "Steps": "5",
        "Lora hashes": "a: 1, b: 2",
        "Civitai resources": [{"x": 1, "y": 2}],
        "Seed": "7",
    }


def test_json_document_has_every_key_in_order() -> None:
    """as_json always has every contract key, in order, null when unknown."""
    document = GenerationRecord().as_json("p")
    assert tuple(document) == JSON_KEYS
    assert document["loras"] == [] and document["raw"] == {} and document["hires"] is None


def test_json_round_trip() -> None:
    """A record survives as_json -> from_json unchanged (the state DB stores it that way)."""
    record = GenerationRecord(
        generator="forge", steps=3, cfg=1.5, loras=(Lora("x", 0.5),), raw={"k": "v"}, hires={"upscale": 2.0}
    )
    assert GenerationRecord.from_json(record.as_json("p")) == record
