"""Which remote names can land, and where: pure functions, no I/O.

A remote path relative to its root becomes `<remote>/<rel>` inside the library. A name that cannot be
mapped safely (not UTF-8, control characters, '..', absolute) raises UnsafePathError and is skipped.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from mediasyncd.errors import UnsafePathError

INTERNAL_DIR = ".mediasyncd"
MAX_COMPONENT_BYTES = 255
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: C0, DEL and C1
_C0_BUT_NUL = bytes(range(1, 0x20)) + b"\x7f"  # C0 and DEL as bytes (NUL joins names: none holds one)
_C1 = re.compile("[\x80-\x9f]")  # U+0080-U+009F, C2 80-9F in UTF-8: searched only where a C2 byte is


def decode_rel(raw: bytes) -> str:
    """The relative path as text, or UnsafePathError naming why it cannot be used."""
    try:
        rel = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePathError("name is not valid UTF-8") from None
    check_rel(rel)
    return rel


def decode_rels(raws: list[bytes]) -> list[str] | None:
    """These relative paths as text when every one passes `check_rel`; None when one might not (each
    must then go through `decode_rel`, which says why). All the names of a listing are checked in a few
    scans at C speed: a call per name cost ~1 µs, 20 ms a poll of 20,000 files."""
    raw = b"\0".join(raws)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(raw.translate(None, _C0_BUT_NUL)) != len(raw) or (b"\xc2" in raw and _C1.search(text)):
        return None
    long_name = max(map(len, raws), default=0) > MAX_COMPONENT_BYTES  # only then can a component be
    if long_name and max(map(len, raw.replace(b"/", b"\0").split(b"\0"))) > MAX_COMPONENT_BYTES:
        return None
    wrapped = "/" + text.replace("\0", "/\0/") + "/"  # each name as "/name/": the checks of check_rel
    if "//" in wrapped or "/./" in wrapped or "/../" in wrapped:
        return None
    return text.split("\0")


def check_rel(rel: str) -> None:
    if not rel or rel.startswith("/"):
        raise UnsafePathError("empty or absolute path")
    bad = _CONTROL.search(rel)
    if bad:
        raise UnsafePathError(f"name contains control character {bad.group()!r}")
    wrapped = f"/{rel}/"
    if "//" in wrapped or "/./" in wrapped or "/../" in wrapped:
        part = next(p for p in rel.split("/") if p in ("", ".", ".."))
        raise UnsafePathError(f"path component {part!r} is not allowed")
    if len(rel) > MAX_COMPONENT_BYTES // 4 and any(
        len(p.encode()) > MAX_COMPONENT_BYTES for p in rel.split("/")
    ):
        raise UnsafePathError("path component longer than 255 bytes")


def library_rel(remote: str, rel: str) -> str:
    """Library-relative landing path of a remote file."""
    check_rel(rel)
    return f"{remote}/{rel}"


def conflict_name(local_rel: str, sha256: str, length: int = 8) -> str:
    """Deterministic sibling name for a different file arriving at an occupied path:
    `dir/stem.ext` -> `dir/stem~<sha[:length]>.ext`."""
    p = PurePosixPath(local_rel)
    suffix = p.suffix if len(p.suffix) <= 10 else ""
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    return str(p.with_name(f"{stem}~{sha256[:length]}{suffix}"))


def partial_name(remote: str, file_id: int) -> str:
    """Library-relative path of a file's partial download, hidden under .mediasyncd/partial."""
    return f"{INTERNAL_DIR}/partial/{remote}/{file_id}.part"
