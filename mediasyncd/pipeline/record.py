"""The normalized generation record every format parser produces, and the small value helpers they share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Keys of `GenerationRecord.as_json()`, in output order (the `inspect --json` contract).
JSON_KEYS = (
    "path",
    "error",
    "generator",
    "generator_version",
    "prompt",
    "negative_prompt",
    "model",
    "model_hash",
    "sampler",
    "scheduler",
    "steps",
    "cfg",
    "seed",
    "denoise",
    "width",
    "height",
    "pixel_width",
    "pixel_height",
    "hires",
    "loras",
    "characters",
    "resources",
    "c2pa",
    "raw",
)

MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")

# Scheduler names A1111 used to append to the sampler name before "Schedule type" existed.
_SCHEDULER_SUFFIXES = (
    "Karras",
    "Exponential",
    "SGM Uniform",
    "Polyexponential",
    "Align Your Steps",
    "Simple",
    "Normal",
    "DDIM",
    "Beta",
    "KL Optimal",
    "Uniform",
)


@dataclass(frozen=True)
class Lora:
    name: str
    weight: float | None = None


_AIR = re.compile(
    r"urn:air:(?P<ecosystem>[\w.-]+):(?P<type>[\w.-]+):(?P<source>[\w.-]+):(?P<id>[^@:\s]+)(?:@(?P<version>[^.\s]+))?"
)


@dataclass(frozen=True)
class Resource:
    """A model a site names by id (Civitai resources): its type, name, version, weight and AIR
    (`urn:air:sdxl:lora:civitai:328553@368189`; ecosystem, type, source, model id @ version id)."""

    type: str | None = None
    name: str | None = None
    version: str | None = None
    weight: float | None = None
    air: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "version": self.version,
            "weight": self.weight,
            "air": self.air,
        }

    @classmethod
    def from_json(cls, data: object) -> Resource | None:
        if not isinstance(data, dict):
            return None
        return cls(
            as_text(data.get("type")),
            as_text(data.get("name")),
            as_text(data.get("version")),
            as_float(data.get("weight")),
            as_text(data.get("air")),
        )

    @classmethod
    def from_civitai(cls, item: dict[str, Any]) -> Resource:
        """One entry of Civitai's resource JSON (`modelName`, `modelVersionName`, `weight`/`strength`, `air`)."""
        air = as_text(item.get("air"))
        match = _AIR.match(air or "")
        kind = as_text(item.get("type")) or (match.group("type") if match else None)
        weight = item.get("weight", item.get("strength"))
        return cls(
            kind.lower() if kind else None,
            as_text(item.get("modelName")) or as_text(item.get("name")),
            as_text(item.get("modelVersionName")) or as_text(item.get("versionName")),
            as_float(weight),
            match.group(0) if match else air,
        )


@dataclass(frozen=True)
class Character:
    """One of NovelAI v4's per-character prompts, with its negative and where it is placed (x, y in 0..1)."""

    prompt: str | None
    negative_prompt: str | None = None
    center: tuple[float, float] | None = None

    def as_json(self) -> dict[str, Any]:
        center = None if self.center is None else {"x": self.center[0], "y": self.center[1]}
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "center": center}

    @classmethod
    def from_json(cls, data: object) -> Character | None:
        if not isinstance(data, dict):
            return None
        center = data.get("center")
        x, y = (center.get("x"), center.get("y")) if isinstance(center, dict) else (None, None)
        fx, fy = as_float(x), as_float(y)
        return cls(
            as_text(data.get("prompt")),
            as_text(data.get("negative_prompt")),
            None if fx is None or fy is None else (fx, fy),
        )


