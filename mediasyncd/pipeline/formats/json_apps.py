"""Tools that embed a JSON document: SwarmUI, InvokeAI, Fooocus, RuinedFooocus, NovelAI, Easy Diffusion,
TensorArt, Stability Matrix and Hugging Face Spaces (Gradio + diffusers). Each tool's key names are a
`KeyTable`; its parser adds only what the table cannot say (LoRA lists, prompt syntax, refiner settings).
"""

from __future__ import annotations

import re
from dataclasses import replace

from mediasyncd.pipeline.formats.keytable import Json, KeyTable, first_present, read_hires
from mediasyncd.pipeline.record import (
    Character,
    GenerationRecord,
    Lora,
    as_float,
    as_list,
    as_text,
    merge_loras,
    prompt_loras,
    split_sampler,
)


def _karras_suffix(sampler: str | None, scheduler: str | None) -> tuple[str | None, str | None]:
    """InvokeAI folds the Karras schedule into the name: "dpmpp_2m_k" -> ("dpmpp_2m", "karras")."""
    if scheduler is None and sampler and sampler.endswith("_k"):
        return sampler[:-2], "karras"
    return sampler, scheduler


def _fooocus_version(value: object) -> str | None:
    """ "Fooocus v2.5.5" -> "v2.5.5"."""
    version = as_text(value)
    if version and version.lower().startswith("fooocus "):
        return version.split(" ", 1)[1]
    return version


