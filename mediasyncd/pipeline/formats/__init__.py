"""Which tool wrote an image, decided from its embedded texts, and the parser for each tool's format."""

from __future__ import annotations

import json
from typing import Any

from mediasyncd.pipeline.formats.a1111 import parse_a1111, split_parameters
from mediasyncd.pipeline.formats.comfyui import Graph, fill_from_graph, graph_from_text, parse_comfyui
from mediasyncd.pipeline.formats.json_apps import (
    is_easy_diffusion,
    is_hf_space,
    parse_easy_diffusion,
    parse_fooocus,
    parse_hf_space,
    parse_invokeai,
    parse_invokeai_legacy,
    parse_novelai,
    parse_ruined_fooocus,
    parse_stability_matrix,
    parse_swarmui,
    parse_tensorart,
)
from mediasyncd.pipeline.formats.midjourney import is_midjourney, parse_midjourney
from mediasyncd.pipeline.formats.xmp_embedded import parse_xmp
from mediasyncd.pipeline.record import GenerationRecord

__all__ = ["STEALTH_KEYS", "parse_texts"]

STEALTH_KEYS = ("stealth_pngcomp", "stealth_pnginfo", "stealth_rgbcomp", "stealth_rgbinfo")


def parse_texts(texts: dict[str, str]) -> GenerationRecord:
    """The normalized record for a file's embedded texts (source key -> text), kept verbatim in `raw`."""
    raw = dict(texts)
    view = _expanded(texts)
    record = _by_json_document(view, raw) or _by_text(view, raw)
    graph = _comfy_graph(view)
    if graph is not None:
        # A saver's A1111 text or a site's JSON beside the graph: the text first, the graph fills its gaps
        # (TensorArt's seed -1, LoRAs, the hires pass).
        from_graph = parse_comfyui(graph, raw)
        record = from_graph if record is None else fill_from_graph(record, from_graph)
    if record is None:
        record = _by_xmp(view, raw)
    return record or GenerationRecord(raw=raw)


def _expanded(texts: dict[str, str]) -> dict[str, str]:
    """The texts plus those nested in another one: a stealth pnginfo payload (NovelAI's JSON object of
    its text chunks, or an A1111 `parameters` text) and NovelAI's EXIF UserComment (the same object)."""
    view = dict(texts)
    for key in STEALTH_KEYS:
        if key in texts:
            nested = _json_object(texts[key])
            if nested is None:
                view.setdefault("parameters", texts[key])
            else:
                _merge(view, nested)
    comment = _json_object(texts.get("UserComment"))
    if comment is not None and "Comment" in comment and _is_novelai(comment, texts):
        _merge(view, comment)
    elif comment is not None and isinstance(comment.get("prompt"), dict):
        # Save Image Extended (JPEG/WebP/AVIF): {"prompt": graph, "workflow": …} in UserComment.
        _merge(view, {key: comment[key] for key in ("prompt", "workflow") if key in comment})
    return view


def _is_novelai(nested: dict[str, Any], texts: dict[str, str]) -> bool:
    return str(nested.get("Software") or texts.get("Software", "")).startswith("NovelAI")


def _merge(view: dict[str, str], nested: dict[str, Any]) -> None:
    for key, value in nested.items():
        if value is not None:
            view.setdefault(str(key), value if isinstance(value, str) else json.dumps(value))


def _by_json_document(texts: dict[str, str], raw: dict[str, str]) -> GenerationRecord | None:
    if texts.get("Software", "").startswith("NovelAI") and "Comment" in texts:
        return parse_novelai(texts, _json_object(texts["Comment"]) or {}, raw)
    if (data := _json_object(texts.get("invokeai_metadata"))) is not None:
        return parse_invokeai(data, raw)
    if (data := _json_object(texts.get("sd-metadata"))) is not None:
        return parse_invokeai_legacy(data, raw)
    if (data := _json_object(texts.get("parameters-json"))) is not None:
        return parse_stability_matrix(data, raw)
    if (data := _json_object(texts.get("generation_data", "").rstrip("\0"))) is not None:
        return parse_tensorart(data, raw)
    data = _json_object(texts.get("parameters") or texts.get("UserComment"))
    if data is None:
        return None
    if "sui_image_params" in data:
        return parse_swarmui(data, raw)
    if str(data.get("software", "")).lower().startswith("ruinedfooocus"):
        return parse_ruined_fooocus(data, raw)
    if is_easy_diffusion(data):
        return parse_easy_diffusion(data, raw)
    if "base_model" in data or "fooocus_scheme" in texts:
        return parse_fooocus(data, raw)
    if is_hf_space(data):
        return parse_hf_space(data, raw)
    return None


def _by_text(texts: dict[str, str], raw: dict[str, str]) -> GenerationRecord | None:
    parameters = texts.get("parameters")
    if parameters is not None and _json_object(parameters) is None:
        return parse_a1111(parameters, raw)
    # A1111 text in EXIF UserComment (JPEG/WebP), or in a comment: AnimateDiff for A1111/Forge writes its
    # infotext as the `Comment` of MP4/WebM containers and GIFs.
    for key in ("UserComment", "comment", "Comment"):
        comment = texts.get(key)
        if comment is not None and split_parameters(comment)[2]:
            return parse_a1111(comment, raw)
    if is_easy_diffusion(texts):
        return parse_easy_diffusion(dict(texts), raw)
    if is_midjourney(texts):
        return parse_midjourney(texts, raw)
    return None


def _by_xmp(texts: dict[str, str], raw: dict[str, str]) -> GenerationRecord | None:
    packet = texts.get("XML:com.adobe.xmp") or texts.get("XMP")
    if packet is not None:
        return parse_xmp(packet, raw)
    return None


def _comfy_graph(texts: dict[str, str]) -> Graph | None:
    """ComfyUI's graph: PNG `prompt` text, or "prompt:{…}" in an EXIF tag (its WebP/animated outputs)."""
    if "prompt" in texts:
        return graph_from_text(texts["prompt"])
    for key in ("Model", "Make", "ImageDescription"):
        label, _, body = texts.get(key, "").partition(":")
        if label.strip().lower() == "prompt":
            return graph_from_text(body)
    return None


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text or not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
