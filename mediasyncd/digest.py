"""SHA-256 of a local file: the one digest every part of mediasyncd verifies with."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

HASH_READ = 8 << 20


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_stream(fh)


def sha256_stream(fh: BinaryIO) -> str:
    """The SHA-256 of what is left to read in `fh`."""
    h = hashlib.sha256()
    while chunk := fh.read(HASH_READ):
        h.update(chunk)
    return h.hexdigest()
