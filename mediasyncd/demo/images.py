"""Generated images shaped like Forge/A1111 and ComfyUI outputs, with their real metadata chunks."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

SUBJECTS = [
    "a lighthouse at dusk",
    "a red fox in snow",
    "a cyberpunk alley in rain",
    "an astronaut cat",
    "a koi pond",
]
STYLES = [
    "masterpiece, best quality",
    "oil painting",
    "35mm photo, film grain",
    "watercolor",
    "studio lighting",
]
NEGATIVE = "lowres, blurry, bad anatomy, watermark, text"
MODELS = [
    ("juggernautXL_v9", "c9e3e68f89"),
    ("dreamshaper_8", "879db523c3"),
    ("sd_xl_base_1.0", "31e35c80fc"),
]
SAMPLERS = [("DPM++ 2M", "Karras"), ("Euler a", "Automatic"), ("DPM++ SDE", "Karras")]


def _pixels(rng: random.Random, size: int) -> Image.Image:
    bands = [Image.effect_noise((size, size), rng.uniform(20, 90)) for _ in range(3)]
    base = Image.merge("RGB", bands)
    tint = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    return Image.blend(base, tint, 0.35)


def a1111_parameters(rng: random.Random, seed: int, size: int) -> str:
    model, model_hash = rng.choice(MODELS)
    sampler, schedule = rng.choice(SAMPLERS)
    prompt = f"{rng.choice(SUBJECTS)}, {rng.choice(STYLES)}, <lora:add_detail:0.6>"
    return (
        f"{prompt}\nNegative prompt: {NEGATIVE}\n"
        f"Steps: {rng.choice([20, 25, 30])}, Sampler: {sampler}, Schedule type: {schedule}, "
        f"CFG scale: {rng.choice([5, 6.5, 7])}, Seed: {seed}, Size: {size}x{size}, Model hash: {model_hash}, "
        f'Model: {model}, Lora hashes: "add_detail: 7c6bad76eb54", '
        "Version: f2.0.1v1.10.1-previous-313-g8a042934"
    )


def comfyui_graph(rng: random.Random, seed: int, size: int) -> tuple[str, str]:
    model, _ = rng.choice(MODELS)
    prompt: dict[str, dict[str, Any]] = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 25, "cfg": 7.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": f"{model}.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": rng.choice(SUBJECTS), "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }  # fmt: skip
    workflow = {"last_node_id": 9, "last_link_id": 9, "nodes": [
        {"id": int(k), "type": v["class_type"], "widgets_values": list(v["inputs"].values())}
        for k, v in prompt.items()], "links": [], "version": 0.4}  # fmt: skip
    return json.dumps(prompt), json.dumps(workflow)


def write_forge_image(outputs: Path, index: int, rng: random.Random, size: int = 640) -> Path:
    seed = rng.randrange(2**32)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = outputs / "txt2img-images" / day / f"{index:05d}-{seed}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("parameters", a1111_parameters(rng, seed, size))
    _save(_pixels(rng, size), path, info)
    return path


def write_comfyui_image(output: Path, index: int, rng: random.Random, size: int = 640) -> Path:
    seed = rng.randrange(2**32)
    path = output / f"ComfyUI_{index:05d}_.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    prompt, workflow = comfyui_graph(rng, seed, size)
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", prompt)
    info.add_text("workflow", workflow)
    _save(_pixels(rng, size), path, info)
    return path


def _save(image: Image.Image, path: Path, info: PngImagePlugin.PngInfo) -> None:
    """Write under a temporary name first, as the generators themselves do not: keep the demo tidy."""
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", pnginfo=info, compress_level=1)
    tmp.rename(path)
