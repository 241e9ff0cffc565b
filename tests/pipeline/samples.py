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


def reforge_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler, Schedule type: Automatic, CFG scale: 5, Seed: 1, Size: 512x512, Version: f1.7.0-v1.10.1RC-latest-2190-g8731f1e9"
    return png(path, itxt={"parameters": text})


def forge_neo_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Seed: 1, Size: 512x512, Model: flux1-dev, Version: neo"
    return png(path, itxt={"parameters": text})


def sdnext_png(path: Path) -> Path:
    text = "a quiet pond\nSteps: 20, Sampler: Euler a, CFG scale: 6, Seed: 1, Size: 512x512, App: SD.Next, Version: 8d5e1b3, Model: sdxl_base"
    return png(path, text={"parameters": text})


# -- raw chunk surgery for hostile files ---------------------------------------------------------------------


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def insert_chunk(path: Path, kind: bytes, data: bytes, *, before: bytes = b"IEND") -> Path:
    """Insert a chunk before the first chunk of type `before` (IEND: i.e. after the image data)."""
    raw = path.read_bytes()
    at = raw.index(before) - 4
    path.write_bytes(raw[:at] + chunk(kind, data) + raw[at:])
    return path
