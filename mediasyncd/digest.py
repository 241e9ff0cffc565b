"""SHA-256 of a local file: the one digest every part of mediasyncd verifies with."""

from __future__ import annotations

import hashlib
from pathlib import Path

HASH_READ = 8 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_READ):
            h.update(chunk)
    return h.hexdigest()
