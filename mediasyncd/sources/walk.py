"""Listing a directory tree with os calls (local folders, a container's root read from this machine):
regular files only; symlinks are neither followed nor listed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from typing import Any

from mediasyncd.sources.listing import Listing


def scan(entries: Iterable[os.DirEntry[Any]], rel_b: bytes, root: str, listing: Listing) -> list[bytes]:
    """Add the regular files among `entries` (the directory at `rel_b` under `root`) to `listing`; return
    the names of its subdirectories. An entry that vanishes meanwhile is skipped this pass."""
    subdirs: list[bytes] = []
    for entry in entries:
        name = os.fsencode(entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            listing.add(root, rel_b + b"/" + name if rel_b else name, st.st_size, st.st_mtime)
    return subdirs
