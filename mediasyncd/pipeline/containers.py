"""Read the text a generator embedded in an image file, without decoding its pixels.

PNG is walked chunk by chunk (tEXt, zTXt, iTXt anywhere in the file, also after IDAT); JPEG, WebP and
AVIF go through Pillow's lazy EXIF/XMP access (UserComment in its ASCII and UTF-16 forms, ComfyUI's
Make/Model tags, embedded XMP); an AVIF is told from an MP4 by its `ftyp` brand. Every problem becomes a `ContainerError` naming what was wrong and where.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from mediasyncd.pipeline.c2pa import MAX_STORE_BYTES, jpeg_store
from mediasyncd.pipeline.stealth import StealthError, read_stealth

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 16 * 1024 * 1024  # per text chunk, after decompression; larger ones are dropped
# Text keys that hold generation metadata; a PNG with none of them may carry it in stealth pnginfo.
GENERATION_KEYS = frozenset(
    {
        "parameters", "prompt", "workflow", "Comment", "invokeai_metadata", "sd-metadata",
        "generation_data", "parameters-json", "use_stable_diffusion_model", "Stable Diffusion model",
    }
)  # fmt: skip
AVIF_BRANDS = frozenset({b"avif", b"avis"})  # ISO-BMFF major brands of AVIF still images
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".mov", ".m4v", ".avi"})

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_IMAGE_DESCRIPTION = 0x010E
_MAKE = 0x010F
_MODEL = 0x0110
_SOFTWARE = 0x0131


# What Pillow's lazy readers raise on hostile bytes besides OSError (found by tests/pipeline/test_fuzz.py).
_PILLOW_FAILURES = (
    SyntaxError,
    ValueError,
    struct.error,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
)


class ContainerError(Exception):
    """The file is empty, truncated, corrupt or not an image we can read."""


@dataclass
class Embedded:
    """What one file carries: its texts by source key, pixel size, and what was dropped along the way."""

    format: str | None = None
    width: int | None = None
    height: int | None = None
    texts: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    error: str | None = None
    stealth_capable: bool = False  # a PNG with alpha or RGB channels (where stealth pnginfo may hide)
    c2pa: bytes | None = None  # a C2PA manifest store (JUMBF), not yet interpreted
    file_stat: tuple[int, int] | None = None  # size and mtime (ns) of the file read


def read_embedded(path: Path) -> Embedded:
    """Everything embedded in `path`; a damaged file yields what could be read plus `error`."""
    found = Embedded()
    try:
        stat = path.stat()
        size = stat.st_size
        found.file_stat = (size, stat.st_mtime_ns)
        if size == 0:
            raise ContainerError("empty file (0 bytes)")
        with path.open("rb") as stream:
            head = stream.read(16)
            stream.seek(0)
            if head.startswith(PNG_SIGNATURE):
                found.format = "PNG"
                _read_png(stream, size, found)
            elif head[4:8] == b"ftyp" and head[8:12] in AVIF_BRANDS:
                _read_with_pillow(stream, found)  # an ISO-BMFF still image, not a video
            elif (
                path.suffix.lower() in VIDEO_SUFFIXES
                or head[4:8] == b"ftyp"
                or head[:4] == b"\x1a\x45\xdf\xa3"
            ):
                found.format = "VIDEO"
            else:
                _read_with_pillow(stream, found)
        if found.format == "PNG" and found.stealth_capable and not GENERATION_KEYS & found.texts.keys():
            _read_stealth(path, found)
    except ContainerError as error:
        found.error = str(error)
    except OSError as error:
        found.error = f"cannot read file: {error.strerror or error}"
    return found


def _read_png(stream: BinaryIO, size: int, found: Embedded) -> None:
    stream.seek(len(PNG_SIGNATURE))
    offset = len(PNG_SIGNATURE)
    seen_iend = False
    while offset < size:
        header = stream.read(8)
        if len(header) < 8:
            raise ContainerError(f"truncated PNG: incomplete chunk header at byte {offset}")
        length, kind = struct.unpack(">I4s", header)
        name = kind.decode("latin-1")
        end = offset + 8 + length + 4
        if end > size:
            raise ContainerError(
                f"truncated PNG: chunk {name!r} at byte {offset} runs past the end of the file"
            )
        if kind == b"IHDR":
            data = stream.read(length)
            if length < 8:
                raise ContainerError("corrupt PNG: IHDR chunk too short")
            found.width, found.height = struct.unpack(">II", data[:8])
            # greyscale + alpha, RGBA; 8-bit RGB (the RGB mode's writer)
            found.stealth_capable = len(data) > 9 and (data[9] in (4, 6) or (data[9] == 2 and data[8] == 8))
            stream.seek(4, 1)
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            if length > MAX_TEXT_BYTES:
                found.dropped.append(
                    f"{name} chunk of {length} bytes at byte {offset} is over the size limit"
                )
                stream.seek(length + 4, 1)
            else:
                data = stream.read(length)
                crc = stream.read(4)
                if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
                    found.dropped.append(f"{name} chunk at byte {offset} has a bad CRC")
                else:
                    _take_text(kind, data, offset, found)
        elif kind == b"caBX" and length <= MAX_STORE_BYTES:
            found.c2pa = stream.read(length)
            stream.seek(4, 1)
        elif kind == b"IEND":
            seen_iend = True
            break
        else:
            stream.seek(length + 4, 1)
        offset = end
    if found.width is None:
        raise ContainerError("corrupt PNG: no IHDR chunk")
    if not seen_iend:
        raise ContainerError("truncated PNG: no IEND chunk")


def _read_stealth(path: Path, found: Embedded) -> None:
    """Metadata a site's stripping left in the pixels' low bits (alpha, else RGB), under its signature."""
    try:
        hidden = read_stealth(path)
    except StealthError as error:
        found.dropped.append(str(error))
        return
    except Image.DecompressionBombError:
        return
    except (OSError, *_PILLOW_FAILURES) as error:  # the pixels are damaged: the thumbnail stage says so
        found.dropped.append(f"pixels unreadable for stealth pnginfo: {type(error).__name__}: {error}")
        return
    if hidden is not None:
        signature, text = hidden
        found.texts[signature] = text


def _take_text(kind: bytes, data: bytes, offset: int, found: Embedded) -> None:
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not keyword:
        found.dropped.append(f"{kind.decode()} chunk at byte {offset} has no keyword")
        return
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            text = _decode_legacy(rest)
        elif kind == b"zTXt":
            text = _decode_legacy(_inflate(rest[1:]))
        else:
            compressed, _method = rest[0], rest[1]
            _language, _, rest = rest[2:].partition(b"\0")
            _translated, _, body = rest.partition(b"\0")
            text = (_inflate(body) if compressed else body).decode("utf-8", errors="replace")
    except (IndexError, zlib.error, ValueError) as error:
        found.dropped.append(f"{kind.decode()} chunk {key!r} at byte {offset} is unreadable: {error}")
        return
    found.texts[key] = text


def _decode_legacy(data: bytes) -> str:
    """tEXt/zTXt are Latin-1 by the PNG spec, but several tools (e.g. TensorArt) write UTF-8 into them."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"decompresses to more than {MAX_TEXT_BYTES} bytes")
    return out