@dataclass(frozen=True)
class GenerationRecord:
    """What made an image, normalized across tools; `raw` keeps every source text verbatim."""

    generator: str | None = None
    generator_version: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    model: str | None = None
    model_hash: str | None = None
    sampler: str | None = None
    scheduler: str | None = None
    steps: int | None = None
    cfg: float | None = None
    seed: int | None = None
    denoise: float | None = None  # the (first) pass's denoising strength: img2img, a sampler's denoise
    width: int | None = None  # the generation size, where the metadata says it; else the pixel size
    height: int | None = None
    pixel_width: int | None = None  # the file's pixel size (differs after a hires fix or an upscale)
    pixel_height: int | None = None
    hires: dict[str, Any] | None = None
    loras: tuple[Lora, ...] = ()
    characters: tuple[Character, ...] = ()
    resources: tuple[Resource, ...] = ()
    c2pa: dict[str, Any] | None = None  # a C2PA manifest's claim generator and digital source type
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def has_metadata(self) -> bool:
        return self.generator is not None or self.prompt is not None

    def with_pixel_size(self, width: int | None, height: int | None) -> GenerationRecord:
        """Record the pixel size, and fall back to it where the metadata names no generation size."""
        return replace(
            self,
            width=self.width or width,
            height=self.height or height,
            pixel_width=width,
            pixel_height=height,
        )

    def as_json(self, path: str, error: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {item.name: getattr(self, item.name) for item in fields(self)}
        values.update(
            path=path,
            error=error,
            loras=[{"name": lora.name, "weight": lora.weight} for lora in self.loras],
            characters=[character.as_json() for character in self.characters],
            resources=[resource.as_json() for resource in self.resources],
            hires=_hires_json(self.hires),
            c2pa=dict(self.c2pa) if self.c2pa is not None else None,
            raw=dict(self.raw),
        )
        return {key: values[key] for key in JSON_KEYS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationRecord:
        loras = tuple(
            Lora(str(item["name"]), as_float(item.get("weight"))) for item in data.get("loras") or []
        )
        characters = tuple(
            found for item in data.get("characters") or [] if (found := Character.from_json(item)) is not None
        )
        resources = tuple(
            resource
            for item in data.get("resources") or []
            if (resource := Resource.from_json(item)) is not None
        )
        c2pa = data.get("c2pa")
        return cls(
            generator=data.get("generator"),
            generator_version=data.get("generator_version"),
            prompt=data.get("prompt"),
            negative_prompt=data.get("negative_prompt"),
            model=data.get("model"),
            model_hash=data.get("model_hash"),
            sampler=data.get("sampler"),
            scheduler=data.get("scheduler"),
            steps=as_int(data.get("steps")),
            cfg=as_float(data.get("cfg")),
            seed=as_int(data.get("seed")),
            denoise=as_float(data.get("denoise")),
            width=as_int(data.get("width")),
            height=as_int(data.get("height")),
            pixel_width=as_int(data.get("pixel_width")),
            pixel_height=as_int(data.get("pixel_height")),
            hires=_hires_from_json(data.get("hires")),
            loras=loras,
            characters=characters,
            resources=resources,
            c2pa=c2pa if isinstance(c2pa, dict) else None,
            raw={str(k): str(v) for k, v in (data.get("raw") or {}).items()},
        )


def _hires_json(hires: dict[str, Any] | None) -> dict[str, Any] | None:
    """The hires pass, with `scale` and `denoise` beside the older `upscale` and `denoising_strength`."""
    if hires is None:
        return None
    aliases = {"scale": hires.get("upscale"), "denoise": hires.get("denoising_strength")}
    return hires | {key: value for key, value in aliases.items() if value is not None and key not in hires}


def _hires_from_json(hires: object) -> dict[str, Any] | None:
    if not isinstance(hires, dict):
        return None
    aliases = {"scale": "upscale", "denoise": "denoising_strength"}
    return {k: v for k, v in hires.items() if not (k in aliases and aliases[k] in hires)}


def as_int(value: object) -> int | None:
    """An int from an int, float or numeric string; None for anything else (never raises)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = as_float(text)
            return int(number) if number is not None and number.is_integer() else None
    return None


def as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if number == number and number not in (float("inf"), float("-inf")) else None
    return None


def as_list(value: object) -> list[Any]:
    """A JSON value that should be a list; anything else (a number, a string, null) reads as empty."""
    return value if isinstance(value, list) else []


def as_text(value: object) -> str | None:
    """A non-empty string, or None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def model_name(value: object) -> str | None:
    """A model's name without its directory or weights-file extension ("sdxl/juggernaut.safetensors")."""
    text = as_text(value)
    if text is None:
        return None
    name = re.split(r"[\\/]", text.strip())[-1]
    lowered = name.lower()
    for extension in MODEL_EXTENSIONS:
        if lowered.endswith(extension):
            return name[: -len(extension)] or None
    return name or None


def split_sampler(sampler: str | None, scheduler: str | None = None) -> tuple[str | None, str | None]:
    """Split "DPM++ 2M Karras" into ("DPM++ 2M", "Karras") unless the scheduler is given separately."""
    if sampler is None or scheduler is not None:
        return sampler, scheduler
    for suffix in _SCHEDULER_SUFFIXES:
        if sampler.endswith(" " + suffix) and len(sampler) > len(suffix) + 1:
            return sampler[: -len(suffix) - 1].strip(), suffix
    return sampler, None


def size_pair(value: object) -> tuple[int | None, int | None]:
    """(width, height) from "512x768", "1024 x 1024", "(1024, 1024)" or [w, h]."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return as_int(value[0]), as_int(value[1])
    if isinstance(value, str):
        match = re.fullmatch(r"\s*\(?\s*(\d+)\s*[x×,*]\s*(\d+)\s*\)?\s*", value)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None, None


def prompt_loras(prompt: str | None) -> list[Lora]:
    """LoRAs named in prompt tags: <lora:name:0.8>, <lyco:name:1:te=0.5>, <lora:name>."""
    if not prompt:
        return []
    found = []
    for match in re.finditer(r"<(?:lora|lyco|locon):([^:>]+)(?::([^:>]*))?[^>]*>", prompt):
        found.append(Lora(match.group(1).strip(), as_float(match.group(2)) if match.group(2) else None))
    return found


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """The entries that have a value."""
    return {key: value for key, value in values.items() if value is not None}


def merge_loras(*groups: list[Lora]) -> tuple[Lora, ...]:
    """LoRAs from several places, first mention wins, deduplicated by name."""
    seen: dict[str, Lora] = {}
    for group in groups:
        for lora in group:
            key = model_name(lora.name) or lora.name
            if key not in seen:
                seen[key] = Lora(key, lora.weight)
    return tuple(seen.values())
