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


def decode_rel(raw: bytes) -> str:
    """The relative path as text, or UnsafePathError naming why it cannot be used."""
    try:
        rel = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePathError("name is not valid UTF-8") from None
    check_rel(rel)
    return rel


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
