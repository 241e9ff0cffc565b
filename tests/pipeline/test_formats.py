"""Every supported tool's metadata, as that tool writes it, becomes the same normalized record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediasyncd.pipeline.metadata import extract
from tests.pipeline import samples, samples_apps


def read(builder: Callable[[Path], Path], tmp_path: Path, suffix: str = ".png") -> dict[str, Any]:
    extraction = extract(builder(tmp_path / f"image{suffix}"))
    assert extraction.error is None
    return extraction.record.as_json("image", None)


def test_forge_itxt_parameters_are_read_verbatim(tmp_path: Path) -> None:
    """Forge's iTXt `parameters`: multi-line prompt and negative prompt verbatim, settings typed."""
    record = read(samples.forge_png, tmp_path)
    assert record["generator"] == "forge"
    assert record["generator_version"] == "f2.0.1v1.10.1-previous-633-ge073e4ec"
    assert record["prompt"] == samples.PROMPT + "\nwith a second prompt line"
    assert record["negative_prompt"] == samples.NEGATIVE
    assert (record["steps"], record["cfg"], record["seed"]) == (28, 6.5, 3141592653)
    assert (record["sampler"], record["scheduler"]) == ("DPM++ 2M", "Karras")
    assert (record["model"], record["model_hash"]) == ("juggernautXL_v9Rundiffusionphoto2", "1449e5b0b9")
    assert (record["width"], record["height"]) == (832, 1216)


def test_forge_hires_settings_are_grouped(tmp_path: Path) -> None:
    """Hires upscale, steps, upscaler and denoising strength form the `hires` object."""
    record = read(samples.forge_png, tmp_path)
    assert record["hires"] == {
        "upscale": 1.5,
        "upscaler": "4x-UltraSharp",
        "steps": 12,
        "denoising_strength": 0.35,
        "scale": 1.5,
        "denoise": 0.35,
    }


def test_a1111_loras_come_from_prompt_tags_and_quoted_hashes(tmp_path: Path) -> None:
    """LoRAs: weights from <lora:…> tags, names also from the quoted `Lora hashes` value."""
    record = read(samples.forge_png, tmp_path)
    assert record["loras"] == [
        {"name": "detail_tweaker", "weight": 0.8},
        {"name": "add_more", "weight": None},
    ]


def test_a1111_jpeg_user_comment_utf16(tmp_path: Path) -> None:
    """A1111 JPEG: EXIF UserComment in its UNICODE (UTF-16) form, CJK and emoji intact."""
    record = read(samples.a1111_jpeg, tmp_path, ".jpg")
    assert record["generator"] == "automatic1111"
    assert record["generator_version"] == "v1.10.1"
    assert "猫, 🐱" in record["prompt"]
    assert record["raw"]["UserComment"].startswith(samples.PROMPT)


def test_old_a1111_combined_sampler_name_is_split(tmp_path: Path) -> None:
    """ "DPM++ 2M Karras" without a Schedule type splits into sampler and scheduler."""
    text = "a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 5, Size: 512x512, Model: sd15"
    record = read(lambda p: samples.png(p, text={"parameters": text}), tmp_path)
    assert (record["sampler"], record["scheduler"], record["negative_prompt"]) == ("DPM++ 2M", "Karras", None)


def test_reforge_forge_neo_and_sdnext_are_told_apart(tmp_path: Path) -> None:
    """The Version / App keys identify reForge, Forge Neo and SD.Next."""
    found = [
        read(builder, tmp_path)["generator"]
        for builder in (samples.reforge_png, samples.forge_neo_png, samples.sdnext_png)
    ]
    assert found == ["reforge", "forge-neo", "sdnext"]


def test_civitai_resources_give_model_and_loras(tmp_path: Path) -> None:
    """Civitai: the checkpoint and LoRA weights come from the `Civitai resources` JSON."""
    record = read(samples_apps.civitai_jpeg, tmp_path, ".jpg")
    assert record["generator"] == "civitai"
    assert record["model"] == "Pony Diffusion V6 XL"
    assert record["loras"] == [{"name": "Glowing Runes", "weight": 0.65}]
    assert (record["width"], record["height"], record["seed"]) == (832, 1216, 123456789)


