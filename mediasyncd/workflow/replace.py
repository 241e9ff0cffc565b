"""The file side of `compress` with `keep_original = false` and of the copies' XMP sidecars: blocking
functions, run in a thread.

Replacing a library file is done so that a kill -9 at any point leaves the original or the verified
replacement (often both), never neither: the replacement is written to a partial beside it, fsync'd,
read back and verified, renamed into place (the directory fsync'd), and only after the state DB has
switched to it is the original removed, and only if it still hashes to the landed version (which the
archive holds, verified). The stage records its plan first (`StageLedger.intend`), so that a restart
finds what was under way and finishes it (`Intent`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from mediasyncd.digest import sha256_file
from mediasyncd.pipeline.metadata import extract
from mediasyncd.pipeline.options import XmpNaming
from mediasyncd.pipeline.xmp import (
    MEDIASYNCD_NS,
    build_xmp,
    sidecar_path,
    spill_block,
    with_spill,
    write_sidecar,
)


def replacement_path(local_path: str, extension: str) -> str:
    """The library path of a file re-encoded: the same name with the new format's suffix (pure)."""
    return str(PurePosixPath(local_path).with_suffix("." + extension))


def digest_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def rename_into_place(partial: Path, target: Path) -> None:
    os.replace(partial, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_original(path: Path, sha256: str) -> bool:
    """Delete the replaced original at `path` when it still is the landed version; True when it went."""
    if digest_or_none(path) != sha256:
        return False
    path.unlink(missing_ok=True)
    return True


def _ours(sidecar: Path) -> str | None:
    """The text of `sidecar` when mediasyncd wrote it."""
    try:
        text = sidecar.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text if MEDIASYNCD_NS in text else None


def sidecar_for_copy(
    original: Path, copy: Path, naming: XmpNaming, spilled: dict[str, str], *, follow: bool
) -> Path | None:
    """Write the XMP sidecar of `copy` (a re-encode of `original`): the original's own sidecar when
    `follow` and mediasyncd wrote it, else a new one from its metadata, plus what the copy's format could
    not hold (`spilled`). None when there is nothing to write. Raises ForeignSidecar when another tool's
    sidecar is where the copy's would go."""
    existing = _ours(sidecar_path(original, naming)) if follow else None
    if existing is None and not spilled:
        return None
    document = existing if existing is not None else build_xmp(extract(original).record)
    document = with_spill(document, spill_block(copy.name, spilled) if spilled else "")
    target = sidecar_path(copy, naming)
    write_sidecar(target, document)
    return target


def remove_old_sidecar(original: Path, copy: Path, naming: XmpNaming) -> None:
    """The replaced original's sidecar goes, when it is mediasyncd's and not also the copy's."""
    old = sidecar_path(original, naming)
    if old != sidecar_path(copy, naming) and _ours(old) is not None:
        old.unlink(missing_ok=True)
