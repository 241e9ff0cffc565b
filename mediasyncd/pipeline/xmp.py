"""XMP sidecars: a pure builder from a `GenerationRecord`, and an atomic writer that never replaces a
sidecar some other tool (darktable, digiKam) wrote.

The packet carries Dublin Core (description, subject), `xmp:CreatorTool`, the IPTC Photo Metadata 2025.1
AI fields and a `mediasyncd` namespace for the remaining settings and the raw sources. XML 1.0 cannot hold
most C0 control characters at all, so those (and non-characters) become U+FFFD; the verbatim text stays
in the state DB and in the image itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

from mediasyncd.pipeline.options import XmpNaming
from mediasyncd.pipeline.record import GenerationRecord

MEDIASYNCD_NS = "https://mediasyncd.dev/ns/xmp/1.0/"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "mediasyncd": MEDIASYNCD_NS,
}


class ForeignSidecar(Exception):
    """A sidecar exists that mediasyncd did not write; it is left alone."""


def sidecar_path(image: Path, naming: XmpNaming) -> Path:
    """`photo.png.xmp` ("ext", the digiKam/darktable/Immich default) or `photo.xmp` ("stem")."""
    return image.with_name(image.name + ".xmp") if naming == "ext" else image.with_suffix(".xmp")


def xml_text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


def build_xmp(record: GenerationRecord) -> str:
    """The sidecar document for `record` (pure; same record, same bytes)."""
    props: list[str] = []
    if record.prompt is not None:
        props.append(_alt("dc:description", record.prompt))
    keywords = [k for k in (record.generator, record.model, *(lora.name for lora in record.loras)) if k]
    if keywords:
        props.append(_bag("dc:subject", keywords))
    tool = " ".join(part for part in (record.generator, record.generator_version) if part)
    c2pa = record.c2pa or {}
    claimed = c2pa.get("claim_generator") if isinstance(c2pa.get("claim_generator"), str) else None
    props.append(_simple("xmp:CreatorTool", tool or claimed))
    # IPTC 2025.1: what the C2PA manifest declares wins over our default ("made by a trained model").
    source_type = c2pa.get("digital_source_type")
    props.append(
        _simple(
            "Iptc4xmpExt:DigitalSourceType",
            source_type if isinstance(source_type, str) else TRAINED_ALGORITHMIC_MEDIA,
        )
    )
    props.append(_simple("Iptc4xmpExt:AIPromptInformation", record.prompt))
    props.append(_simple("Iptc4xmpExt:AISystemUsed", record.generator or claimed))
    props.append(_simple("Iptc4xmpExt:AISystemVersionUsed", record.generator_version))
    settings = {
        "NegativePrompt": record.negative_prompt,
        "Model": record.model,
        "ModelHash": record.model_hash,
        "Sampler": record.sampler,
        "Scheduler": record.scheduler,
        "Steps": record.steps,
        "CFGScale": record.cfg,
        "Seed": record.seed,
        "Denoise": record.denoise,
        "Width": record.width,
        "Height": record.height,
        "PixelWidth": record.pixel_width,
        "PixelHeight": record.pixel_height,
        "Hires": json.dumps(record.hires, ensure_ascii=False, sort_keys=True) if record.hires else None,
        "C2PAClaimGenerator": claimed,
        "C2PAManifest": c2pa.get("manifest") if isinstance(c2pa.get("manifest"), str) else None,
    }
    props.extend(_simple(f"mediasyncd:{name}", None if v is None else str(v)) for name, v in settings.items())
    if record.loras:
        props.append(_bag("mediasyncd:Loras", [_lora_text(lora.name, lora.weight) for lora in record.loras]))
    if record.characters:
        props.append(_characters(record))
    airs = [resource.air for resource in record.resources if resource.air]
    if airs:
        props.append(_bag("mediasyncd:Resources", airs))
    if record.raw:
        props.append(_raw_sources(record.raw))
    xmlns = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _NAMESPACES.items())
    body = "\n".join(p for p in props if p)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="mediasyncd">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" {xmlns}>\n'
        f"{body}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    )


def _lora_text(name: str, weight: float | None) -> str:
    return name if weight is None else f"{name}:{weight:g}"


def _simple(name: str, value: str | None) -> str:
    return "" if value is None else f"   <{name}>{xml_text(value)}</{name}>"


def _alt(name: str, value: str) -> str:
    return f'   <{name}><rdf:Alt><rdf:li xml:lang="x-default">{xml_text(value)}</rdf:li></rdf:Alt></{name}>'


def _bag(name: str, values: list[str]) -> str:
    items = "".join(f"<rdf:li>{xml_text(v)}</rdf:li>" for v in values)
    return f"   <{name}><rdf:Bag>{items}</rdf:Bag></{name}>"


def _characters(record: GenerationRecord) -> str:
    """NovelAI v4 characters as a Seq of {Prompt, NegativePrompt} structures (their order matters)."""
    items = "".join(
        '<rdf:li rdf:parseType="Resource">'
        + "".join(
            f"<mediasyncd:{name}>{xml_text(value)}</mediasyncd:{name}>"
            for name, value in (("Prompt", c.prompt), ("NegativePrompt", c.negative_prompt))
            if value is not None
        )
        + "</rdf:li>"
        for c in record.characters
    )
    return f"   <mediasyncd:Characters><rdf:Seq>{items}</rdf:Seq></mediasyncd:Characters>"


def _raw_sources(raw: dict[str, str]) -> str:
    """Raw sources as a Bag of {Key, Value} structures (source keys are not valid XML names)."""
    items = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<mediasyncd:RawKey>{xml_text(key)}</mediasyncd:RawKey>"
        f"<mediasyncd:RawValue>{xml_text(value)}</mediasyncd:RawValue>"
        "</rdf:li>"
        for key, value in raw.items()
    )
    return f"   <mediasyncd:Raw><rdf:Bag>{items}</rdf:Bag></mediasyncd:Raw>"


_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_SPILLED = re.compile(r"   <mediasyncd:Spilled>.*?</mediasyncd:Spilled>\n", re.DOTALL)
MAX_SIDECAR_BYTES = 64 * 1024 * 1024


def spill_block(name: str, texts: Mapping[str, str]) -> str:
    """The `mediasyncd:Spilled` property: all the generation texts of the file `name`, verbatim, when it
    cannot hold them itself (a re-encode: JPEG's 64 KB EXIF against a large ComfyUI workflow, or texts
    WebP/AVIF/JPEG have no place for); `inspect` reads them instead of the file's own (pure)."""
    items = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<mediasyncd:SpilledFor>{xml_text(name)}</mediasyncd:SpilledFor>"
        f"<mediasyncd:RawKey>{xml_text(key)}</mediasyncd:RawKey>"
        f"{_verbatim(value)}"
        "</rdf:li>"
        for key, value in texts.items()
    )
    return f"   <mediasyncd:Spilled><rdf:Bag>{items}</rdf:Bag></mediasyncd:Spilled>\n"


