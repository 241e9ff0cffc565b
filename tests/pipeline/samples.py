"""Images shaped exactly as each tool writes them (chunk type, key names, JSON layout), built with Pillow
at test time, plus hostile files. Every builder writes to `path` and returns it.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286

PROMPT = 'masterpiece, a "quoted" cat <on> a mat & more, 猫, 🐱, <lora:detail_tweaker:0.8>'
NEGATIVE = "lowres, bad anatomy, (worst quality:1.4)"

FORGE_PARAMETERS = (
    f"{PROMPT}\n"
    "with a second prompt line\n"
    f"Negative prompt: {NEGATIVE}\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    "Size: 832x1216, Model hash: 1449e5b0b9, Model: juggernautXL_v9Rundiffusionphoto2, "
    "Denoising strength: 0.35, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: 4x-UltraSharp, "
    'Lora hashes: "detail_tweaker: 7c6ab1fe4, add_more: 0d1f2e3c", Version: f2.0.1v1.10.1-previous-633-ge073e4ec'
)


def solid(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 120, 40)) -> Image.Image:
    return Image.new("RGB", size, color)


def png(
    path: Path,
    *,
    text: dict[str, str] | None = None,
    itxt: dict[str, str] | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)  # tEXt (Pillow switches to iTXt for non-Latin-1 text)
    for key, value in (itxt or {}).items():
        info.add_itxt(key, value)
    solid(size).save(path, "PNG", pnginfo=info)
    return path


def _exif(user_comment: bytes | None = None, **ifd0: str) -> Image.Exif:
    exif = Image.Exif()
    tags = {"ImageDescription": 0x010E, "Make": 0x010F, "Model": 0x0110, "Software": 0x0131}
    for name, value in ifd0.items():
        exif[tags[name]] = value
    if user_comment is not None:
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment
    return exif


def unicode_comment(text: str, byteorder: str = "be") -> bytes:
    return b"UNICODE\0" + text.encode("utf-16-be" if byteorder == "be" else "utf-16-le")


def jpeg(path: Path, *, user_comment: bytes | None = None, xmp: str | None = None, **ifd0: str) -> Path:
    extra: dict[str, Any] = {"exif": _exif(user_comment, **ifd0)}
    if xmp is not None:
        extra["xmp"] = xmp.encode()
    solid().save(path, "JPEG", quality=80, **extra)
    return path


def webp(path: Path, *, user_comment: bytes | None = None, **ifd0: str) -> Path:
    solid().save(path, "WEBP", exif=_exif(user_comment, **ifd0))
    return path


# -- tools ---------------------------------------------------------------------------------------------------


def forge_png(path: Path) -> Path:
    """Forge 2.x: `parameters` as an iTXt chunk, like current A1111/Forge."""
    return png(path, itxt={"parameters": FORGE_PARAMETERS})


def a1111_jpeg(
    path: Path, text: str = FORGE_PARAMETERS.replace("f2.0.1v1.10.1-previous-633-ge073e4ec", "v1.10.1")
) -> Path:
    """A1111 JPEG: EXIF UserComment, "UNICODE" prefix + UTF-16BE (piexif's UserComment.dump)."""
    return jpeg(path, user_comment=unicode_comment(text))


def comfyui_graph() -> dict[str, Any]:
    """txt2img + latent-upscale hires pass; a custom mixer node and a custom text node sit in the prompt path."""
    return {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "SDXL/sd_xl_base_1.0.safetensors"},
        },
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": "styles/pixel_art.safetensors",
                "strength_model": 0.7,
                "strength_clip": 0.7,
                "model": ["4", 0],
                "clip": ["4", 1],
            },
        },
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "20": {"class_type": "Text Multiline", "inputs": {"text": "a lighthouse at dusk, 灯台"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["20", 0], "clip": ["10", 1]}},
        "21": {"class_type": "CLIPTextEncode", "inputs": {"text": "volumetric fog", "clip": ["10", 1]}},
        "22": {
            "class_type": "CR Conditioning Mixer",
            "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["21", 0], "mix_factor": 0.5},
        },
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, text", "clip": ["10", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 987654321,
                "steps": 30,
                "cfg": 5.5,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "denoise": 1.0,
                "model": ["10", 0],
                "positive": ["22", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "11": {
            "class_type": "LatentUpscaleBy",
            "inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5, "samples": ["3", 0]},
        },
        "12": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 987654321,
                "steps": 15,
                "cfg": 5.5,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "denoise": 0.45,
                "model": ["10", 0],
                "positive": ["22", 0],
                "negative": ["7", 0],
                "latent_image": ["11", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["12", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


def comfyui_workflow() -> dict[str, Any]:
    return {
        "last_node_id": 22,
        "last_link_id": 30,
        "nodes": [{"id": 3, "type": "KSampler"}],
        "links": [],
        "version": 0.4,
    }


def comfyui_png(path: Path, graph: dict[str, Any] | None = None) -> Path:
    """ComfyUI SaveImage: tEXt `prompt` (API graph) and `workflow` (UI graph), json.dumps'd."""
    return png(
        path,
        text={"prompt": json.dumps(graph or comfyui_graph()), "workflow": json.dumps(comfyui_workflow())},
    )


def comfyui_webp(path: Path) -> Path:
    """ComfyUI SaveAnimatedWEBP: EXIF Model = "prompt:{…}", Make = "workflow:{…}"."""
    return webp(
        path, Model="prompt:" + json.dumps(comfyui_graph()), Make="workflow:" + json.dumps(comfyui_workflow())
    )


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


def reforge_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler, Schedule type: Automatic, CFG scale: 5, Seed: 1, Size: 512x512, Version: f1.7.0-v1.10.1RC-latest-2190-g8731f1e9"
    return png(path, itxt={"parameters": text})


def forge_neo_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Seed: 1, Size: 512x512, Model: flux1-dev, Version: neo"
    return png(path, itxt={"parameters": text})


def sdnext_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler a, CFG scale: 6, Seed: 1, Size: 512x512, App: SD.Next, Version: 8d5e1b3, Model: sdxl_base"
    return png(path, text={"parameters": text})


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


# -- raw chunk surgery for hostile files ---------------------------------------------------------------------


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def insert_chunk(path: Path, kind: bytes, data: bytes, *, before: bytes = b"IEND") -> Path:
    """Insert a chunk before the first chunk of type `before` (IEND: i.e. after the image data)."""
    raw = path.read_bytes()
    at = raw.index(before) - 4
    path.write_bytes(raw[:at] + chunk(kind, data) + raw[at:])
    return path