def test_comfyui_graph_is_walked_through_custom_nodes(tmp_path: Path) -> None:
    """ComfyUI: sampler -> custom mixer -> encoders -> custom text node gives the prompt."""
    record = read(samples.comfyui_png, tmp_path)
    assert record["generator"] == "comfyui"
    assert record["prompt"] == "a lighthouse at dusk, 灯台\nvolumetric fog"
    assert record["negative_prompt"] == "blurry, text"


def test_comfyui_model_loras_and_settings(tmp_path: Path) -> None:
    """ComfyUI: checkpoint through the LoRA loader, base-pass settings, latent size."""
    record = read(samples.comfyui_png, tmp_path)
    assert (record["model"], record["loras"]) == ("sd_xl_base_1.0", [{"name": "pixel_art", "weight": 0.7}])
    assert (record["sampler"], record["scheduler"], record["steps"]) == ("dpmpp_2m", "karras", 30)
    assert (record["cfg"], record["seed"], record["width"], record["height"]) == (5.5, 987654321, 1024, 768)


def test_comfyui_second_pass_is_reported_as_hires(tmp_path: Path) -> None:
    """ComfyUI: a sampler fed by a latent upscale is the hires pass."""
    record = read(samples.comfyui_png, tmp_path)
    assert record["hires"] == {
        "upscale": 1.5,
        "upscaler": "nearest-exact",
        "steps": 15,
        "denoising_strength": 0.45,
        "scale": 1.5,
        "denoise": 0.45,
    }


def test_comfyui_raw_keeps_prompt_and_workflow(tmp_path: Path) -> None:
    """ComfyUI: `raw` holds both the API graph and the UI workflow text verbatim."""
    path = samples.comfyui_png(tmp_path / "c.png")
    raw = extract(path).record.raw
    assert set(raw) == {"prompt", "workflow"}
    assert json.loads(raw["workflow"]) == samples.comfyui_workflow()


def test_comfyui_webp_exif_tags(tmp_path: Path) -> None:
    """ComfyUI animated WebP: the graph in EXIF Model as "prompt:{…}"."""
    record = read(samples.comfyui_webp, tmp_path, ".webp")
    assert (record["generator"], record["seed"]) == ("comfyui", 987654321)


def test_comfyui_unknown_custom_nodes_degrade_gracefully(tmp_path: Path) -> None:
    """A graph whose encoders are unrecognizable still yields the sampler settings, prompt None."""
    graph = {
        "1": {"class_type": "MysteryLoader", "inputs": {"thing": 3}},
        "2": {
            "class_type": "MysterySampler",
            "inputs": {
                "seed": 9,
                "steps": 12,
                "sampler_name": "euler",
                "positive": ["1", 0],
                "negative": ["99", 0],
            },
        },
    }
    record = read(lambda p: samples.comfyui_png(p, graph), tmp_path)
    assert (record["generator"], record["prompt"], record["steps"], record["seed"]) == (
        "comfyui",
        None,
        12,
        9,
    )


def test_swarmui_png_and_jpeg(tmp_path: Path) -> None:
    """SwarmUI: sui_image_params from a PNG text chunk and from a JPEG UserComment alike."""
    png = read(samples_apps.swarmui_png, tmp_path)
    jpg = read(samples_apps.swarmui_jpeg, tmp_path, ".jpg")
    assert png["generator"] == jpg["generator"] == "swarmui"
    assert png["model"] == "flux1-dev-fp8"
    assert {k: v for k, v in png.items() if k != "raw"} == {k: v for k, v in jpg.items() if k != "raw"}


def test_invokeai_metadata(tmp_path: Path) -> None:
    """InvokeAI 3+: invokeai_metadata, with "_k" schedulers split into Karras."""
    record = read(samples_apps.invokeai_png, tmp_path)
    assert (record["generator"], record["generator_version"]) == ("invokeai", "5.4.2")
    assert (record["sampler"], record["scheduler"], record["model"]) == (
        "dpmpp_2m",
        "karras",
        "juggernautXL_v9",
    )
    assert record["loras"] == [{"name": "castle_lora", "weight": 0.75}]


