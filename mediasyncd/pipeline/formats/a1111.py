"""The A1111 `parameters` text, written by AUTOMATIC1111, Forge, reForge, Forge Neo, SD.Next, Civitai,
Fooocus (A1111 scheme) and Stability Matrix:

    <prompt lines>
    Negative prompt: <negative lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, ...

Values may be JSON-quoted ("Lora hashes: \"a: 1, b: 2\"") or bare JSON (Civitai resources: [...]).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from mediasyncd.pipeline.formats.keytable import KeyTable, read_hires
from mediasyncd.pipeline.record import (
    GenerationRecord,
    Lora,
    Resource,
    as_float,
    as_text,
    merge_loras,
    model_name,
    prompt_loras,
    split_sampler,
)

_KEY = re.compile(r"\s*([A-Za-z][\w \-/+().]*?):\s*")
_SETTINGS_MARKERS = ("Steps", "Sampler", "Seed", "CFG scale", "Size", "Model")
_JSON = json.JSONDecoder()
# The settings line's keys; the generator and the model (which Civitai may name instead) are decided apart.
_SETTINGS = KeyTable(
    None,
    {
        "model_hash": "Model hash",
        "sampler": "Sampler",
        "scheduler": "Schedule type",
        "steps": "Steps",
        "cfg": ("CFG scale", "CFG Scale"),  # ComfyUI savers write "CFG Scale"
        "seed": "Seed",
    },
    size="Size",
    split=split_sampler,
)
# ComfyUI's scheduler names (comfy/samplers.py SCHEDULER_NAMES), longest first so "sgm_uniform" beats "uniform".
COMFY_SCHEDULERS = (
    "linear_quadratic",
    "ddim_uniform",
    "sgm_uniform",
    "exponential",
    "kl_optimal",
    "karras",
    "simple",
    "beta",
)
_HIRES = {
    "upscale": "Hires upscale",
    "upscaler": "Hires upscaler",
    "steps": "Hires steps",
    "denoising_strength": "Denoising strength",
    "resize": "Hires resize",
    "sampler": "Hires sampler",
}


def parse_settings(line: str) -> dict[str, Any]:
    """The "Key: value, Key: value" settings line as an ordered dict; quoted/JSON values decoded."""
    settings: dict[str, Any] = {}
    position = 0
    while position < len(line):
        match = _KEY.match(line, position)
        if match is None:
            comma = line.find(",", position)
            if comma < 0:
                break
            position = comma + 1
            continue
        key, position = match.group(1).strip(), match.end()
        value: Any
        if line.startswith(('"', "[", "{"), position):
            try:
                value, position = _JSON.raw_decode(line, position)
            except ValueError:
                value, position = _bare_value(line, position)
        else:
            value, position = _bare_value(line, position)
        settings[key] = value
        while position < len(line) and line[position] in " ,":
            position += 1
    return settings


def _bare_value(line: str, position: int) -> tuple[str, int]:
    comma = line.find(",", position)
    end = len(line) if comma < 0 else comma
    return line[position:end].strip(), end


def split_parameters(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """(prompt, negative prompt, settings) from a whole `parameters` text, prompts kept verbatim."""
    body, settings = text, {}
    newline = text.rfind("\n")
    last_line = text[newline + 1 :]
    candidate = parse_settings(last_line)
    if len(candidate) >= 3 and any(key in candidate for key in _SETTINGS_MARKERS):
        body, settings = (text[:newline] if newline >= 0 else ""), candidate
    negative: str | None = None
    marker = "Negative prompt:"
    if body.startswith(marker):
        prompt, negative = "", body[len(marker) :]
    else:
        at = body.find("\n" + marker)
        prompt = body if at < 0 else body[:at]
        negative = None if at < 0 else body[at + 1 + len(marker) :]
    if negative is not None and negative.startswith(" "):
        negative = negative[1:]
    return prompt, negative, settings


def identify(settings: dict[str, Any]) -> tuple[str, str | None]:
    """(generator, version) from the settings' Version/App keys."""
    version = as_text(settings.get("Version"))
    if "Civitai resources" in settings or "Civitai metadata" in settings:
        return "civitai", version
    # ComfyUI's A1111-text savers: Comfy Image Saver writes "Version: ComfyUI"; it and Save Image With
    # Metadata both write "CFG Scale" (A1111 writes "CFG scale").
    if (version or "").lower() == "comfyui" or "CFG Scale" in settings:
        return "comfyui", None
    if str(settings.get("App", "")).lower().replace(" ", "") in ("sd.next", "sdnext"):
        return "sdnext", version
    if version is None:
        return "automatic1111", None
    lowered = version.lower()
    if lowered.startswith("fooocus"):
        return "fooocus", version.split(" ", 1)[-1] if " " in version else version
    if lowered.startswith("neo") or "-neo" in lowered:
        return "forge-neo", version
    if re.match(r"f\d[\d.]*-v\d", version):
        return "reforge", version
    if re.match(r"f\d", version):
        return "forge", version
    return "automatic1111", version


def parse_a1111(text: str, raw: dict[str, str]) -> GenerationRecord:
    prompt, negative, settings = split_parameters(text)
    generator, version = identify(settings)
    civitai_model, civitai_loras, resources = _civitai_resources(settings.get("Civitai resources"))
    record = _SETTINGS.record(settings, raw)
    if generator == "comfyui":
        sampler, scheduler = comfy_sampler(record.sampler)
        record = replace(record, sampler=sampler, scheduler=record.scheduler or scheduler)
    has_hires = any(key.startswith("Hires") for key in settings)
    hires = read_hires(settings, _HIRES) if has_hires else None
    return replace(
        record,
        generator=generator,
        generator_version=version,
        prompt=prompt,
        negative_prompt=negative,
        model=model_name(settings.get("Model")) or civitai_model,
        hires=hires,
        # Without a hires pass, "Denoising strength" is img2img's (with one, it is the hires pass's).
        denoise=None if has_hires else as_float(settings.get("Denoising strength")),
        loras=merge_loras(prompt_loras(prompt), civitai_loras, _hashed_loras(settings)),
        resources=resources,
    )


def comfy_sampler(sampler: str | None) -> tuple[str | None, str | None]:
    """ComfyUI savers join sampler and scheduler with "_" (leaving out "normal"): "dpmpp_2m_karras"."""
    if sampler is None:
        return None, None
    for scheduler in COMFY_SCHEDULERS:
        if sampler.endswith("_" + scheduler) and len(sampler) > len(scheduler) + 1:
            return sampler[: -len(scheduler) - 1], scheduler
    return sampler, "normal"


def _hashed_loras(settings: dict[str, Any]) -> list[Lora]:
    """LoRA names from "Lora hashes: \"name: hash, name2: hash2\"" (no weights there)."""
    value = settings.get("Lora hashes")
    if not isinstance(value, str):
        return []
    return [Lora(item.split(":", 1)[0].strip()) for item in value.split(",") if ":" in item]


def _civitai_resources(value: object) -> tuple[str | None, list[Lora], tuple[Resource, ...]]:
    """Civitai's resource list: the checkpoint's name, the LoRAs with their weights, every resource."""
    if not isinstance(value, list):
        return None, [], ()
    model: str | None = None
    loras: list[Lora] = []
    resources: list[Resource] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        resource = Resource.from_civitai(item)
        resources.append(resource)
        name = resource.name or resource.air
        if resource.type == "checkpoint" and model is None:
            model = model_name(resource.name) or resource.air
        elif resource.type in ("lora", "locon", "lycoris", "dora") and name:
            loras.append(Lora(name, resource.weight))
    return model, loras, tuple(resources)
