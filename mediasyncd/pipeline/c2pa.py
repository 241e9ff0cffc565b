"""C2PA manifests (ChatGPT, Gemini, Firefly, Adobe): recognised, summarised, never trusted or verified.

A manifest store is a JUMBF superbox (ISO 19566-5): boxes of `LBox TBox payload`; a `jumb` superbox starts
with a `jumd` description (a 16-byte type UUID, a toggles byte, a NUL-terminated label) and holds content
boxes, here `cbor` ones. Files carry it in JPEG APP11 segments ("JP" + box instance + sequence number),
a PNG `caBX` chunk, or a WebP `C2PA` chunk. From the active (last) manifest we keep the claim generator
(`claim_generator`, or `claim_generator_info[0]` name/version in claim v2) and the IPTC digital source
type of its `c2pa.actions` assertion. Any damage yields `{"error": …}` beside what was read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MAX_STORE_BYTES = 16 * 1024 * 1024
_MAX_DEPTH = 32


class C2paError(Exception):
    """The manifest store is malformed."""


@dataclass
class _Box:
    label: str | None
    cbor: list[bytes] = field(default_factory=list)
    children: list[_Box] = field(default_factory=list)


def jpeg_store(segments: list[bytes]) -> bytes | None:
    """The JUMBF store from a JPEG's APP11 payloads (in file order), reassembled by sequence number."""
    packets: dict[int, list[tuple[int, bytes]]] = {}
    for data in segments:
        if len(data) < 8 or data[:2] != b"JP":
            continue
        instance, sequence = struct.unpack(">HI", data[2:8])
        packets.setdefault(instance, []).append((sequence, data[8:]))
    for parts in packets.values():
        parts.sort(key=lambda part: part[0])
        body = parts[0][1] + b"".join(payload[8:] for _, payload in parts[1:])
        if body[4:8] == b"jumb":
            return body
    return None


def summarize(store: bytes) -> dict[str, Any]:
    """{"claim_generator", "digital_source_type", "manifest"} of the active manifest; "error" if damaged."""
    summary: dict[str, Any] = {"claim_generator": None, "digital_source_type": None, "manifest": None}
    try:
        roots = _boxes(store[:MAX_STORE_BYTES], 0)
        manifests = [child for root in roots if root.label == "c2pa" for child in root.children]
        if not manifests:
            raise C2paError("no manifest in the C2PA store")
        active = manifests[-1]
        summary["manifest"] = active.label
        for box in _walk(active):
            if box.label in ("c2pa.claim", "c2pa.claim.v2"):
                summary["claim_generator"] = _generator(_first_cbor(box))
            elif box.label is not None and box.label.split("__")[0] in ("c2pa.actions", "c2pa.actions.v2"):
                summary["digital_source_type"] = summary["digital_source_type"] or _source_type(
                    _first_cbor(box)
                )
    except (C2paError, CborError, struct.error, UnicodeDecodeError) as error:
        summary["error"] = f"unreadable C2PA manifest: {error}"
    return summary


def _boxes(data: bytes, depth: int) -> list[_Box]:
    if depth > _MAX_DEPTH:
        raise C2paError("JUMBF nested too deeply")
    found: list[_Box] = []
    at = 0
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if length == 1:
            if at + 16 > len(data):
                raise C2paError("truncated JUMBF box")
            length, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif length == 0:
            length = len(data) - at
        if length < header or at + length > len(data):
            raise C2paError(f"JUMBF box {kind!r} runs past its container")
        payload = data[at + header : at + length]
        if kind == b"jumb":
            found.append(_superbox(payload, depth))
        at += length
    return found