def test_invokeai_legacy_sd_metadata(tmp_path: Path) -> None:
    """InvokeAI 2.x: sd-metadata with the negative prompt in brackets."""
    record = read(samples_apps.invokeai_legacy_png, tmp_path)
    assert (record["prompt"], record["negative_prompt"]) == ("a watercolor harbor", "people, boats")


def test_fooocus(tmp_path: Path) -> None:
    """Fooocus: JSON parameters with resolution tuple and lora_combined entries."""
    record = read(samples_apps.fooocus_png, tmp_path)
    assert (record["generator"], record["width"], record["height"], record["cfg"]) == (
        "fooocus",
        1152,
        896,
        4.0,
    )
    assert record["loras"] == [{"name": "sd_xl_offset_example-lora_1.0", "weight": 0.1}]


def test_ruined_fooocus(tmp_path: Path) -> None:
    """RuinedFooocus: its own JSON keys, told apart from Fooocus by `software`."""
    record = read(samples_apps.ruined_fooocus_png, tmp_path)
    assert (record["generator"], record["prompt"], record["negative_prompt"]) == (
        "ruinedfooocus",
        "a paper boat",
        "rain",
    )


def test_novelai(tmp_path: Path) -> None:
    """NovelAI: Description + Comment JSON; Source splits into model name and hash."""
    record = read(samples_apps.novelai_png, tmp_path)
    assert (record["model"], record["model_hash"]) == ("NovelAI Diffusion V3", "4BDE2A90")
    assert (record["negative_prompt"], record["cfg"], record["seed"]) == (
        "lowres, bad hands",
        5.0,
        2718281828,
    )


def test_easy_diffusion(tmp_path: Path) -> None:
    """Easy Diffusion: one text chunk per field; Windows model path reduced to the name."""
    record = read(samples_apps.easy_diffusion_png, tmp_path)
    assert (record["generator"], record["model"], record["steps"]) == ("easydiffusion", "dreamshaper_8", 25)
    assert record["loras"] == [{"name": "cabin_v1", "weight": 0.5}]


def test_tensorart_utf8_in_text_chunk(tmp_path: Path) -> None:
    """TensorArt: generation_data with raw UTF-8 in a tEXt chunk decodes correctly."""
    record = read(samples_apps.tensorart_png, tmp_path)
    assert (record["generator"], record["prompt"], record["model"]) == (
        "tensorart",
        "夜の東京, neon rain",
        "AnythingXL_v1",
    )


def test_stability_matrix(tmp_path: Path) -> None:
    """Stability Matrix: parameters-json preferred over its A1111 text."""
    record = read(samples_apps.stability_matrix_png, tmp_path)
    assert (record["generator"], record["sampler"], record["model"]) == (
        "stabilitymatrix",
        "euler_ancestral",
        "dreamshaper_8",
    )
    assert set(record["raw"]) == {"parameters", "parameters-json", "smproj"}


def test_draw_things_xmp(tmp_path: Path) -> None:
    """Draw Things: settings JSON inside the embedded XMP's exif:UserComment."""
    record = read(samples_apps.drawthings_png, tmp_path)
    assert (record["generator"], record["prompt"], record["width"], record["height"]) == (
        "drawthings",
        "a koi pond, ukiyo-e",
        768,
        512,
    )
    assert (record["sampler"], record["scheduler"]) == ("DPM++ 2M", "Karras")


def test_hugging_face_space(tmp_path: Path) -> None:
    """A Gradio + diffusers Space: diffusers argument names and "1024 x 1024" resolution."""
    record = read(samples_apps.hf_space_png, tmp_path)
    assert (record["generator"], record["steps"], record["width"], record["model"]) == (
        "huggingface-spaces",
        28,
        1024,
        "Animagine XL 3.1",
    )


def test_image_without_metadata_has_pixel_size_only(tmp_path: Path) -> None:
    """A plain image: no error, generator None, size from the pixels."""
    extraction = extract(samples.png(tmp_path / "plain.png", size=(30, 20)))
    record = extraction.record.as_json("plain.png")
    assert (extraction.error, extraction.summary) == (None, "no metadata")
    assert (record["generator"], record["prompt"], record["width"], record["height"]) == (None, None, 30, 20)