_SWARMUI = KeyTable(
    "swarmui",
    {
        "generator_version": "swarm_version",
        "prompt": "prompt",
        "negative_prompt": "negativeprompt",
        "model": "model",
        "sampler": "sampler",
        "scheduler": "scheduler",
        "steps": "steps",
        "cfg": "cfgscale",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
)
_SWARMUI_REFINER = {
    "upscale": "refinerupscale",
    "upscaler": "refinerupscalemethod",
    "steps": "refinersteps",
    "denoising_strength": "refinercontrolpercentage",
}
_INVOKEAI = KeyTable(
    "invokeai",
    {
        "generator_version": "app_version",
        "prompt": "positive_prompt",
        "negative_prompt": "negative_prompt",
        "model": ("model.name", "model.model_name"),
        "model_hash": "model.hash",
        "sampler": "scheduler",  # InvokeAI's "scheduler" is the sampler's name
        "steps": "steps",
        "cfg": "cfg_scale",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
    split=_karras_suffix,
)
_INVOKEAI_LEGACY = KeyTable(
    "invokeai",
    {
        "generator_version": "app_version",
        "model": "model_weights",
        "model_hash": "model_hash",
        "sampler": "image.sampler",
        "steps": "image.steps",
        "cfg": "image.cfg_scale",
        "seed": "image.seed",
        "width": "image.width",
        "height": "image.height",
    },
    split=_karras_suffix,
)
_FOOOCUS = KeyTable(
    "fooocus",
    {
        "generator_version": "version",
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "model": "base_model",
        "model_hash": "base_model_hash",
        "sampler": "sampler",
        "scheduler": "scheduler",
        "steps": "steps",
        "cfg": "guidance_scale",
        "seed": "seed",
    },
    size="resolution",
    convert={"generator_version": _fooocus_version},
)
_RUINED_FOOOCUS = KeyTable(
    "ruinedfooocus",
    {
        "generator_version": "version",
        "prompt": "Prompt",
        "negative_prompt": "Negative",
        "model": "base_model_name",
        "model_hash": "base_model_hash",
        "sampler": "sampler_name",
        "scheduler": "scheduler",
        "steps": "steps",
        "cfg": "cfg",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
)
# NovelAI's `Comment` JSON; the prompt and model come from its other texts.
_NOVELAI = KeyTable(
    "novelai",
    {
        "negative_prompt": "uc",
        "sampler": "sampler",
        "scheduler": "noise_schedule",
        "steps": "steps",
        "cfg": "scale",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
)
# Easy Diffusion names its PNG text keys either like its task fields or like its UI labels; the first
# key present wins (read with `first_present`).
_EASY_MODEL_KEYS = ("use_stable_diffusion_model", "Stable Diffusion model")
_EASY_LORA_KEYS = ("use_lora_model", "LoRA model")
_EASY_LORA_WEIGHT_KEYS = ("lora_alpha", "LoRA Strength")
_EASY_DIFFUSION = KeyTable(
    "easydiffusion",
    {
        "prompt": ("prompt", "Prompt"),
        "negative_prompt": ("negative_prompt", "Negative Prompt"),
        "model": _EASY_MODEL_KEYS,
        "sampler": ("sampler_name", "Sampler"),
        "steps": ("num_inference_steps", "Steps"),
        "cfg": ("guidance_scale", "Guidance Scale"),
        "seed": ("seed", "Seed"),
        "width": ("width", "Width"),
        "height": ("height", "Height"),
    },
)
_TENSORART = KeyTable(
    "tensorart",
    {
        "prompt": "prompt",
        "negative_prompt": "negativePrompt",
        "model": "baseModel.modelFileName",
        "model_hash": "baseModel.hash",
        "sampler": ("samplerName", "sampler"),
        "steps": "steps",
        "cfg": "cfgScale",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
    split=split_sampler,
)
_STABILITY_MATRIX = KeyTable(
    "stabilitymatrix",
    {
        "prompt": "PositivePrompt",
        "negative_prompt": "NegativePrompt",
        "model": "ModelName",
        "model_hash": "ModelHash",
        "sampler": "Sampler",
        "scheduler": "Scheduler",
        "steps": "Steps",
        "cfg": "CfgScale",
        "seed": "Seed",
        "width": "Width",
        "height": "Height",
    },
    split=split_sampler,
)
_HF_SPACE = KeyTable(
    "huggingface-spaces",
    {
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "model": ("Model", "model"),
        "model_hash": "Model hash",
        "sampler": "sampler",
        "steps": "num_inference_steps",
        "cfg": "guidance_scale",
        "seed": "seed",
        "width": "width",
        "height": "height",
    },
    size="resolution",
    split=split_sampler,
)


def parse_swarmui(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """{"sui_image_params": {prompt, negativeprompt, model, …, loras, loraweights}, "sui_extra_data": …}"""
    params = _obj(data.get("sui_image_params"))
    loras = [
        Lora(str(name), as_float(weight))
        for name, weight in _parallel(params.get("loras"), params.get("loraweights"))
    ]
    hires = None
    if params.get("refinerupscale") is not None or params.get("refinermethod") is not None:
        hires = read_hires(params, _SWARMUI_REFINER)
    record = _SWARMUI.record(params, raw)
    return replace(record, hires=hires, loras=merge_loras(loras, prompt_loras(record.prompt)))


def parse_invokeai(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """`invokeai_metadata` (v3+), its LoRAs as [{"model" | "lora": {name | model_name}, "weight"}]."""
    loras: list[Lora] = []
    for item in as_list(data.get("loras")):
        if isinstance(item, dict):
            spec = _obj(item.get("model") or item.get("lora"))
            name = spec.get("name") or spec.get("model_name")
            if name:
                loras.append(Lora(str(name), as_float(item.get("weight"))))
    return replace(_INVOKEAI.record(data, raw), loras=tuple(loras))


def parse_invokeai_legacy(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """`sd-metadata` (InvokeAI 2.x): the negative prompt in [brackets] at the end of the prompt."""
    prompt_value = _obj(data.get("image")).get("prompt")
    if isinstance(prompt_value, list) and prompt_value and isinstance(prompt_value[0], dict):
        prompt_value = prompt_value[0].get("prompt")
    prompt, negative = as_text(prompt_value), None
    if prompt:
        match = re.fullmatch(r"(.*?)\s*\[(.*)\]\s*", prompt, flags=re.DOTALL)
        if match:
            prompt, negative = match.group(1), match.group(2)
    return replace(_INVOKEAI_LEGACY.record(data, raw), prompt=prompt, negative_prompt=negative)


def parse_fooocus(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Fooocus' scheme, its LoRAs as "lora_combined_N": "name : weight" and "loras": [[name, weight, …]]."""
    loras: list[Lora] = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            name, _, weight = value.rpartition(" : ")
            loras.append(Lora(name.strip(), as_float(weight)))
    loras += [lora for item in as_list(data.get("loras")) if (lora := _pair_lora(item)) is not None]
    return replace(_FOOOCUS.record(data, raw), loras=merge_loras(loras))


def parse_ruined_fooocus(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """RuinedFooocus, its LoRAs as [name, weight] pairs or "name:weight" strings."""
    loras: list[Lora] = []
    for item in as_list(data.get("loras")):
        if (lora := _pair_lora(item)) is not None:
            loras.append(lora)
        elif isinstance(item, str) and ":" in item:
            name, _, weight = item.rpartition(":")
            loras.append(Lora(name, as_float(weight)))
    return replace(_RUINED_FOOOCUS.record(data, raw), loras=merge_loras(loras))


def parse_novelai(texts: dict[str, str], comment: Json, raw: dict[str, str]) -> GenerationRecord:
    """NovelAI: Software/Source/Description tEXt plus a `Comment` JSON with the settings and `uc`."""
    source = texts.get("Source", "")
    match = re.fullmatch(r"\s*(.*?)\s+([0-9A-Fa-f]{8})\s*", source)
    model, model_hash = (match.group(1), match.group(2)) if match else (as_text(source), None)
    positive = _obj(_obj(comment.get("v4_prompt")).get("caption"))
    negative = _obj(_obj(comment.get("v4_negative_prompt")).get("caption"))
    prompt = (
        as_text(comment.get("prompt"))
        or as_text(positive.get("base_caption"))
        or as_text(texts.get("Description"))
    )
    record = _NOVELAI.record(comment, raw)
    return replace(
        record,
        prompt=prompt,
        negative_prompt=record.negative_prompt or as_text(negative.get("base_caption")),
        model=model,
        model_hash=model_hash,
        characters=_novelai_characters(positive, negative),
    )


def _novelai_characters(positive: Json, negative: Json) -> tuple[Character, ...]:
    """NovelAI v4 `char_captions`: the i-th negative caption belongs to the i-th character."""
    negatives = as_list(negative.get("char_captions"))
    found = []
    for index, item in enumerate(as_list(positive.get("char_captions"))):
        caption = _obj(item)
        centers = [_obj(center) for center in as_list(caption.get("centers"))]
        x, y = (as_float(centers[0].get("x")), as_float(centers[0].get("y"))) if centers else (None, None)
        own_negative = _obj(negatives[index]).get("char_caption") if index < len(negatives) else None
        found.append(
            Character(
                as_text(caption.get("char_caption")),
                as_text(own_negative),
                None if x is None or y is None else (x, y),
            )
        )
    return tuple(found)


def is_easy_diffusion(data: Json) -> bool:
    return any(key in data for key in _EASY_MODEL_KEYS)


def parse_easy_diffusion(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Easy Diffusion: one LoRA as text, or parallel lists of LoRA names and strengths."""
    lookup = first_present(data)
    names, weights = lookup(_EASY_LORA_KEYS), lookup(_EASY_LORA_WEIGHT_KEYS)
    if isinstance(names, str) and names:
        names, weights = [names], [weights]
    loras = [Lora(str(name), as_float(weight)) for name, weight in _parallel(names, weights) if name]
    return replace(_EASY_DIFFUSION.record(lookup, raw), loras=merge_loras(loras))


def parse_tensorart(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """TensorArt's `generation_data`, its LoRAs among `models` with "type": "LORA"."""
    loras = []
    for item in as_list(data.get("models")):
        if isinstance(item, dict) and str(item.get("type", "")).upper() == "LORA":
            loras.append(
                Lora(str(item.get("modelFileName") or item.get("label") or ""), as_float(item.get("weight")))
            )
    record = _TENSORART.record(data, raw)
    named = [lora for lora in loras if lora.name]
    return replace(record, loras=merge_loras(named, prompt_loras(record.prompt)))


def parse_stability_matrix(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Stability Matrix Inference's `parameters-json`; LoRAs only as prompt tags."""
    record = _STABILITY_MATRIX.record(data, raw)
    return replace(record, loras=merge_loras(prompt_loras(record.prompt)))


def is_hf_space(data: Json) -> bool:
    return "prompt" in data and ("num_inference_steps" in data or "guidance_scale" in data)


def parse_hf_space(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Gradio + diffusers Spaces: diffusers' argument names, "resolution": "1024 x 1024"."""
    return _HF_SPACE.record(data, raw)


def _parallel(names: object, weights: object) -> list[tuple[object, object]]:
    """(name, weight) from a list of names and a parallel list of weights (None where it falls short)."""
    if not isinstance(names, list):
        return []
    weight_list = weights if isinstance(weights, list) else []
    return [(name, weight_list[i] if i < len(weight_list) else None) for i, name in enumerate(names)]


def _pair_lora(item: object) -> Lora | None:
    """A LoRA from a [name, weight, …] list."""
    if isinstance(item, list | tuple) and len(item) >= 2:
        return Lora(str(item[0]), as_float(item[1]))
    return None


def _obj(value: object) -> Json:
    return value if isinstance(value, dict) else {}
