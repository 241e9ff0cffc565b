""" "Stealth pnginfo": generation metadata hidden in the low bits of a PNG's pixels.

Written by NovelAI (`stealth_pngcomp`: gzip of a JSON object holding its text chunks) and by the
sd-webui-stealth-pnginfo extension (`stealth_pnginfo` plain, `stealth_pngcomp` gzip: the `parameters`
text) in the alpha channel's low bit; the extension's RGB mode (`stealth_rgbinfo`, `stealth_rgbcomp`)
uses the low bit of red, green and blue, three bits a pixel. Bits run column by column (x outer, y
inner), most significant first: a 15-byte signature, the payload's length in bits as a 32-bit big-endian
integer, then the payload. It survives sites that strip text chunks, so it is read only when a PNG
carries no generation text (alpha first, then RGB).
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from pathlib import Path

from PIL import Image

SIGNATURES = {b"stealth_pnginfo": False, b"stealth_pngcomp": True}  # signature -> gzip-compressed
RGB_SIGNATURES = {b"stealth_rgbinfo": False, b"stealth_rgbcomp": True}
MAX_PIXELS = 64 * 1024 * 1024  # larger images are not decoded for this
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
_HEADER_BITS = 15 * 8 + 32
# Each alpha byte -> "0" or "1" (its low bit), so a run of bits parses with int(…, 2).
_LOW_BIT = bytes(0x30 | (value & 1) for value in range(256))


class StealthError(Exception):
    """The alpha channel starts with a stealth signature but its payload cannot be read."""


def read_stealth(path: Path) -> tuple[str, str] | None:
    """(signature, text) hidden in the alpha channel, else in the RGB low bits, of the PNG at `path`; None
    when there is none."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            bands = image.getbands()
            if image.width * image.height > MAX_PIXELS or not ("A" in bands or bands[:3] == ("R", "G", "B")):
                return None
            # Transposed, the pixels come out in the writer's column-major order.
            pixels = image.transpose(Image.Transpose.TRANSPOSE)
    if "A" in bands:
        found = decode_bits(pixels.getchannel("A").tobytes().translate(_LOW_BIT))
        if found is not None:
            return found
    if bands[:3] != ("R", "G", "B"):
        return None
    rgb = pixels.convert("RGB") if pixels.mode != "RGB" else pixels
    return decode_bits(rgb.tobytes().translate(_LOW_BIT), RGB_SIGNATURES)


def decode_bits(bits: bytes, signatures: dict[bytes, bool] = SIGNATURES) -> tuple[str, str] | None:
    """The payload of a run of "0"/"1" bits (one per alpha byte, or per R, G and B byte); None without
    one of `signatures`."""
    if len(bits) < _HEADER_BITS:
        return None
    signature = _bytes(bits[:120])
    compressed = signatures.get(signature)
    if compressed is None:
        return None
    length = int(bits[120:152], 2)
    if length % 8 or length // 8 > MAX_PAYLOAD_BYTES or 152 + length > len(bits):
        raise StealthError(f"{signature.decode()} payload of {length} bits does not fit the image")
    payload = _bytes(bits[152 : 152 + length])
    if compressed:
        try:
            payload = _gunzip(payload)
        except (OSError, EOFError, zlib.error) as error:
            raise StealthError(f"{signature.decode()} payload is not gzip: {error}") from error
    return signature.decode(), payload.decode("utf-8", errors="replace")


def _bytes(bits: bytes) -> bytes:
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(out) > MAX_PAYLOAD_BYTES:
        raise OSError(f"decompresses to more than {MAX_PAYLOAD_BYTES} bytes")
    return out