def _read_with_pillow(stream: BinaryIO, found: Embedded) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(stream)
            found.format = image.format
            found.width, found.height = image.size
            _read_exif(image, found)
            _read_c2pa(image, stream, found)
            xmp = image.info.get("xmp")
            if isinstance(xmp, bytes | str) and xmp:
                found.texts["XMP"] = xmp.decode("utf-8", errors="replace") if isinstance(xmp, bytes) else xmp
            comment = image.info.get("comment")
            if isinstance(comment, bytes) and comment:
                found.texts["Comment"] = _decode_legacy(comment)
    except UnidentifiedImageError as error:
        raise ContainerError("not a recognized image or video format") from error
    except Image.DecompressionBombError as error:
        raise ContainerError(f"image too large to read safely: {error}") from error
    except _PILLOW_FAILURES as error:
        raise ContainerError(f"corrupt image: {type(error).__name__}: {error}") from error


def _read_exif(image: Image.Image, found: Embedded) -> None:
    exif = image.getexif()
    for tag, key in ((_IMAGE_DESCRIPTION, "ImageDescription"), (_MAKE, "Make"), (_MODEL, "Model")):
        value = exif.get(tag)
        # Only generator payloads: ComfyUI writes "workflow:{…}"/"prompt:{…}" here, cameras write names.
        if isinstance(value, str) and (value.lstrip()[:1] in ("{", "[") or _is_comfy_tag(value)):
            found.texts[key] = str(value)
    software = exif.get(_SOFTWARE)
    if isinstance(software, str) and software.strip():
        found.texts["Software"] = software
    # UserComment belongs in the Exif IFD; Save Image Extended puts it in IFD0 (as ASCII).
    comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT) or exif.get(_USER_COMMENT)
    if isinstance(comment, bytes | str):
        text = decode_user_comment(comment)
        if text:
            found.texts["UserComment"] = text


def _read_c2pa(image: Image.Image, stream: BinaryIO, found: Embedded) -> None:
    """A C2PA store: JPEG APP11 JUMBF segments, or a WebP RIFF `C2PA` chunk."""
    applist = getattr(image, "applist", None)
    if isinstance(applist, list):
        found.c2pa = jpeg_store([data for marker, data in applist if marker == "APP11"])
    elif image.format == "WEBP":
        found.c2pa = _riff_chunk(stream, b"C2PA")


def _riff_chunk(stream: BinaryIO, wanted: bytes) -> bytes | None:
    stream.seek(12)
    for _ in range(1000):
        header = stream.read(8)
        if len(header) < 8:
            return None
        kind, length = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == wanted:
            return stream.read(length) if length <= MAX_STORE_BYTES else None
        stream.seek(length + (length & 1), 1)
    return None


def _is_comfy_tag(value: object) -> bool:
    return isinstance(value, str) and value.split(":", 1)[0].lower() in ("prompt", "workflow")


def decode_user_comment(value: bytes | str) -> str | None:
    """EXIF UserComment: an 8-byte charset id, then the text (A1111 writes "UNICODE\\0" + UTF-16)."""
    if isinstance(value, str):
        return value.strip("\0") or None
    prefix, body = value[:8], value[8:]
    if prefix.startswith(b"UNICODE"):
        text = _decode_utf16(body)
    elif prefix.startswith(b"ASCII") or prefix == b"\0" * 8:
        text = _decode_legacy(body)
    elif prefix.startswith(b"JIS"):
        text = body.decode("shift_jis", errors="replace")
    else:
        text = _decode_legacy(value)
    text = text.rstrip("\0")
    return text or None


def _decode_utf16(body: bytes) -> str:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", errors="replace")
    if len(body) % 2:
        body = body[:-1]
    # No BOM: most writers use big-endian whatever the TIFF byte order; ASCII text shows it (NUL first).
    zeros_even = body[0::2].count(0)
    zeros_odd = body[1::2].count(0)
    return body.decode("utf-16-le" if zeros_odd > zeros_even else "utf-16-be", errors="replace")
