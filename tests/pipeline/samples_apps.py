"""Images as the JSON-writing tools write them (SwarmUI, InvokeAI, Fooocus, RuinedFooocus, NovelAI, Easy
Diffusion, TensorArt, Stability Matrix, Civitai, Draw Things, Hugging Face Spaces); the image builders and
the A1111/ComfyUI samples are in `samples`. Every builder writes to `path` and returns it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.pipeline.samples import insert_chunk, jpeg, png, unicode_comment


def swarmui_params() -> dict[str, Any]:
    return {
        "sui_image_params": {
            "prompt": "a red fox in snow",
            "negativeprompt": "cartoon",
            "model": "Flux/flux1-dev-fp8",
            "seed": 305223794,
            "steps": 25,
            "cfgscale": 1.0,
            "aspectratio": "1:1",
            "width": 1024,
            "height": 1024,
            "sampler": "euler",
            "scheduler": "normal",
            "loras": ["fox_style"],
            "loraweights": ["0.6"],
            "swarm_version": "0.9.1.1",
            "date": "2024-08-07",
        },
        "sui_extra_data": {"date": "2024-08-07", "prep_time": "0.01 sec", "generation_time": "70.70 sec"},
    }


def swarmui_png(path: Path) -> Path:
    """SwarmUI: a `parameters` text chunk holding indented JSON."""
    return png(path, text={"parameters": json.dumps(swarmui_params(), indent=2)})


def swarmui_jpeg(path: Path) -> Path:
    return jpeg(path, user_comment=unicode_comment(json.dumps(swarmui_params(), indent=2)))


def invokeai_png(path: Path) -> Path:
    """InvokeAI 3/4/5: tEXt `invokeai_metadata` (settings) and `invokeai_graph`."""
    metadata = {
        "generation_mode": "sdxl_txt2img",
        "positive_prompt": "a castle on a hill",
        "negative_prompt": "people",
        "width": 1024,
        "height": 1024,
        "seed": 42,
        "rand_device": "cpu",
        "cfg_scale": 7.5,
        "steps": 30,
        "scheduler": "dpmpp_2m_k",
        "app_version": "5.4.2",
        "model": {
            "key": "a1b2",
            "hash": "blake3:abcdef",
            "name": "juggernautXL_v9",
            "base": "sdxl",
            "type": "main",
        },
        "loras": [
            {
                "model": {"key": "c3", "hash": "blake3:0123", "name": "castle_lora", "base": "sdxl"},
                "weight": 0.75,
            }
        ],
    }
    return png(
        path, text={"invokeai_metadata": json.dumps(metadata), "invokeai_graph": json.dumps({"id": "g"})}
    )


def invokeai_legacy_png(path: Path) -> Path:
    """InvokeAI 2.x: tEXt `sd-metadata` with the negative prompt in [brackets] and a `Dream` command line."""
    metadata = {
        "model": "stable diffusion",
        "model_weights": "stable-diffusion-1.5",
        "model_hash": "cc6cb27103",
        "app_id": "invoke-ai/InvokeAI",
        "app_version": "2.3.5",
        "image": {
            "prompt": [{"prompt": "a watercolor harbor [people, boats]", "weight": 1.0}],
            "steps": 50,
            "cfg_scale": 7.5,
            "threshold": 0,
            "perlin": 0,
            "height": 512,
            "width": 512,
            "seed": 1234,
            "type": "txt2img",
            "sampler": "k_lms",
            "postprocessing": None,
            "variations": [],
        },
    }
    dream = '"a watercolor harbor [people, boats]" -s 50 -S 1234 -W 512 -H 512 -C 7.5 -A k_lms'
    return png(path, text={"sd-metadata": json.dumps(metadata), "Dream": dream})


def fooocus_png(path: Path) -> Path:
    """Fooocus 2.5 (fooocus scheme): `parameters` JSON and `fooocus_scheme`."""
    data = {
        "adm_guidance": "(1.5, 0.8, 0.3)",
        "base_model": "juggernautXL_v8Rundiffusion.safetensors",
        "base_model_hash": "aeb7e9e689",
        "full_negative_prompt": ["unrealistic"],
        "full_prompt": ["a tiger"],
        "guidance_scale": 4,
        "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
        "loras": [["sd_xl_offset_example-lora_1.0.safetensors", 0.1, "4852686128"]],
        "metadata_scheme": "fooocus",
        "negative_prompt": "unrealistic",
        "performance": "Speed",
        "prompt": "a tiger",
        "prompt_expansion": "a tiger, intricate",
        "refiner_model": "None",
        "refiner_switch": 0.5,
        "resolution": "(1152, 896)",
        "sampler": "dpmpp_2m_sde_gpu",
        "scheduler": "karras",
        "seed": "1234567890",
        "sharpness": 2,
        "steps": 30,
        "styles": "['Fooocus V2']",
        "vae": "Default (model)",
        "version": "Fooocus v2.5.5",
    }
    return png(path, text={"parameters": json.dumps(data), "fooocus_scheme": "fooocus"})


def ruined_fooocus_png(path: Path) -> Path:
    """RuinedFooocus: `parameters` JSON with "software": "RuinedFooocus"."""
    data = {
        "Prompt": "a paper boat",
        "Negative": "rain",
        "steps": 30,
        "cfg": 8.0,
        "width": 1152,
        "height": 896,
        "seed": 777,
        "sampler_name": "dpmpp_2m_sde_gpu",
        "scheduler": "karras",
        "base_model_name": "sd_xl_base_1.0_0.9vae.safetensors",
        "base_model_hash": "e6bb9ea85b",
        "loras": [["origami.safetensors", 0.5]],
        "start_step": 0,
        "denoise": None,
        "clip_skip": 1,
        "software": "RuinedFooocus",
    }
    return png(path, text={"parameters": json.dumps(data)})


def novelai_png(path: Path) -> Path:
    """NovelAI: tEXt Title, Description (prompt), Software, Source (model + hash), Generation time, Comment."""
    comment = {
        "prompt": "1girl, library, reading",
        "steps": 28,
        "height": 1216,
        "width": 832,
        "scale": 5.0,
        "uncond_scale": 0.0,
        "cfg_rescale": 0.0,
        "seed": 2718281828,
        "n_samples": 1,
        "noise_schedule": "native",
        "sampler": "k_euler_ancestral",
        "uc": "lowres, bad hands",
        "request_type": "PromptGenerateRequest",
    }
    return png(
        path,
        text={
            "Title": "NovelAI generated image",
            "Description": "1girl, library, reading",
            "Software": "NovelAI",
            "Source": "NovelAI Diffusion V3 4BDE2A90",
            "Generation time": "5.1",
            "Comment": json.dumps(comment),
        },
    )


def easy_diffusion_png(path: Path) -> Path:
    """Easy Diffusion: one tEXt chunk per field, named like its UI labels."""
    return png(
        path,
        text={
            "Prompt": "a cozy cabin",
            "Negative Prompt": "snow",
            "Seed": "1919",
            "Stable Diffusion model": "C:\\models\\stable-diffusion\\dreamshaper_8.safetensors",
            "Clip Skip": "False",
            "VAE model": "",
            "Sampler": "euler_a",
            "Width": "512",
            "Height": "768",
            "Steps": "25",
            "Guidance Scale": "7.5",
            "LoRA model": "cabin_v1",
            "LoRA Strength": "0.5",
        },
    )


def tensorart_png(path: Path) -> Path:
    """TensorArt: tEXt `generation_data` JSON, raw UTF-8 despite tEXt being Latin-1, NUL-terminated."""
    data = {
        "prompt": "夜の東京, neon rain",
        "negativePrompt": "daylight",
        "width": 768,
        "height": 1152,
        "imageCount": 1,
        "samplerName": "DPM++ 2M Karras",
        "steps": 25,
        "cfgScale": 7,
        "seed": "1122334455",
        "clipSkip": 2,
        "baseModel": {
            "modelFileId": "6001",
            "modelFileName": "AnythingXL_v1.safetensors",
            "hash": "8421598E93",
        },
        "models": [{"modelFileId": "7002", "modelFileName": "neon_city", "weight": 0.9, "type": "LORA"}],
    }
    path = png(path)
    return insert_chunk(
        path,
        b"tEXt",
        b"generation_data\0" + json.dumps(data, ensure_ascii=False).encode() + b"\0",
        before=b"IDAT",
    )


def stability_matrix_png(path: Path) -> Path:
    """Stability Matrix Inference: A1111 `parameters`, `parameters-json` and `smproj`."""
    params = {
        "PositivePrompt": "a glass teapot",
        "NegativePrompt": "cracks",
        "Steps": 20,
        "Sampler": "euler_ancestral",
        "Scheduler": "normal",
        "CfgScale": 7.0,
        "Seed": 8080,
        "Width": 768,
        "Height": 768,
        "ModelName": "dreamshaper_8.safetensors",
        "ModelHash": "879db523c3",
    }
    a1111 = "a glass teapot\nNegative prompt: cracks\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 8080, Size: 768x768"
    return png(
        path,
        text={"parameters": a1111, "parameters-json": json.dumps(params), "smproj": json.dumps({"v": 1})},
    )


def civitai_jpeg(path: Path) -> Path:
    """Civitai's on-site generator: A1111 text with `Civitai resources` / `Civitai metadata` in UserComment."""
    resources = [
        {
            "type": "checkpoint",
            "modelVersionId": 290640,
            "modelName": "Pony Diffusion V6 XL",
            "modelVersionName": "V6",
        },
        {"type": "lora", "weight": 0.65, "modelVersionId": 111, "modelName": "Glowing Runes"},
    ]
    text = (
        "score_9, glowing runes on a stone door\nNegative prompt: blurry\n"
        "Steps: 25, CFG scale: 7, Sampler: Euler a, Seed: 123456789, Size: 832x1216, Clip skip: 2, "
        f"Created Date: 2024-06-01T10:00:00.0000000Z, Civitai resources: {json.dumps(resources)}, "
        'Civitai metadata: {"remixOfId": 1}'
    )
    return jpeg(path, user_comment=unicode_comment(text))


