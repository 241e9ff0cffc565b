"""Images carrying a C2PA manifest store, laid out as C2PA signers write them (unsigned: we never verify).

Sources followed:
- C2PA Technical Specification 2.1, §11.1 (the manifest store is a JUMBF superbox labelled "c2pa" whose
  children are manifests, each holding "c2pa.assertions", "c2pa.claim"/"c2pa.claim.v2" and
  "c2pa.signature"), §A.3 (embedding: JPEG APP11 segments, PNG `caBX` chunk before IDAT, WebP `C2PA`
  chunk), and the claim / `c2pa.actions` CBOR maps (`claim_generator` in claim v1,
  `claim_generator_info: [{name, version}]` in v2, `actions: [{action, digitalSourceType}]`).
- contentauth/c2pa-rs `sdk/src/asset_handlers/jpeg_io.rs`: APP11 packets are "JP" (common identifier),
  a 2-byte box instance, a 4-byte sequence number from 1, then the JUMBF bytes; continuation packets
  repeat the superbox's LBox/TBox first.
- ISO/IEC 19566-5 (JUMBF): `jumd` = 16-byte type UUID, toggles (0x03: requestable, label present), label.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from PIL import Image

from tests.pipeline.samples import insert_chunk

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_UUID_TAIL = bytes.fromhex("00110010800000AA00389B71")


def cbor(value: Any) -> bytes:
    """RFC 8949 deterministic encoding of str, bytes, int, bool, None, list and dict."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError(n)

    if value is None:
        return b"\xf6"
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return head(3, len(raw)) + raw
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(item) for item in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(type(value))


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def superbox(uuid4cc: bytes, label: str, *contents: bytes) -> bytes:
    description = box(b"jumd", uuid4cc + _UUID_TAIL + b"\x03" + label.encode() + b"\0")
    return box(b"jumb", description + b"".join(contents))


def cbor_box(label: str, value: Any) -> bytes:
    return superbox(b"cbor", label, box(b"cbor", cbor(value)))


def store(claim: dict[str, Any], source_type: str | None = TRAINED, *, v2: bool = False) -> bytes:
    """A manifest store with one manifest: an actions assertion, a claim and an (empty) signature."""
    action: dict[str, Any] = {"action": "c2pa.created"}
    if source_type is not None:
        action["digitalSourceType"] = source_type
    assertions = superbox(
        b"c2as",
        "c2pa.assertions",
        cbor_box("c2pa.actions.v2" if v2 else "c2pa.actions", {"actions": [action]}),
    )
    manifest = superbox(
        b"c2ma",
        "urn:c2pa:2f6e8d3a-1b5c-4c3e-9a6d-7f0e5b4a3c21",
        assertions,
        cbor_box("c2pa.claim.v2" if v2 else "c2pa.claim", claim),
        superbox(b"c2cs", "c2pa.signature", box(b"cbor", cbor(b""))),
    )
    return superbox(b"c2pa", "c2pa", manifest)


CHATGPT_CLAIM = {"claim_generator": "ChatGPT", "dc:format": "image/png", "instanceID": "xmp:iid:1"}
FIREFLY_CLAIM = {
    "claim_generator_info": [{"name": "Adobe Firefly", "version": "3.1.0"}],
    "instanceID": "xmp:iid:2",
}


def png_with_manifest(path: Path, manifest: bytes) -> Path:
    Image.new("RGB", (40, 30), (5, 5, 5)).save(path, "PNG")
    return insert_chunk(path, b"caBX", manifest, before=b"IDAT")


def jpeg_with_manifest(
    path: Path, manifest: bytes, packet: int = 120, size: tuple[int, int] = (40, 30)
) -> Path:
    """APP11 packets of at most `packet` JUMBF bytes each, inserted after SOI."""
    Image.new("RGB", size, (5, 5, 5)).save(path, "JPEG")
    raw = path.read_bytes()
    first, rest = manifest[:packet], manifest[packet:]
    chunks = [first] + [manifest[:8] + rest[i : i + packet] for i in range(0, len(rest), packet)]
    segments = b""
    for sequence, chunk in enumerate(chunks, start=1):
        data = b"JP" + struct.pack(">HI", 1, sequence) + chunk
        segments += b"\xff\xeb" + struct.pack(">H", len(data) + 2) + data
    path.write_bytes(raw[:2] + segments + raw[2:])
    return path


def webp_with_manifest(path: Path, manifest: bytes) -> Path:
    Image.new("RGB", (40, 30), (5, 5, 5)).save(path, "WEBP")
    raw = path.read_bytes()
    chunk = b"C2PA" + struct.pack("<I", len(manifest)) + manifest + (b"\0" if len(manifest) % 2 else b"")
    body = raw[12:] + chunk
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body)
    return path
