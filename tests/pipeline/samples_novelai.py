"""NovelAI images as its savers write them: stealth pnginfo in the alpha channel, WebP with its text chunks in
EXIF, and v4 character prompts. Every builder writes to `path` and returns it.

Sources followed (writer code, not readers):
- NovelAI/novelai-image-metadata `nai_meta_writer.py` (commit 40f85cd): `LSBInjector` writes
  "stealth_pngcomp", the payload's bit length (32-bit big-endian), then gzip(json.dumps({tEXt key: text}))
  without "Title", into the alpha channel's low bit in column-major order; every other alpha byte is 0xff.
- ashen-sensored/sd_webui_stealth_pnginfo `scripts/stealth_pnginfo.py` (commit 0a79d40): `add_data` with
  `putalpha(255)`, signature "stealth_pnginfo" (plain) or "stealth_pngcomp" (gzip), the A1111 `parameters`
  text, x outer / y inner; in its "rgb" mode "stealth_rgbinfo"/"stealth_rgbcomp", the bits in the low bit
  of r, g and b of each pixel in turn (its reader, `read_info_from_image_stealth`, collects
  `buffer_rgb += r & 1, g & 1, b & 1` in the same x/y order).
- enslo/sd-metadata `src/converters/novelai.ts`: NovelAI's JPEG/WebP layout — EXIF ImageDescription holds
  the Description, EXIF UserComment a JSON object of every text chunk (Software, Source, Comment, …).
- NovelAI's image API (`/ai/generate-image`, v4 models): `v4_prompt` / `v4_negative_prompt` =
  {"caption": {"base_caption", "char_captions": [{"char_caption", "centers": [{"x", "y"}]}]}, …}.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.pipeline.samples import unicode_comment

V4_COMMENT: dict[str, Any] = {
    "prompt": "2girls, cafe, window seat, best quality",
    "steps": 23,
    "height": 1216,
    "width": 832,
    "scale": 5.5,
    "uncond_scale": 1.0,
    "cfg_rescale": 0.0,
    "seed": 1234567890,
    "n_samples": 1,
    "noise_schedule": "karras",
    "sampler": "k_euler_ancestral",
    "uc": "lowres, artistic error, blurry",
    "request_type": "PromptGenerateRequest",
    "v4_prompt": {
        "caption": {
            "base_caption": "2girls, cafe, window seat, best quality",
            "char_captions": [
                {"char_caption": "girl, red hair, reading", "centers": [{"x": 0.3, "y": 0.5}]},
                {"char_caption": "girl, black hair, 咖啡", "centers": [{"x": 0.7, "y": 0.5}]},
            ],
        },
        "use_coords": True,
        "use_order": True,
    },
    "v4_negative_prompt": {
        "caption": {
            "base_caption": "lowres, artistic error, blurry",
            "char_captions": [
                {"char_caption": "glasses", "centers": [{"x": 0.3, "y": 0.5}]},
                {"char_caption": "", "centers": [{"x": 0.7, "y": 0.5}]},
            ],
        },
        "legacy_uc": False,
    },
}

TEXTS = {
    "Title": "NovelAI generated image",
    "Description": V4_COMMENT["prompt"],
    "Software": "NovelAI",
    "Source": "NovelAI Diffusion V4 Full 4F7EF1E0",
    "Generation time": "6.2",
    "Comment": json.dumps(V4_COMMENT),
}


def _bits(data: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def novelai_stealth_png(
    path: Path, size: tuple[int, int] = (96, 80), texts: dict[str, str] | None = None
) -> Path:
    """NovelAI's `inject_data`: every text chunk but Title, gzip'd, in the alpha LSBs; no text chunks left
    (as after a site stripped them)."""
    texts = {key: value for key, value in (texts or TEXTS).items() if key != "Title"}
    payload = gzip.compress(json.dumps(texts).encode("utf-8"))
    buffer = b"stealth_pngcomp" + (len(payload) * 8).to_bytes(4, "big") + payload
    bits = _bits(buffer)
    width, height = size
    assert len(bits) <= width * height, "image too small for the payload"
    column_major = [0xFE | bit for bit in bits] + [0xFF] * (width * height - len(bits))
    alpha = Image.frombytes("L", (height, width), bytes(column_major)).transpose(Image.Transpose.TRANSPOSE)
    image = Image.new("RGB", size, (90, 140, 200))
    image.putalpha(alpha)
    image.save(path, "PNG")
    return path


def webui_stealth_png(path: Path, parameters: str, *, compressed: bool, mode: str = "alpha") -> Path:
    """sd-webui-stealth-pnginfo's `add_data`, its text chunks then stripped. Alpha mode: `putalpha(255)`,
    one bit a pixel in alpha; RGB mode (an RGB image): one bit in each of r, g and b, in that order."""
    kind = "png" if mode == "alpha" else "rgb"
    signature = f"stealth_{kind}comp" if compressed else f"stealth_{kind}info"
    param = gzip.compress(parameters.encode("utf-8")) if compressed else parameters.encode("utf-8")
    binary = _bits(signature.encode("utf-8")) + _bits((len(param) * 8).to_bytes(4, "big")) + _bits(param)
    image = Image.new("RGB", (128, 96), (10, 200, 30))
    if mode == "alpha":
        image.putalpha(255)
    per_pixel = 1 if mode == "alpha" else 3
    assert len(binary) <= image.width * image.height * per_pixel, "image too small for the payload"
    pixels = image.load()
    assert pixels is not None
    index = 0
    for x in range(image.width):
        for y in range(image.height):
            if index >= len(binary):
                break
            values = list(pixels[x, y])  # type: ignore[arg-type]
            channels = [3] if mode == "alpha" else [0, 1, 2]
            for channel in channels:
                if index < len(binary):
                    values[channel] = (values[channel] & ~1) | binary[index]
                    index += 1
            pixels[x, y] = tuple(values)
    image.save(path, "PNG")
    return path


def novelai_webp(path: Path) -> Path:
    """NovelAI WebP: EXIF ImageDescription (the Description) and UserComment (JSON of all text chunks)."""
    exif = Image.Exif()
    exif[0x010E] = TEXTS["Description"]
    exif.get_ifd(0x8769)[0x9286] = unicode_comment(json.dumps(TEXTS), "le")
    Image.new("RGB", (64, 48), (1, 2, 3)).save(path, "WEBP", exif=exif)
    return path
