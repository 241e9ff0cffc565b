"""Tools that embed a JSON document: SwarmUI, InvokeAI, Fooocus, RuinedFooocus, NovelAI, Easy Diffusion,
TensorArt, Stability Matrix and Hugging Face Spaces (Gradio + diffusers). One function per tool, each
taking the decoded JSON (and the raw sources to keep) and returning a normalized record.
"""

from __future__ import annotations

import re
from typing import Any

from mediasyncd.pipeline.record import (
    GenerationRecord,
    Lora,
    as_float,
    as_int,
    as_text,
    merge_loras,
    model_name,
    prompt_loras,
    size_pair,
    split_sampler,
)

Json = dict[str, Any]


def parse_swarmui(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, …}, "sui_extra_data": …}"""
    params = data.get("sui_image_params")
    p: Json = params if isinstance(params, dict) else {}
    names, weights = p.get("loras"), p.get("loraweights")
    loras: list[Lora] = []
    if isinstance(names, list):
        weight_list = weights if isinstance(weights, list) else []
        for index, name in enumerate(names):
            weight = weight_list[index] if index < len(weight_list) else None
            loras.append(Lora(str(name), as_float(weight)))
    hires = None
    if p.get("refinerupscale") is not None or p.get("refinermethod") is not None:
        hires = _drop_none(
            {
                "upscale": as_float(p.get("refinerupscale")),
                "upscaler": as_text(p.get("refinerupscalemethod")),
                "steps": as_int(p.get("refinersteps")),
                "denoising_strength": as_float(p.get("refinercontrolpercentage")),
            }
        )
    prompt = as_text(p.get("prompt"))
    return GenerationRecord(
        generator="swarmui",
        generator_version=as_text(p.get("swarm_version")),
        prompt=prompt,
        negative_prompt=as_text(p.get("negativeprompt")),
        model=model_name(p.get("model")),
        sampler=as_text(p.get("sampler")),
        scheduler=as_text(p.get("scheduler")),
        steps=as_int(p.get("steps")),
        cfg=as_float(p.get("cfgscale")),
        seed=as_int(p.get("seed")),
        width=as_int(p.get("width")),
        height=as_int(p.get("height")),
        hires=hires,
        loras=merge_loras(loras, prompt_loras(prompt)),
        raw=raw,
    )


def parse_invokeai(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """`invokeai_metadata` (v3+): positive_prompt, negative_prompt, model {name|model_name, hash}, loras."""
    model = _obj(data.get("model"))
    loras: list[Lora] = []
    for item in data.get("loras") or []:
        if isinstance(item, dict):
            spec = _obj(item.get("model") or item.get("lora"))
            name = spec.get("name") or spec.get("model_name")
            if name:
                loras.append(Lora(str(name), as_float(item.get("weight"))))
    sampler, scheduler = _invoke_scheduler(as_text(data.get("scheduler")))
    return GenerationRecord(
        generator="invokeai",
        generator_version=as_text(data.get("app_version")),
        prompt=as_text(data.get("positive_prompt")),
        negative_prompt=as_text(data.get("negative_prompt")),
        model=model_name(model.get("name") or model.get("model_name")),
        model_hash=as_text(model.get("hash")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(data.get("steps")),
        cfg=as_float(data.get("cfg_scale")),
        seed=as_int(data.get("seed")),
        width=as_int(data.get("width")),
        height=as_int(data.get("height")),
        loras=tuple(loras),
        raw=raw,
    )


def parse_invokeai_legacy(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """`sd-metadata` (InvokeAI 2.x): {"model_weights", "app_version", "image": {"prompt", …}}."""
    image = _obj(data.get("image"))
    prompt_value = image.get("prompt")
    if isinstance(prompt_value, list) and prompt_value and isinstance(prompt_value[0], dict):
        prompt_value = prompt_value[0].get("prompt")
    prompt, negative = as_text(prompt_value), None
    if prompt:
        match = re.fullmatch(r"(.*?)\s*\[(.*)\]\s*", prompt, flags=re.DOTALL)
        if match:
            prompt, negative = match.group(1), match.group(2)
    sampler, scheduler = _invoke_scheduler(as_text(image.get("sampler")))
    return GenerationRecord(
        generator="invokeai",
        generator_version=as_text(data.get("app_version")),
        prompt=prompt,
        negative_prompt=negative,
        model=model_name(data.get("model_weights")),
        model_hash=as_text(data.get("model_hash")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(image.get("steps")),
        cfg=as_float(image.get("cfg_scale")),
        seed=as_int(image.get("seed")),
        width=as_int(image.get("width")),
        height=as_int(image.get("height")),
        raw=raw,
    )


def _invoke_scheduler(value: str | None) -> tuple[str | None, str | None]:
    """InvokeAI folds the Karras schedule into the name: "dpmpp_2m_k" -> ("dpmpp_2m", "karras")."""
    if value and value.endswith("_k"):
        return value[:-2], "karras"
    return value, None


def parse_fooocus(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Fooocus' scheme: prompt, negative_prompt, base_model(+_hash), sampler, scheduler, resolution, loras."""
    loras: list[Lora] = []
    for key, value in data.items():
        if key.startswith("lora_combined_") and isinstance(value, str) and " : " in value:
            name, _, weight = value.rpartition(" : ")
            loras.append(Lora(name.strip(), as_float(weight)))
    for item in data.get("loras") or []:
        if isinstance(item, list | tuple) and len(item) >= 2:
            loras.append(Lora(str(item[0]), as_float(item[1])))
    width, height = size_pair(data.get("resolution"))
    version = as_text(data.get("version"))
    if version and version.lower().startswith("fooocus "):
        version = version.split(" ", 1)[1]
    return GenerationRecord(
        generator="fooocus",
        generator_version=version,
        prompt=as_text(data.get("prompt")),
        negative_prompt=as_text(data.get("negative_prompt")),
        model=model_name(data.get("base_model")),
        model_hash=as_text(data.get("base_model_hash")),
        sampler=as_text(data.get("sampler")),
        scheduler=as_text(data.get("scheduler")),
        steps=as_int(data.get("steps")),
        cfg=as_float(data.get("guidance_scale")),
        seed=as_int(data.get("seed")),
        width=width,
        height=height,
        loras=merge_loras(loras),
        raw=raw,
    )


def parse_ruined_fooocus(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """RuinedFooocus: {"Prompt", "Negative", "steps", "cfg", "sampler_name", "base_model_name", …}."""
    loras = []
    for item in data.get("loras") or []:
        if isinstance(item, list | tuple) and len(item) >= 2:
            loras.append(Lora(str(item[0]), as_float(item[1])))
        elif isinstance(item, str) and ":" in item:
            name, _, weight = item.rpartition(":")
            loras.append(Lora(name, as_float(weight)))
    return GenerationRecord(
        generator="ruinedfooocus",
        generator_version=as_text(data.get("version")),
        prompt=as_text(data.get("Prompt")),
        negative_prompt=as_text(data.get("Negative")),
        model=model_name(data.get("base_model_name")),
        model_hash=as_text(data.get("base_model_hash")),
        sampler=as_text(data.get("sampler_name")),
        scheduler=as_text(data.get("scheduler")),
        steps=as_int(data.get("steps")),
        cfg=as_float(data.get("cfg")),
        seed=as_int(data.get("seed")),
        width=as_int(data.get("width")),
        height=as_int(data.get("height")),
        loras=merge_loras(loras),
        raw=raw,
    )


def parse_novelai(texts: dict[str, str], comment: Json, raw: dict[str, str]) -> GenerationRecord:
    """NovelAI: Software/Source/Description tEXt plus a `Comment` JSON with the settings and `uc`."""
    source = texts.get("Source", "")
    match = re.fullmatch(r"\s*(.*?)\s+([0-9A-Fa-f]{8})\s*", source)
    model, model_hash = (match.group(1), match.group(2)) if match else (as_text(source), None)
    prompt = as_text(comment.get("prompt")) or as_text(texts.get("Description"))
    v4 = comment.get("v4_prompt")
    if prompt is None and isinstance(v4, dict):
        prompt = as_text(_obj(v4.get("caption")).get("base_caption"))
    return GenerationRecord(
        generator="novelai",
        prompt=prompt,
        negative_prompt=as_text(comment.get("uc")),
        model=model,
        model_hash=model_hash,
        sampler=as_text(comment.get("sampler")),
        scheduler=as_text(comment.get("noise_schedule")),
        steps=as_int(comment.get("steps")),
        cfg=as_float(comment.get("scale")),
        seed=as_int(comment.get("seed")),
        width=as_int(comment.get("width")),
        height=as_int(comment.get("height")),
        raw=raw,
    )


# Easy Diffusion names its PNG text keys either like its task fields or like its UI labels.
_EASY_KEYS = {
    "prompt": ("prompt", "Prompt"),
    "negative": ("negative_prompt", "Negative Prompt"),
    "seed": ("seed", "Seed"),
    "model": ("use_stable_diffusion_model", "Stable Diffusion model"),
    "sampler": ("sampler_name", "Sampler"),
    "width": ("width", "Width"),
    "height": ("height", "Height"),
    "steps": ("num_inference_steps", "Steps"),
    "cfg": ("guidance_scale", "Guidance Scale"),
    "lora": ("use_lora_model", "LoRA model"),
    "lora_weight": ("lora_alpha", "LoRA Strength"),
}


def is_easy_diffusion(data: Json) -> bool:
    return any(key in data for key in _EASY_KEYS["model"])


def parse_easy_diffusion(data: Json, raw: dict[str, str]) -> GenerationRecord:
    def get(field: str) -> Any:
        for key in _EASY_KEYS[field]:
            if key in data:
                return data[key]
        return None

    loras = []
    names, weights = get("lora"), get("lora_weight")
    if isinstance(names, str) and names:
        names, weights = [names], [weights]
    if isinstance(names, list):
        weight_list = weights if isinstance(weights, list) else []
        for index, name in enumerate(names):
            if name:
                loras.append(
                    Lora(str(name), as_float(weight_list[index] if index < len(weight_list) else None))
                )
    return GenerationRecord(
        generator="easydiffusion",
        prompt=as_text(get("prompt")),
        negative_prompt=as_text(get("negative")),
        model=model_name(get("model")),
        sampler=as_text(get("sampler")),
        steps=as_int(get("steps")),
        cfg=as_float(get("cfg")),
        seed=as_int(get("seed")),
        width=as_int(get("width")),
        height=as_int(get("height")),
        loras=merge_loras(loras),
        raw=raw,
    )


def parse_tensorart(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """TensorArt's `generation_data`: prompt, negativePrompt, cfgScale, baseModel {modelFileName, hash}."""
    base = _obj(data.get("baseModel"))
    loras = []
    for item in data.get("models") or []:
        if isinstance(item, dict) and str(item.get("type", "")).upper() == "LORA":
            loras.append(
                Lora(str(item.get("modelFileName") or item.get("label") or ""), as_float(item.get("weight")))
            )
    sampler, scheduler = split_sampler(as_text(data.get("samplerName") or data.get("sampler")))
    prompt = as_text(data.get("prompt"))
    return GenerationRecord(
        generator="tensorart",
        prompt=prompt,
        negative_prompt=as_text(data.get("negativePrompt")),
        model=model_name(base.get("modelFileName")),
        model_hash=as_text(base.get("hash")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(data.get("steps")),
        cfg=as_float(data.get("cfgScale")),
        seed=as_int(data.get("seed")),
        width=as_int(data.get("width")),
        height=as_int(data.get("height")),
        loras=merge_loras([lora for lora in loras if lora.name], prompt_loras(prompt)),
        raw=raw,
    )


def parse_stability_matrix(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Stability Matrix Inference's `parameters-json`: PositivePrompt, NegativePrompt, ModelName, CfgScale…"""
    sampler, scheduler = split_sampler(as_text(data.get("Sampler")), as_text(data.get("Scheduler")))
    prompt = as_text(data.get("PositivePrompt"))
    return GenerationRecord(
        generator="stabilitymatrix",
        prompt=prompt,
        negative_prompt=as_text(data.get("NegativePrompt")),
        model=model_name(data.get("ModelName")),
        model_hash=as_text(data.get("ModelHash")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(data.get("Steps")),
        cfg=as_float(data.get("CfgScale")),
        seed=as_int(data.get("Seed")),
        width=as_int(data.get("Width")),
        height=as_int(data.get("Height")),
        loras=merge_loras(prompt_loras(prompt)),
        raw=raw,
    )


def is_hf_space(data: Json) -> bool:
    return "prompt" in data and ("num_inference_steps" in data or "guidance_scale" in data)


def parse_hf_space(data: Json, raw: dict[str, str]) -> GenerationRecord:
    """Gradio + diffusers Spaces: {"prompt", "negative_prompt", "resolution": "1024 x 1024", "Model", …}."""
    width, height = size_pair(data.get("resolution"))
    sampler, scheduler = split_sampler(as_text(data.get("sampler")))
    return GenerationRecord(
        generator="huggingface-spaces",
        prompt=as_text(data.get("prompt")),
        negative_prompt=as_text(data.get("negative_prompt")),
        model=model_name(data.get("Model") or data.get("model")),
        model_hash=as_text(data.get("Model hash")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(data.get("num_inference_steps")),
        cfg=as_float(data.get("guidance_scale")),
        seed=as_int(data.get("seed")),
        width=width or as_int(data.get("width")),
        height=height or as_int(data.get("height")),
        raw=raw,
    )


def _obj(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _drop_none(values: Json) -> Json:
    return {key: value for key, value in values.items() if value is not None}
