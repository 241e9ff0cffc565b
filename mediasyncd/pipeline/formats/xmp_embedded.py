"""Generation metadata carried in an embedded XMP packet: Draw Things (a JSON document in exif:UserComment)
and any tool writing the IPTC 2025.1 AI fields or a described, AI-sourced image (dc:description).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

from mediasyncd.pipeline.formats.keytable import KeyTable
from mediasyncd.pipeline.record import GenerationRecord, Lora, as_float, as_list, merge_loras, split_sampler

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# Draw Things' settings JSON: {"c": prompt, "uc": negative, "sampler": "DPM++ 2M Karras", "size": "768x512", …}
_DRAW_THINGS = KeyTable(
    "drawthings",
    {
        "prompt": "c",
        "negative_prompt": "uc",
        "model": "model",
        "sampler": "sampler",
        "steps": "steps",
        "cfg": "scale",
        "seed": "seed",
    },
    size="size",
    split=split_sampler,
)


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
    """Draw Things, its LoRAs as "lora": [{"file", "weight"}]."""
    loras = [
        Lora(str(item.get("file") or item.get("model") or ""), as_float(item.get("weight")))
        for item in as_list(data.get("lora"))
        if isinstance(item, dict)
    ]
    return replace(_DRAW_THINGS.record(data, raw), loras=merge_loras([lora for lora in loras if lora.name]))
