"""A tool's settings layout as data: which of its keys feed which record field, and one function that reads
any layout into a `GenerationRecord`. Parsers keep code only for what a table cannot say (prompt syntax,
LoRA lists, hires passes) and set those fields on the record the table built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediasyncd.pipeline.record import (
    GenerationRecord,
    as_float,
    as_int,
    as_text,
    drop_none,
    model_name,
    size_pair,
)

Json = dict[str, Any]
Converter = Callable[[object], Any]
# Alternative keys in order -> the value found for them (in a JSON object, a graph, …).
Lookup = Callable[[tuple[str, ...]], object]
# (sampler, scheduler) -> (sampler, scheduler), for tools that fold the schedule into the sampler's name.
SamplerSplit = Callable[[str | None, str | None], tuple[str | None, str | None]]

FIELD_CONVERTERS: Mapping[str, Converter] = {
    "generator_version": as_text,
    "prompt": as_text,
    "negative_prompt": as_text,
    "model": model_name,
    "model_hash": as_text,
    "sampler": as_text,
    "scheduler": as_text,
    "steps": as_int,
    "cfg": as_float,
    "seed": as_int,
    "denoise": as_float,
    "width": as_int,
    "height": as_int,
}

HIRES_CONVERTERS: Mapping[str, Converter] = {
    "upscale": as_float,
    "upscaler": as_text,
    "steps": as_int,
    "denoising_strength": as_float,
    "resize": as_text,
    "sampler": as_text,
}


@dataclass(frozen=True)
class KeyTable:
    """Record field -> the tool's key, or alternative keys tried in order ("a.b" reaches into an object).

    Each value goes through its field's converter (`FIELD_CONVERTERS`) unless `convert` names another.
    `size` is a key holding both dimensions ("832x1216"), preferred over separate width/height keys;
    `split` separates a schedule folded into the sampler name ("DPM++ 2M Karras").
    """

    generator: str | None
    fields: Mapping[str, str | tuple[str, ...]]
    size: str | None = None
    split: SamplerSplit | None = None
    convert: Mapping[str, Converter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = (set(self.fields) | set(self.convert)) - set(FIELD_CONVERTERS)
        if unknown:
            raise ValueError(f"not record fields: {sorted(unknown)}")

    def record(self, source: Json | Lookup, raw: dict[str, str]) -> GenerationRecord:
        """The record `source` gives: a JSON object (read as `first_truthy`) or any other lookup."""
        lookup = first_truthy(source) if isinstance(source, dict) else source
        values: dict[str, Any] = {
            name: self.convert.get(name, FIELD_CONVERTERS[name])(lookup(_alternatives(keys)))
            for name, keys in self.fields.items()
        }
        if self.size is not None:
            width, height = size_pair(lookup((self.size,)))
            values["width"] = width or values.get("width", width)
            values["height"] = height or values.get("height", height)
        if self.split is not None:
            values["sampler"], values["scheduler"] = self.split(
                values.get("sampler"), values.get("scheduler")
            )
        return GenerationRecord(generator=self.generator, raw=raw, **values)


def first_truthy(data: Json) -> Lookup:
    """Keys read like `data.get(a) or data.get(b)`; "a.b" is `data["a"]["b"]`, None where not an object."""

    def lookup(keys: tuple[str, ...]) -> object:
        value: object = None
        for key in keys:
            value = data
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value:
                return value
        return value

    return lookup


def first_present(data: Json) -> Lookup:
    """Keys read as "the first key the object has", whatever its value (flat objects only)."""

    def lookup(keys: tuple[str, ...]) -> object:
        return next((data[key] for key in keys if key in data), None)

    return lookup


def read_hires(data: Json, keys: Mapping[str, str]) -> dict[str, Any]:
    """A hires pass's settings (hires field -> the tool's key), converted, the missing ones left out."""
    return drop_none({name: HIRES_CONVERTERS[name](data.get(key)) for name, key in keys.items()})


def _alternatives(keys: str | tuple[str, ...]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else keys