def _verbatim(value: str) -> str:
    """A text as XML keeps it; one with characters XML cannot hold (a NUL a tool left) as base64."""
    if _NOT_XML.search(value) is None:
        return f"<mediasyncd:RawValue>{escape(value)}</mediasyncd:RawValue>"
    encoded = base64.b64encode(value.encode("utf-8", errors="surrogatepass")).decode("ascii")
    return f"<mediasyncd:RawValueBase64>{encoded}</mediasyncd:RawValueBase64>"


def with_spill(document: str, block: str) -> str:
    """`document` with `block` (a `spill_block`) in place of any it had."""
    document = _SPILLED.sub("", document)
    if not block:
        return document
    at = document.index("  </rdf:Description>")
    return document[:at] + block + document[at:]


def read_spilled(image: Path) -> dict[str, str]:
    """The texts spilled for `image` into its sidecar (either naming), by source key; {} when none.
    Blocking. Only entries naming this very file count: a stem-named sidecar may belong to a sibling."""
    for sidecar in (image.with_name(image.name + ".xmp"), image.with_suffix(".xmp")):
        try:
            if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
                continue
            data = sidecar.read_bytes()
        except OSError:
            continue
        if b"mediasyncd:Spilled" not in data:
            continue
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            continue
        found: dict[str, str] = {}
        ns = "{" + MEDIASYNCD_NS + "}"
        for spilled in root.iter(ns + "Spilled"):
            for item in spilled.iter(f"{{{_RDF}}}li"):
                owner, key, value, packed = (
                    item.findtext(ns + tag) for tag in ("SpilledFor", "RawKey", "RawValue", "RawValueBase64")
                )
                if packed is not None:
                    try:
                        value = base64.b64decode(packed).decode("utf-8", errors="surrogatepass")
                    except ValueError:
                        value = None
                if owner == image.name and key and value is not None:
                    found[key] = value
        if found:
            return found
    return {}


_RATING = re.compile(r"""xmp:Rating(?:="|'|>)\s*(-?\d+(?:\.\d+)?)""")


def keep_rating(document: str, existing: str) -> str:
    """`document` with the `xmp:Rating` a photo tool (digiKam, darktable, exiftool) set in our sidecar."""
    found = _RATING.search(existing)
    if found is None or "<xmp:Rating>" in document:
        return document
    rating = f"   <xmp:Rating>{found.group(1)}</xmp:Rating>\n"
    at = document.index("  </rdf:Description>")
    return document[:at] + rating + document[at:]


TEMP_AGE = 60.0  # seconds after which a temporary in the temp dir is a crash's leftover


def write_sidecar(path: Path, document: str, mode: int = 0o644, temp_dir: Path | None = None) -> bool:
    """Write `document` to `path` atomically (with `mode`); False when the same document is already there.

    The bytes go to a temporary file first: in `temp_dir` (the library's `.mediasyncd/tmp`) when that is
    on the same filesystem as `path`, so that a process killed mid-write leaves nothing beside the image
    (`sweep_temps` removes it later); else beside `path`. Raises ForeignSidecar when `path` exists and was
    not written by mediasyncd.
    """
    data = document.encode("utf-8")
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if MEDIASYNCD_NS.encode() not in existing:
            raise ForeignSidecar(f"{path} exists and was not written by mediasyncd; left unchanged")
        old = existing.decode("utf-8", errors="replace")
        kept = _SPILLED.search(old)
        if kept and not _SPILLED.search(document):  # texts a compressed file could not hold stay
            document = with_spill(document, kept.group(0))
        data = keep_rating(document, old).encode("utf-8")
        if existing == data:
            return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_temp_dir_for(path, temp_dir))
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _temp_dir_for(path: Path, temp_dir: Path | None) -> Path:
    if temp_dir is not None:
        try:
            temp_dir.mkdir(parents=True, exist_ok=True)
            if os.stat(temp_dir).st_dev == os.stat(path.parent).st_dev:
                return temp_dir
        except OSError:
            pass
    return path.parent


def sweep_temps(temp_dir: str, older_than: float = TEMP_AGE) -> int:
    """Remove temporaries a killed process left in `temp_dir` (none is written for that long); the count."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(temp_dir))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.name.endswith(".tmp") and entry.is_file() and now - entry.stat().st_mtime > older_than:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed
