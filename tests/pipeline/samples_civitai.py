"""JPEGs from Civitai's on-site generator. Every builder writes to `path` and returns it.

Sources followed:
- civitai/civitai `src/utils/metadata/automatic.metadata.ts` (commit 55a5a85): `encode` writes the prompt,
  "Negative prompt: …", then one line of "Key: value" joined by ", "; `canParse` reads EXIF UserComment as
  "UNICODE\\0" + UTF-16, and `Civitai resources: [...]` is a JSON array on that line.
- Civitai's AIR (AI Resource Identifier) scheme, `urn:air:{ecosystem}:{type}:{source}:{id}@{version}`, as
  its generator writes it in each resource's "air" (with `strength` rather than `weight` in newer images).
- The EXIF itself is Pillow's (little-endian TIFF); UserComment is written in both UTF-16 byte orders,
  without a BOM, as Civitai's and piexif's writers do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.pipeline.samples import unicode_comment

CHECKPOINT_AIR = "urn:air:sdxl:checkpoint:civitai:133005@782002"
LORA_AIR = "urn:air:sdxl:lora:civitai:328553@368189"

RESOURCES: list[dict[str, Any]] = [
    {"type": "checkpoint", "modelVersionId": 782002, "air": CHECKPOINT_AIR},
    {"modelVersionId": 368189, "strength": 0.8, "air": LORA_AIR},
]


def civitai_text(*extra: str, size: str = "832x1216") -> str:
    details = [
        "Steps: 30",
        "CFG scale: 4",
        "Sampler: DPM++ 2M Karras",
        "Seed: 2077001",
        *extra,
        f"Size: {size}",
        "Clip skip: 2",
        "Created Date: 2026-10-03T08:15:00.0000000Z",
        f"Civitai resources: {json.dumps(RESOURCES, separators=(',', ':'))}",
        "Civitai metadata: {}",
    ]
    return "cinematic still, a lighthouse keeper, 灯台守\nNegative prompt: watermark, blurry\n" + ", ".join(
        details
    )


def civitai_jpeg(
    path: Path, text: str | None = None, *, byteorder: str = "be", pixels: tuple[int, int] = (83, 121)
) -> Path:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = unicode_comment(text or civitai_text(), byteorder)
    Image.new("RGB", pixels, (30, 60, 90)).save(path, "JPEG", quality=85, exif=exif)
    return path


def civitai_hires_jpeg(path: Path) -> Path:
    """A "txt2img-hires" image: Hires keys, the generation Size, pixels 1.5x as large."""
    text = civitai_text(
        "workflow: txt2img-hires",
        "Denoising strength: 0.4",
        "Hires upscale: 1.5",
        "Hires upscaler: 4x-UltraSharp",
        "Hires steps: 10",
    )
    return civitai_jpeg(path, text, pixels=(1248, 1824))


def civitai_upscale_jpeg(path: Path) -> Path:
    """An on-site "upscale" of an earlier image: img2img-upscale at denoise 0.3, pixels twice the Size."""
    text = civitai_text("workflow: img2img-upscale", "Denoising strength: 0.3")
    return civitai_jpeg(path, text, byteorder="le", pixels=(1664, 2432))
