"""What the metadata corpus is made of: a generation's settings, the ground truth a reader should find, and
the low-level ways the tools put text into files (PNG text chunks, EXIF UserComment, XMP).

A `Setting` is what a user chose in a tool (prompt, negative, seed, steps, CFG, size, checkpoint file,
sampler, scheduler). Each writer in `bench.corpus_writers` renders one into a file the way that tool's
saver does and returns the `Truth`: the eight scored fields as the tool wrote them (None where the tool
writes no such thing, e.g. Midjourney's steps). Nothing here reads files back.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

FIELDS = ("prompt", "negative", "seed", "steps", "cfg", "width", "height", "model")

_SUBJECTS = (
    "a lighthouse on a cliff at dusk",
    "portrait of an old fisherman, weathered skin",
    "1girl, solo, long hair, school uniform, cherry blossoms",
    "a red fox in deep snow, morning light",
    "夜の東京, neon rain, 雨",
    "一只猫坐在窗台上",
    "cyberpunk street market, 네온사인",
    'a "quoted" sign that says <open> & welcome',
    "isometric cozy cabin, tilt-shift, 🐱 mascot",
    "macro photo of a dew drop on a leaf",
)
_TAGS = (
    "masterpiece",
    "best quality",
    "(ultra detailed:1.2)",
    "volumetric lighting",
    "8k",
    "[soft focus]",
    "film grain",
    "score_9, score_8_up",
    "cinematic still",
    "depth of field",
)
_NEGATIVES = (
    "lowres, bad anatomy, (worst quality:1.4)",
    "blurry, watermark, text",
    "deformed hands, extra fingers",
    "nsfw, 3d, (monochrome:1.1)",
    "低品質, ぼやけ",
)
_CHECKPOINTS = (
    "juggernautXL_v9Rundiffusionphoto2.safetensors",
    "ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
    "sd_xl_base_1.0.safetensors",
    "dreamshaper_8.safetensors",
    "realisticVisionV60B1_v51HyperVAE.safetensors",
    "animagine-xl-3.1.safetensors",
    "SDXL/illustriousXL_v01.safetensors",
    "sd15/epicrealism_naturalSinPureFix.ckpt",
)
_SIZES = (
    (512, 512),
    (512, 768),
    (768, 512),
    (832, 1216),
    (1216, 832),
    (1024, 1024),
    (896, 1152),
    (1344, 768),
)
_CFGS = (1.0, 2.5, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.5, 12.0)
# (A1111 sampler, A1111 schedule type, ComfyUI sampler_name, ComfyUI scheduler)
_SAMPLERS = (
    ("DPM++ 2M", "Karras", "dpmpp_2m", "karras"),
    ("Euler a", "Automatic", "euler_ancestral", "normal"),
    ("Euler", "Simple", "euler", "simple"),
    ("DPM++ SDE", "Karras", "dpmpp_sde", "karras"),
    ("DPM++ 2M SDE", "Exponential", "dpmpp_2m_sde", "exponential"),
    ("UniPC", "Automatic", "uni_pc", "normal"),
)


@dataclass(frozen=True)
class Setting:
    prompt: str
    negative: str  # "" when the user left it empty
    seed: int
    steps: int
    cfg: float
    width: int
    height: int
    checkpoint: str  # the weights file as the tool lists it, maybe in a sub-folder
    sampler: tuple[str, str, str, str]

    @property
    def model(self) -> str:
        """The checkpoint as people name it: without its folder and weights-file extension."""
        name = self.checkpoint.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0]

    @property
    def pixels(self) -> tuple[int, int]:
        """The corpus's files hold solid pixels at 1/8 of the size: the metadata is what is measured."""
        return max(8, self.width // 8), max(8, self.height // 8)


@dataclass(frozen=True)
class Truth:
    prompt: str | None = None
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None

    @classmethod
    def of(cls, s: Setting, **changes: Any) -> Truth:
        """Every field as set (the negative None when empty), with `changes` applied."""
        values: dict[str, Any] = {
            "prompt": s.prompt,
            "negative": s.negative or None,
            "seed": s.seed,
            "steps": s.steps,
            "cfg": s.cfg,
            "width": s.width,
            "height": s.height,
            "model": s.model,
        }
        return cls(**(values | changes))


def setting(rng: random.Random, *, multiline: bool = True, seed_bits: int = 32) -> Setting:
    """A plausible generation: a subject, some tags, sometimes a second prompt line or no negative."""
    prompt = ", ".join([*rng.sample(_TAGS, rng.randint(1, 4)), rng.choice(_SUBJECTS)])
    if multiline and rng.random() < 0.25:
        prompt += "\nBREAK, " + rng.choice(_TAGS)
    if rng.random() < 0.2:
        prompt += f", <lora:add_detail:{rng.choice((0.4, 0.6, 1))}>"
    negative = "" if rng.random() < 0.15 else rng.choice(_NEGATIVES)
    width, height = rng.choice(_SIZES)
    return Setting(
        prompt=prompt,
        negative=negative,
        seed=rng.randrange(0, 2**seed_bits),
        steps=rng.randint(4, 60),
        cfg=rng.choice(_CFGS),
        width=width,
        height=height,
        checkpoint=rng.choice(_CHECKPOINTS),
        sampler=rng.choice(_SAMPLERS),
    )


def num(value: float) -> str:
    """A number as the JSON/Python of most tools prints a float that came from a UI: 7 or 6.5."""
    return str(int(value)) if float(value).is_integer() else str(value)


# -- containers ---------------------------------------------------------------------------------------------


def solid(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, (120, 90, 60) if mode == "RGB" else (120, 90, 60, 255))


def png_texts(path: Path, size: tuple[int, int], texts: dict[str, str], **save: Any) -> Path:
    """Pillow's PngInfo.add_text per key, as every Python tool here does (iTXt when not Latin-1)."""
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    solid(size).save(path, "PNG", pnginfo=info, **save)
    return path


def unicode_comment(text: str, byteorder: str = "be") -> bytes:
    """piexif.helper.UserComment.dump(text, encoding="unicode"): "UNICODE\\0" + UTF-16 (BE on piexif)."""
    return b"UNICODE\0" + text.encode("utf-16-be" if byteorder == "be" else "utf-16-le")


def exif_user_comment(path: Path, size: tuple[int, int], fmt: str, comment: bytes, **save: Any) -> Path:
    """A JPEG/WebP whose Exif IFD holds UserComment (what piexif.dump + insert produce)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = comment
    solid(size).save(path, fmt, exif=exif, **save)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def insert_png_chunk(path: Path, kind: bytes, data: bytes, before: bytes = b"IDAT") -> Path:
    raw = path.read_bytes()
    at = raw.index(before) - 4
    path.write_bytes(raw[:at] + png_chunk(kind, data) + raw[at:])
    return path


def xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