def drawthings_png(path: Path) -> Path:
    """Draw Things: an XMP packet (iTXt XML:com.adobe.xmp) with the settings JSON in exif:UserComment."""
    settings = {
        "c": "a koi pond, ukiyo-e",
        "uc": "photo",
        "sampler": "DPM++ 2M Karras",
        "steps": 20,
        "scale": 4.5,
        "seed": 3003,
        "size": "768x512",
        "model": "sd_xl_base_1.0_f16.ckpt",
        "strength": 1,
        "lora": [{"file": "ukiyoe_lora_f16.ckpt", "weight": 0.8}],
    }
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 6.0.0"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f'<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">{_xml(json.dumps(settings))}</rdf:li></rdf:Alt>'
        "</exif:UserComment><xmp:CreatorTool>Draw Things</xmp:CreatorTool><dc:description><rdf:Alt>"
        '<rdf:li xml:lang="x-default">a koi pond, ukiyo-e</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    return png(path, itxt={"XML:com.adobe.xmp": xmp})


def hf_space_png(path: Path) -> Path:
    """A Gradio + diffusers Space: `parameters` JSON with diffusers argument names."""
    data = {
        "prompt": "an astronaut riding a horse",
        "negative_prompt": "",
        "resolution": "1024 x 1024",
        "guidance_scale": 5.0,
        "num_inference_steps": 28,
        "style_preset": "(No style)",
        "seed": 2024,
        "sampler": "DPM++ 2M SDE Karras",
        "Model": "Animagine XL 3.1",
        "Model hash": "e3c47aedb0",
    }
    return png(path, text={"parameters": json.dumps(data)})


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


MIDJOURNEY_JOB = "a7421d2f-b262-44f9-977c-ac23e9c7d3e3"


def midjourney_png(path: Path, description: str) -> Path:
    """midjourney.com downloads (closed source; the layout exiftool shows on them): tEXt `Description` =
    "<prompt> <--parameters> Job ID: <uuid>", `Author` (the user), `Creation Time`."""
    return png(
        path,
        text={
            "Description": f"{description} Job ID: {MIDJOURNEY_JOB}",
            "Author": "someone",
            "Creation Time": "Mon, 30 Nov 2026 10:00:00 GMT",
        },
        size=(112, 63),
    )
