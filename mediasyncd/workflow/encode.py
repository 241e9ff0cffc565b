"""Re-encoding an image with Pillow (WebP, AVIF, JPEG) while carrying its generation metadata, so that
`mediasyncd inspect` reads the same fields from the copy as from the original.

Where the metadata goes in the new file (the conventions the generators themselves use there):
- A1111/Forge `parameters` -> EXIF UserComment ("UNICODE\\0" + UTF-16BE), as A1111 writes JPEG/WebP;
- ComfyUI `prompt` / `workflow` -> EXIF Model "prompt:{...}" / Make "workflow:{...}", as ComfyUI's WebP
  saver does;
- EXIF and XMP the original already carried (JPEG/WebP sources) are kept as they are.
JPEG holds at most 64 KB of EXIF: when the metadata is larger, the `workflow` graph is left out first
(then the `prompt` graph, then the parameters). Other tools keep their texts where WebP, AVIF and JPEG
have no place (InvokeAI's `invokeai_metadata`, NovelAI's `Comment`, Easy Diffusion's keys, stealth
pnginfo in the alpha channel a lossy copy loses). So the copy is read back: when it does not give the
same record as the original, or something was left out, all of the original's texts are `spilled`, for
the stage to write into the copy's XMP sidecar, where `inspect` reads them (`pipeline.xmp.read_spilled`).

Runs in a worker thread: everything here blocks.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mediasyncd.pipeline.containers import read_embedded
from mediasyncd.pipeline.metadata import read_texts

EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
MAKE = 0x010F
MODEL = 0x0110
JPEG_EXIF_MAX = 65_000
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".avif"})
EXTENSIONS = {"webp": "webp", "avif": "avif", "jpeg": "jpg"}
PIL_FORMATS = {"webp": "WEBP", "avif": "AVIF", "jpeg": "JPEG"}


@dataclass(frozen=True)
class Encoded:
    data: bytes
    spilled: dict[str, str] = field(
        default_factory=dict
    )  # all the original's texts, when the copy fails them
    dropped: tuple[str, ...] = ()  # what the format could not hold at all (JPEG's EXIF limit)


def record_view(texts: dict[str, str]) -> dict[str, object]:
    """What a file's texts tell `inspect`, without where they came from (raw sources, pixel size)."""
    doc = read_texts(texts)[0].as_json("", None)
    return {k: v for k, v in doc.items() if k not in ("raw", "path", "error", "pixel_width", "pixel_height")}


def texts_of(data: bytes, fmt: str) -> dict[str, str]:
    """The texts `inspect` reads from an encoded file (written to a temporary file to be read like one)."""
    with tempfile.NamedTemporaryFile(suffix="." + EXTENSIONS[fmt]) as tmp:
        tmp.write(data)
        tmp.flush()
        return dict(read_embedded(Path(tmp.name)).texts)


def build_exif(
    texts: dict[str, str], base: Image.Exif | None = None, *, drop: tuple[str, ...] = ()
) -> Image.Exif:
    """The EXIF block carrying the generator texts (pure: no I/O)."""
    exif = base if base is not None else Image.Exif()
    parameters = texts.get("parameters") or texts.get("UserComment")
    if parameters and "parameters" not in drop:
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + parameters.encode("utf-16-be")
    prompt = texts.get("prompt")
    if prompt and "prompt" not in drop:
        exif[MODEL] = f"prompt:{prompt}"
    workflow = texts.get("workflow")
    if workflow and "workflow" not in drop:
        exif[MAKE] = f"workflow:{workflow}"
    return exif


def encode(source: Path, fmt: str, quality: int) -> Encoded:
    """`source` re-encoded as `fmt` ("webp", "avif", "jpeg") at `quality`, with its metadata."""
    texts = dict(read_embedded(source).texts)
    with Image.open(source) as image:
        image.load()
        base_exif = image.getexif() if image.format in ("JPEG", "WEBP", "AVIF") else None
        xmp = image.info.get("xmp")
        pixels: Image.Image = image
        if fmt == "jpeg" and image.mode not in ("RGB", "L"):
            pixels = image.convert("RGB")
        elif image.mode not in ("RGB", "RGBA", "L", "LA"):
            pixels = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        dropped: tuple[str, ...] = ()
        for drop in ((), ("workflow",), ("workflow", "prompt")):
            exif = build_exif(texts, base_exif, drop=drop).tobytes()
            if fmt != "jpeg" or len(exif) <= JPEG_EXIF_MAX:
                dropped = drop
                break
            base_exif = None
        else:
            exif = b""
            dropped = ("workflow", "prompt", "parameters")
        out = io.BytesIO()
        options: dict[str, object] = {"quality": quality, "exif": exif}
        if xmp:
            options["xmp"] = xmp
        if fmt == "webp":
            options["method"] = 4
        pixels.save(out, PIL_FORMATS[fmt], **options)
    sources = {"parameters": texts.get("parameters") or texts.get("UserComment")}
    sources |= {"prompt": texts.get("prompt"), "workflow": texts.get("workflow")}
    dropped = tuple(key for key in dropped if sources[key])
    data = out.getvalue()
    if dropped or (texts and record_view(texts_of(data, fmt)) != record_view(texts)):
        return Encoded(data, texts, dropped)
    return Encoded(data)


def write_partial(data: bytes, partial: Path) -> str:
    """Write `data` to `partial`, fsync'd, read back and checked to hash right and decode; its SHA-256."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    written = partial.read_bytes()
    digest = hashlib.sha256(written).hexdigest()
    if digest != hashlib.sha256(data).hexdigest():
        raise OSError(f"the copy written to {partial} does not verify")
    with Image.open(io.BytesIO(written)) as check:
        check.verify()
    return digest


def partial_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.mediasyncd-partial")


def write_verified(data: bytes, target: Path) -> str:
    """Write `data` to `target` through a verified partial (`write_partial`), then rename; its SHA-256.
    The compressed area is the stage's own: an older copy there is replaced."""
    partial = partial_of(target)
    try:
        digest = write_partial(data, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return digest
