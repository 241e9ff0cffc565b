"""ComfyUI: the API graph (`prompt`) walked from the sampler to its text encoders and checkpoint loader.

A graph maps node ids to {"class_type", "inputs"}; an input is a literal or a link [node_id, slot]. Core
node names are known, but custom nodes are everywhere, so every lookup is by *shape*: a sampler is a node
with steps and a seed or sampler name; a prompt is the first string under `text`/`text_g`/`prompt`/`string`
found walking upstream from the sampler's positive input; a checkpoint is the first `ckpt_name`/
`unet_name` walking upstream from its model input, collecting `lora_name`s on the way. What cannot be
found stays None; a malformed graph yields a record with only the raw sources.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from mediasyncd.pipeline.formats.keytable import KeyTable
from mediasyncd.pipeline.record import (
    GenerationRecord,
    Lora,
    as_float,
    as_int,
    as_text,
    drop_none,
    merge_loras,
    model_name,
    prompt_loras,
)

Graph = dict[str, dict[str, Any]]

_MAX_VISITS = 500


def _text_keys(side: str) -> tuple[str, ...]:
    """Where a text node keeps its prompt, for the "positive" or "negative" side (a wildcard processor's
    `populated_text` is the text it encoded)."""
    return (
        "populated_text",
        "text",
        "text_g",
        "prompt",
        "string",
        f"text_{side}",
        f"{side}_prompt",
        "value",
        "text_l",
    )


_TEXT_KEYS = _text_keys("positive")
_NEGATIVE_TEXT_KEYS = _text_keys("negative")
_DELIMITERS = ("delimiter", "separator")
_MODEL_KEYS = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name")
_UPSCALE_CLASSES = ("LatentUpscale", "LatentUpscaleBy", "ImageScale", "ImageScaleBy", "ImageUpscaleWithModel")
_NOT_CONDITIONING = frozenset(
    {"clip", "model", "vae", "image", "images", "pixels", "latent_image", "samples"}
)
# The base sampler's settings, each read on the sampler or upstream of it (`_Walker.value`).
_SAMPLER = KeyTable(
    "comfyui",
    {
        "sampler": "sampler_name",
        "scheduler": "scheduler",
        "steps": "steps",
        "cfg": ("cfg", "guidance"),
        "seed": ("seed", "noise_seed"),
        "denoise": "denoise",
    },
)


def graph_from_text(text: str) -> Graph | None:
    """The API graph from a `prompt` text, or None when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    graph = {str(k): v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("inputs"), dict)}
    return graph or None


def parse_comfyui(graph: Graph, raw: dict[str, str]) -> GenerationRecord:
    walker = _Walker(graph)
    samplers = walker.samplers()
    if not samplers:
        return GenerationRecord(generator="comfyui", raw=raw)
    base = samplers[0]
    final = samplers[-1]
    node = graph[base]["inputs"]
    positive = walker.text(walker.find_link(base, ("positive", "conditioning")), _TEXT_KEYS)
    negative = walker.text(walker.find_link(base, ("negative",)), _NEGATIVE_TEXT_KEYS)
    model, loras = walker.model(walker.find_link(base, ("model",)))
    width, height = walker.latent_size(base)
    return replace(
        _SAMPLER.record(lambda names: walker.value(base, names), raw),
        prompt=positive,
        negative_prompt=negative,
        model=model,
        width=width if "width" not in node else as_int(node["width"]),
        height=height if "height" not in node else as_int(node["height"]),
        hires=walker.hires(final) if final != base else None,
        loras=merge_loras(loras, prompt_loras(positive)),
    )


class _Walker:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def inputs(self, node_id: str) -> dict[str, Any]:
        node = self.graph.get(node_id)
        inputs = node.get("inputs") if node else None
        return inputs if isinstance(inputs, dict) else {}

    def class_type(self, node_id: str) -> str:
        return str(self.graph.get(node_id, {}).get("class_type", ""))

    @staticmethod
    def link(value: object) -> str | None:
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int):
            return str(value[0])
        return None

    def upstream(self, start: str | None, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        """Node ids breadth-first upstream from `start` (inclusive), bounded, cycle-safe."""
        if start is None or start not in self.graph:
            return
        seen = {start}
        queue = deque([start])
        while queue and len(seen) <= _MAX_VISITS:
            node_id = queue.popleft()
            yield node_id
            for name, value in self.inputs(node_id).items():
                target = self.link(value)
                if target is not None and target not in seen and name not in skip and target in self.graph:
                    seen.add(target)
                    queue.append(target)

    def is_sampler(self, node_id: str) -> bool:
        inputs = self.inputs(node_id)
        kind = self.class_type(node_id)
        if kind in ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"):
            return True
        has_seed = "seed" in inputs or "noise_seed" in inputs
        return "steps" in inputs and has_seed and ("positive" in inputs or "sampler_name" in inputs)

    def samplers(self) -> list[str]:
        """Sampler node ids ordered upstream first (the base pass, then refiners / hires passes)."""
        found = [node_id for node_id in self.graph if self.is_sampler(node_id)]
        depth = {node_id: sum(1 for up in self.upstream(node_id) if up in found) for node_id in found}
        return sorted(found, key=lambda node_id: (depth[node_id], _numeric(node_id)))

    def find_link(self, node_id: str, names: tuple[str, ...]) -> str | None:
        """The node feeding the first of `names` on `node_id` or upstream (a guider node, say)."""
        for current in self.upstream(node_id, skip=frozenset({"latent_image", "samples", "image"})):
            inputs = self.inputs(current)
            for name in names:
                target = self.link(inputs.get(name))
                if target is not None:
                    return target
        return None

    def value(self, node_id: str, names: tuple[str, ...]) -> Any:
        """The first literal under one of `names`, on the node or upstream of it (e.g. via RandomNoise)."""
        skip = frozenset({"latent_image", "positive", "negative", "model", "clip", "vae"})
        for current in self.upstream(node_id, skip=skip):
            inputs = self.inputs(current)
            for name in names:
                if name not in inputs:
                    continue
                target = self.link(inputs[name])
                return inputs[name] if target is None else self._literal(target, names)
        return None

    def _literal(self, node_id: str, names: tuple[str, ...]) -> Any:
        """A primitive-style node's value (seed generators, int/float/string constants)."""
        for current in self.upstream(node_id):
            inputs = self.inputs(current)
            for name in (*names, "value", "seed", "int", "float", "number"):
                if name in inputs and self.link(inputs[name]) is None:
                    return inputs[name]
        return None

    def text(self, start: str | None, keys: tuple[str, ...]) -> str | None:
        """The prompt text reached from a conditioning input; combined conditionings are joined."""
        texts: list[str] = []
        self._collect_text(start, keys, texts, set())
        return "\n".join(texts) if texts else None

    def _collect_text(
        self, node_id: str | None, keys: tuple[str, ...], out: list[str], seen: set[str]
    ) -> None:
        if node_id is None or node_id in seen or node_id not in self.graph or len(seen) > _MAX_VISITS:
            return
        seen.add(node_id)
        if self.class_type(node_id) == "ConditioningZeroOut":
            return
        inputs = self.inputs(node_id)
        for key in keys:
            if key not in inputs:
                continue
            value = inputs[key]
            target = self.link(value)
            if target is None and isinstance(value, str):
                out.append(value)
                return
            if target is not None:
                before = len(out)
                self._collect_text(target, keys, out, seen)
                if len(out) > before:
                    return
        joined: list[str] = []
        for name, value in inputs.items():
            target = self.link(value)
            if target is not None and name not in _NOT_CONDITIONING:
                self._collect_text(target, keys, joined, seen)
        # A text joiner (WAS Text Concatenate, StringConcatenate, CR Text Concatenate) joins with its own
        # delimiter; combined conditionings are listed one per line.
        delimiter = next((inputs[k] for k in _DELIMITERS if isinstance(inputs.get(k), str)), None)
        if delimiter is not None and joined:
            if inputs.get("clean_whitespace") in ("true", True):  # WAS: each part stripped first
                joined = [part.strip() for part in joined]
            out.append(delimiter.join(joined))
        else:
            out.extend(joined)

    def model(self, start: str | None) -> tuple[str | None, list[Lora]]:
        loras: list[Lora] = []
        for node_id in self.upstream(start, skip=frozenset({"clip", "positive", "negative"})):
            inputs = self.inputs(node_id)
            lora_name = as_text(inputs.get("lora_name"))
            if lora_name:
                weight = inputs.get("strength_model", inputs.get("strength", inputs.get("weight")))
                loras.append(Lora(lora_name, as_float(weight)))
            for key in _MODEL_KEYS:
                name = inputs.get(key)
                target = self.link(name)
                if target is not None:  # the widget converted to an input: a primitive or reroute feeds it
                    name = self._literal(target, (key, "string"))
                if isinstance(name, str) and name.strip():
                    return model_name(name), loras
        return None, loras

    def latent_size(self, sampler_id: str) -> tuple[int | None, int | None]:
        start = self.link(self.inputs(sampler_id).get("latent_image"))
        for node_id in self.upstream(start):
            inputs = self.inputs(node_id)
            width, height = as_int(inputs.get("width")), as_int(inputs.get("height"))
            if width and height:
                return width, height
        return None, None

    def hires(self, sampler_id: str) -> dict[str, Any] | None:
        """A second pass fed by an upscale node: its method/model, factor, steps and denoise."""
        start = self.link(self.inputs(sampler_id).get("latent_image"))
        for node_id in self.upstream(start):
            if self.is_sampler(node_id):
                break
            kind = self.class_type(node_id)
            inputs = self.inputs(node_id)
            if kind in _UPSCALE_CLASSES or "upscale_method" in inputs or "upscale_model" in inputs:
                upscaler = as_text(inputs.get("upscale_method"))
                model_link = self.link(inputs.get("upscale_model"))
                if model_link is not None:
                    upscaler = as_text(self.inputs(model_link).get("model_name")) or upscaler
                hires = {
                    "upscale": as_float(inputs.get("scale_by")),
                    "upscaler": upscaler,
                    "steps": as_int(self.value(sampler_id, ("steps",))),
                    "denoising_strength": as_float(self.value(sampler_id, ("denoise",))),
                }
                return drop_none(hires)
        return None


def _numeric(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


_FILLED = (
    "prompt",
    "negative_prompt",
    "model",
    "sampler",
    "scheduler",
    "steps",
    "cfg",
    "denoise",
    "width",
    "height",
    "hires",
)


def fill_from_graph(record: GenerationRecord, graph: GenerationRecord) -> GenerationRecord:
    """`record` (a saver's text, a site's JSON) with its gaps filled from the graph's record: missing
    fields, a placeholder seed (-1: "random", which TensorArt writes), LoRAs only the graph names."""
    filled = {name: getattr(graph, name) for name in _FILLED if getattr(record, name) is None}
    seed = graph.seed if record.seed is None or record.seed < 0 else record.seed
    return replace(record, **filled, seed=seed, loras=merge_loras(list(record.loras), list(graph.loras)))