def _superbox(payload: bytes, depth: int) -> _Box:
    inner = _raw_boxes(payload)
    if not inner or inner[0][0] != b"jumd":
        raise C2paError("JUMBF superbox without a description box")
    description = inner[0][1]
    label = None
    if len(description) > 17 and description[16] & 0x02:
        label = description[17:].split(b"\0", 1)[0].decode("utf-8")
    box = _Box(label)
    for kind, content in inner[1:]:
        if kind == b"cbor":
            box.cbor.append(content)
        elif kind == b"jumb":
            box.children.append(_superbox(content, depth + 1))
    return box


def _raw_boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes = []
    at = 0
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if length == 0:
            length = len(data) - at
        if length < 8 or at + length > len(data):
            raise C2paError(f"JUMBF box {kind!r} runs past its container")
        boxes.append((kind, data[at + 8 : at + length]))
        at += length
    return boxes


def _walk(box: _Box) -> list[_Box]:
    out = [box]
    for child in box.children:
        out += _walk(child)
    return out


def _first_cbor(box: _Box) -> Any:
    return decode_cbor(box.cbor[0]) if box.cbor else None


def _generator(claim: Any) -> str | None:
    if not isinstance(claim, dict):
        return None
    if isinstance(claim.get("claim_generator"), str):
        return str(claim["claim_generator"])
    info = claim.get("claim_generator_info")
    first = info[0] if isinstance(info, list) and info else info
    if isinstance(first, dict) and isinstance(first.get("name"), str):
        version = first.get("version")
        return f"{first['name']}/{version}" if isinstance(version, str) and version else str(first["name"])
    return None


def _source_type(actions: Any) -> str | None:
    items = actions.get("actions") if isinstance(actions, dict) else None
    for action in items if isinstance(items, list) else []:
        if isinstance(action, dict) and isinstance(action.get("digitalSourceType"), str):
            return str(action["digitalSourceType"])
    return None


# -- a small, bounded CBOR decoder (RFC 8949): enough for claims and assertions --------------------------


class CborError(Exception):
    """Not well-formed CBOR (or beyond our bounds)."""


def decode_cbor(data: bytes) -> Any:
    value, _ = _item(data, 0, 0)
    return value


def _item(data: bytes, at: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH:
        raise CborError("nested too deeply")
    if at >= len(data):
        raise CborError("truncated")
    major, info = data[at] >> 5, data[at] & 0x1F
    at += 1
    if major == 7:
        return _simple(data, at, info)
    if info == 31:
        raise CborError("indefinite lengths are not used by C2PA")
    count, at = _argument(data, at, info)
    if major == 0:
        return count, at
    if major == 1:
        return -1 - count, at
    if major in (2, 3):
        if at + count > len(data):
            raise CborError("string runs past the end")
        raw = data[at : at + count]
        return (raw if major == 2 else raw.decode("utf-8")), at + count
    if count > len(data):
        raise CborError("container longer than the data")
    if major == 4:
        items = []
        for _ in range(count):
            value, at = _item(data, at, depth + 1)
            items.append(value)
        return items, at
    if major == 5:
        mapping: dict[Any, Any] = {}
        for _ in range(count):
            key, at = _item(data, at, depth + 1)
            value, at = _item(data, at, depth + 1)
            if isinstance(key, str | int):
                mapping[key] = value
        return mapping, at
    return _item(data, at, depth + 1)  # 6: a tag; its content stands for it


def _argument(data: bytes, at: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, at
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info not in sizes or at + sizes[info] > len(data):
        raise CborError("bad length")
    size = sizes[info]
    return int.from_bytes(data[at : at + size], "big"), at + size


def _simple(data: bytes, at: int, info: int) -> tuple[Any, int]:
    simple = {20: False, 21: True, 22: None, 23: None}
    if info in simple:
        return simple[info], at
    formats = {25: (">e", 2), 26: (">f", 4), 27: (">d", 8)}
    if info in formats and at + formats[info][1] <= len(data):
        fmt, size = formats[info]
        return struct.unpack(fmt, data[at : at + size])[0], at + size
    if info == 24 and at < len(data):
        return None, at + 1
    raise CborError("bad simple value")
