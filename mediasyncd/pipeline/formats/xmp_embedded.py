"""Generation metadata carried in an embedded XMP packet: Draw Things (a JSON document in exif:UserComment)
and any tool writing the IPTC 2025.1 AI fields or a described, AI-sourced image (dc:description).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from mediasyncd.pipeline.record import (
    GenerationRecord,
    Lora,
    as_float,
    as_int,
    as_text,
    merge_loras,
    model_name,
    size_pair,
    split_sampler,
)

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def xmp_properties(packet: str) -> dict[str, str]:
    """Simple and language-alternative XMP properties as {"prefix:Name": text}; {} when unparseable."""
    if "<!DOCTYPE" in packet or "<!ENTITY" in packet:
        return {}  # never expand entities from an untrusted file
    try:
        root = ET.fromstring(packet.strip().lstrip("\ufeff"))
    except ET.ParseError:
        return {}
    prefixes = {uri: prefix for prefix, uri in NS.items()}
    found: dict[str, str] = {}
    for description in root.iter(f"{{{NS['rdf']}}}Description"):
        for name, value in description.attrib.items():
            _put(found, prefixes, name, value)
        for child in description:
            items = [li.text or "" for li in child.iter(f"{{{NS['rdf']}}}li")]
            _put(found, prefixes, child.tag, items[0] if items else (child.text or ""))
    return found


def _put(found: dict[str, str], prefixes: dict[str, str], tag: str, value: str) -> None:
    if not tag.startswith("{"):
        return
    uri, _, local = tag[1:].partition("}")
    prefix = prefixes.get(uri)
    if prefix is not None and value.strip():
        found.setdefault(f"{prefix}:{local}", value)


def parse_xmp(packet: str, raw: dict[str, str]) -> GenerationRecord | None:
    """A record from an XMP packet, or None when it says nothing about a generation."""
    props = xmp_properties(packet)
    creator = props.get("xmp:CreatorTool", "")
    comment = props.get("exif:UserComment", "")
    if comment.lstrip().startswith("{") and ("draw things" in creator.lower() or '"c"' in comment):
        try:
            data = json.loads(comment)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return parse_draw_things(data, raw)
    prompt = props.get("Iptc4xmpExt:AIPromptInformation")
    ai_sourced = props.get("Iptc4xmpExt:DigitalSourceType") == TRAINED_ALGORITHMIC_MEDIA
    if prompt is None and ai_sourced:
        prompt = props.get("dc:description")
    if prompt is None:
        return None
    system = props.get("Iptc4xmpExt:AISystemUsed") or creator or None
    return GenerationRecord(
        generator=system.lower() if system else None,
        generator_version=props.get("Iptc4xmpExt:AISystemVersionUsed"),
        prompt=prompt,
        raw=raw,
    )


def parse_draw_things(data: dict[str, Any], raw: dict[str, str]) -> GenerationRecord:
    """Draw Things: {"c": prompt, "uc": negative, "sampler": "DPM++ 2M Karras", "scale", "size", "lora"…}."""
    sampler, scheduler = split_sampler(as_text(data.get("sampler")))
    width, height = size_pair(data.get("size"))
    loras = [
        Lora(str(item.get("file") or item.get("model") or ""), as_float(item.get("weight")))
        for item in data.get("lora") or []
        if isinstance(item, dict)
    ]
    return GenerationRecord(
        generator="drawthings",
        prompt=as_text(data.get("c")),
        negative_prompt=as_text(data.get("uc")),
        model=model_name(data.get("model")),
        sampler=sampler,
        scheduler=scheduler,
        steps=as_int(data.get("steps")),
        cfg=as_float(data.get("scale")),
        seed=as_int(data.get("seed")),
        width=width,
        height=height,
        loras=merge_loras([lora for lora in loras if lora.name]),
        raw=raw,
    )
